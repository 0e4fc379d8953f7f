// SpoolFile: an append-only file of raw protocol messages of one transaction that is not yet committed
// (a streamed transaction, or a prepared one), so that memory stays bounded whatever its size. Records
// are framed as subxid:u32 lsn:u64 length:u32 bytes (host byte order: a spool never leaves the process
// that wrote it). The file is created 0600 (never through a symlink, never over an existing file) in a
// directory private to the pipeline (prepare_spool_dir), and removed when the SpoolFile is destroyed.
// Every spool file of a pipeline counts its bytes in one SpoolUsage, bounded by spool.limit_bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "decoders/change.h"
#include "decoders/lsn.h"

namespace cdcsync {

// Writing or reading the spool failed (disk full, directory removed): retryable after a reconnect.
class SpoolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A transaction needs more spool than spool.limit_bytes allows: retrying cannot help until the limit is
// raised. what() names the transaction, its size, the limit and the key.
class SpoolLimitExceeded : public SpoolError {
 public:
  using SpoolError::SpoolError;
};

// The bytes in every spool file of one pipeline now, against spool.limit_bytes (0: no limit).
struct SpoolUsage {
  std::atomic<std::uint64_t> bytes{0};
  std::uint64_t limit = 0;
};

// Whose records a spool file holds: named in the error when the spool limit is reached.
struct SpoolOwner {
  Xid xid;
  Lsn first_lsn;
};

// Makes `dir` the pipeline's private spool directory: created 0700 when missing (its parents as usual),
// refused when it is a symlink, not a directory or owned by another user, its mode narrowed to 0700 when
// wider; then removes the spool files an earlier process left in it (their transactions are resent from
// the start). Throws SpoolError.
void prepare_spool_dir(const std::filesystem::path& dir);
// Spool file names start with this.
inline constexpr std::string_view kSpoolFilePrefix = "cdcsync-spool-";

class SpoolFile {
 public:
  struct Record {
    Xid subxid;
    Lsn lsn;
    std::string message;  // reused from record to record
  };

  // Creates the file at `path` (0600; an existing file or symlink there is an error). `usage`, when given,
  // counts the file's bytes and refuses an append past its limit (SpoolLimitExceeded naming `owner`).
  explicit SpoolFile(std::filesystem::path path, SpoolOwner owner = {}, SpoolUsage* usage = nullptr);
  ~SpoolFile();
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;

  void append(Xid subxid, Lsn lsn, std::string_view message);

  // Reads the records back in order, one at a time; appending is over once reading starts.
  class Reader {
   public:
    bool next(Record& record);

   private:
    friend class SpoolFile;
    struct Close {
      void operator()(std::FILE* f) const { std::fclose(f); }
    };
    Reader(std::unique_ptr<std::FILE, Close> file, const std::filesystem::path& path)
        : file_(std::move(file)), path_(&path) {}
    std::unique_ptr<std::FILE, Close> file_;
    const std::filesystem::path* path_;
  };
  Reader read();

  const std::filesystem::path& path() const { return path_; }
  std::uint64_t records() const { return records_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  struct Close {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::filesystem::path path_;
  SpoolOwner owner_;
  SpoolUsage* usage_;
  std::unique_ptr<std::FILE, Close> out_;
  std::uint64_t records_ = 0;
  std::uint64_t bytes_ = 0;
};

}  // namespace cdcsync
