// SpoolFile: an append-only file of raw protocol messages of one transaction that is not yet committed
// (a streamed transaction, or a prepared one), so that memory stays bounded whatever its size. Records
// are framed as subxid:u32 lsn:u64 length:u32 bytes (host byte order: a spool never leaves the process
// that wrote it). The file is removed when the SpoolFile is destroyed.
#pragma once

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

class SpoolFile {
 public:
  struct Record {
    Xid subxid;
    Lsn lsn;
    std::string message;  // reused from record to record
  };

  // Creates (or truncates) the file at `path`.
  explicit SpoolFile(std::filesystem::path path);
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
  std::unique_ptr<std::FILE, Close> out_;
  std::uint64_t records_ = 0;
  std::uint64_t bytes_ = 0;
};

}  // namespace cdcsync
