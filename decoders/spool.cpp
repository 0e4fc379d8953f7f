#include "decoders/spool.h"

#include <cerrno>
#include <cstring>
#include <system_error>

namespace cdcsync {
namespace {

// The largest message a record may hold: PostgreSQL caps a logical replication message at 1 GB.
constexpr std::uint32_t kMaxMessage = 1U << 30;

std::string describe(const std::filesystem::path& path, std::string_view doing) {
  return std::string(doing) + " spool file " + path.string() + ": " + std::strerror(errno);
}

}  // namespace

SpoolFile::SpoolFile(std::filesystem::path path) : path_(std::move(path)) {
  out_.reset(std::fopen(path_.c_str(), "wb"));
  if (!out_) throw SpoolError(describe(path_, "cannot create"));
}

SpoolFile::~SpoolFile() {
  out_.reset();
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

void SpoolFile::append(Xid subxid, Lsn lsn, std::string_view message) {
  if (!out_) throw SpoolError("spool file " + path_.string() + " is being read; no more appends");
  if (message.size() > kMaxMessage) throw SpoolError("message too large for the spool");
  const std::uint32_t xid = subxid.value;
  const std::uint64_t at = lsn.value();
  const auto length = static_cast<std::uint32_t>(message.size());
  if (std::fwrite(&xid, sizeof xid, 1, out_.get()) != 1 || std::fwrite(&at, sizeof at, 1, out_.get()) != 1 ||
      std::fwrite(&length, sizeof length, 1, out_.get()) != 1 ||
      (length > 0 && std::fwrite(message.data(), length, 1, out_.get()) != 1)) {
    throw SpoolError(describe(path_, "cannot write"));
  }
  ++records_;
  bytes_ += sizeof xid + sizeof at + sizeof length + length;
}

SpoolFile::Reader SpoolFile::read() {
  if (out_) {
    if (std::fflush(out_.get()) != 0) throw SpoolError(describe(path_, "cannot flush"));
    out_.reset();
  }
  std::unique_ptr<std::FILE, Reader::Close> in{std::fopen(path_.c_str(), "rb")};
  if (!in) throw SpoolError(describe(path_, "cannot open"));
  return Reader{std::move(in), path_};
}

bool SpoolFile::Reader::next(Record& record) {
  std::uint32_t xid = 0;
  std::uint64_t lsn = 0;
  std::uint32_t length = 0;
  if (std::fread(&xid, sizeof xid, 1, file_.get()) != 1) {
    if (std::feof(file_.get())) return false;
    throw SpoolError(describe(*path_, "cannot read"));
  }
  if (std::fread(&lsn, sizeof lsn, 1, file_.get()) != 1 ||
      std::fread(&length, sizeof length, 1, file_.get()) != 1 || length > kMaxMessage) {
    throw SpoolError("spool file " + path_->string() + " is truncated or corrupt");
  }
  record.subxid = Xid{xid};
  record.lsn = Lsn{lsn};
  record.message.resize(length);
  if (length > 0 && std::fread(record.message.data(), length, 1, file_.get()) != 1) {
    throw SpoolError("spool file " + path_->string() + " is truncated or corrupt");
  }
  return true;
}

}  // namespace cdcsync
