#include "decoders/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace cdcsync {
namespace {

// The largest message a record may hold: PostgreSQL caps a logical replication message at 1 GB.
constexpr std::uint32_t kMaxMessage = 1U << 30;
constexpr std::size_t kKeepRecordBuffer = std::size_t{1} << 20;

std::string describe(const std::filesystem::path& path, std::string_view doing) {
  return std::string(doing) + " spool file " + path.string() + ": " + std::strerror(errno);
}

std::string mib(std::uint64_t bytes) {
  return std::to_string(bytes) + " bytes (" + std::to_string(bytes >> 20) + " MiB)";
}

}  // namespace

void prepare_spool_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw SpoolError(describe(dir, "cannot create the directory of the"));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) throw SpoolError(describe(dir, "cannot stat the directory of the"));
  if (!S_ISDIR(st.st_mode)) {
    throw SpoolError("spool directory " + dir.string() +
                     " is not a directory (a symlink or a file): refused");
  }
  if (st.st_uid != ::geteuid()) {
    throw SpoolError("spool directory " + dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                     ", not to this process's user: refused");
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    throw SpoolError(describe(dir, "cannot make private (0700) the directory of the"));
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().starts_with(kSpoolFilePrefix)) {
      std::error_code ignored;
      std::filesystem::remove(entry.path(), ignored);
    }
  }
  if (ec) throw SpoolError("cannot list spool directory " + dir.string() + ": " + ec.message());
}

SpoolFile::SpoolFile(std::filesystem::path path, SpoolOwner owner, SpoolUsage* usage)
    : path_(std::move(path)), owner_(owner), usage_(usage) {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw SpoolError(describe(path_, "cannot create"));
  out_.reset(::fdopen(fd, "wb"));
  if (!out_) {
    ::close(fd);
    throw SpoolError(describe(path_, "cannot open"));
  }
}

SpoolFile::~SpoolFile() {
  out_.reset();
  if (usage_ != nullptr) usage_->bytes -= bytes_;
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

void SpoolFile::append(Xid subxid, Lsn lsn, std::string_view message) {
  if (!out_) throw SpoolError("spool file " + path_.string() + " is being read; no more appends");
  if (message.size() > kMaxMessage) throw SpoolError("message too large for the spool");
  const std::uint32_t xid = subxid.value;
  const std::uint64_t at = lsn.value();
  const auto length = static_cast<std::uint32_t>(message.size());
  const std::uint64_t record = sizeof xid + sizeof at + sizeof length + length;
  if (usage_ != nullptr && usage_->limit != 0 && usage_->bytes.load() + record > usage_->limit) {
    const std::uint64_t others = usage_->bytes.load() - bytes_;
    throw SpoolLimitExceeded(
        "source transaction xid " + std::to_string(owner_.xid.value) + " (first change at " +
        owner_.first_lsn.str() + ") needs more than spool.limit_bytes = " + mib(usage_->limit) +
        " of spool: it holds " + mib(bytes_ + record) + " so far" +
        (others > 0 ? ", other transactions " + mib(others) : std::string()) +
        ". Raise spool.limit_bytes (and make room on the disk of " + path_.parent_path().string() +
        ") and start again: it was not applied, and nothing is confirmed past it");
  }
  if (std::fwrite(&xid, sizeof xid, 1, out_.get()) != 1 || std::fwrite(&at, sizeof at, 1, out_.get()) != 1 ||
      std::fwrite(&length, sizeof length, 1, out_.get()) != 1 ||
      (length > 0 && std::fwrite(message.data(), length, 1, out_.get()) != 1)) {
    throw SpoolError(describe(path_, "cannot write"));
  }
  ++records_;
  bytes_ += record;
  if (usage_ != nullptr) usage_->bytes += record;
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
  // A wide record's buffer is not kept for the small ones after it.
  if (record.message.capacity() > kKeepRecordBuffer && length <= kKeepRecordBuffer) {
    std::string().swap(record.message);
  }
  record.message.resize(length);
  if (length > 0 && std::fread(record.message.data(), length, 1, file_.get()) != 1) {
    throw SpoolError("spool file " + path_->string() + " is truncated or corrupt");
  }
  return true;
}

}  // namespace cdcsync
