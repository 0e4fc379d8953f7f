// libFuzzer target over the pgoutput decoder, the relation cache and the transaction assembler.
//
// Input: one options byte, then messages framed as length:u16 (big-endian) bytes.
//   options bits 0-1: protocol version - 1; bits 2-3: streaming (0 off, 1 on, 2 parallel);
//   bits 4-7: max_changes_per_chunk - 1 (small chunks exercise chunking).
// Every message goes to a standalone decoder (its own relation cache, fed by the Relation messages it
// sees) and to an assembler, which gets the transactions it emitted back after each message (their memory is
// reused for the next ones). DecodeError, ProtocolError and SpoolError are the expected ways to refuse
// input; anything else (a crash, a sanitizer report, another exception) is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "decoders/assembler.h"
#include "decoders/pgoutput.h"

namespace {

const std::filesystem::path& spool_dir() {
  static const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("cdcsync-fuzz-spool-" + std::to_string(::getpid()));
  return dir;
}

std::size_t touch(const cdcsync::Tuple& tuple) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < tuple.size(); ++i)
    n += tuple.value(i).size() + static_cast<std::size_t>(tuple.kind(i));
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cdcsync;
  if (size < 1) return 0;
  const std::uint8_t options = data[0];
  ProtocolOptions protocol;
  protocol.version = 1 + (options & 3);
  const int streaming = (options >> 2) & 3;
  if (protocol.version >= 2 && streaming >= 1) protocol.streaming = StreamingMode::On;
  if (protocol.version >= 4 && streaming >= 2) protocol.streaming = StreamingMode::Parallel;
  const std::size_t chunk = 1 + (options >> 4);

  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  volatile std::size_t sink = 0;

  PgOutputDecoder decoder{protocol};
  RelationCache relations;
  Change change;
  bool decoder_ok = true;
  bool assembler_ok = true;
  std::vector<Transaction> spent;  // handed back to the assembler after each message, as the daemon does
  {
    TransactionAssembler assembler{
        // Even chunk sizes replay committed spools a chunk per step, as the daemon does.
        AssemblerOptions{.protocol = protocol,
                         .max_changes_per_chunk = chunk,
                         .spool_dir = spool_dir(),
                         .replay_in_steps = chunk % 2 == 0},
        [&](Transaction&& t) {
          for (const auto& c : t.changes) {
            sink = sink + touch(c.before) + touch(c.after) + c.message_content.size() + c.truncated.size();
            if (c.relation) sink = sink + c.relation->columns.size();
          }
          spent.push_back(std::move(t));
        }};
    std::uint64_t lsn = 0x1000;
    while (input.size() >= 2 && (decoder_ok || assembler_ok)) {
      const std::size_t length = static_cast<std::size_t>(static_cast<std::uint8_t>(input[0])) << 8 |
                                 static_cast<std::uint8_t>(input[1]);
      input.remove_prefix(2);
      const std::string_view message = input.substr(0, length);
      input.remove_prefix(message.size());
      lsn += 0x10;
      if (decoder_ok) {
        try {
          auto decoded = decoder.decode(message, relations, change);
          if (auto* r = std::get_if<pgoutput::Relation>(&decoded)) relations.put(r->relation);
          if (auto* t = std::get_if<pgoutput::Type>(&decoded)) relations.put_type(t->type);
          sink = sink + touch(change.before) + touch(change.after);
        } catch (const DecodeError&) {
          decoder_ok = false;
        }
      }
      if (assembler_ok) {
        try {
          // As the daemon does: during a replay, what can_feed() accepts is fed between its steps.
          while (assembler.replaying() && !assembler.can_feed(message)) assembler.resume_replay();
          assembler.feed(message, Lsn{lsn});
          if (assembler.replaying()) assembler.resume_replay();
          assembler.recycle(spent);
        } catch (const DecodeError&) {
          assembler_ok = false;
        } catch (const ProtocolError&) {
          assembler_ok = false;
        } catch (const SpoolError&) {
          assembler_ok = false;
        }
      }
    }
  }
  return 0;
}
