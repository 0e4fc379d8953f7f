// The one classification of what ends a session (daemon/core/errors.h): each kind of error, the class it
// falls in and the exit code it stops with; and the private file a source stream error's bytes go to.
#include "daemon/core/errors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>

#include "checkpoints/checkpoint_store.h"
#include "daemon/core/bug_report.h"
#include "decoders/byte_reader.h"
#include "decoders/pg.h"
#include "decoders/pgoutput.h"
#include "decoders/spool.h"
#include "sinks/kafka_sink.h"
#include "sinks/postgres_sink.h"
#include "sinks/sink.h"

namespace cdcsync {
namespace {

template <class E>
Classified classified(E e) {
  return classify(std::make_exception_ptr(std::move(e)));
}

TEST(ClassifyErrors, ALostConnectionAndTheListedSqlstatesAreRetried) {
  for (const char* state : {"08006", "08000", "40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03",
                            "57P05", "53100", "53200", "53300"}) {
    const Classified c = classified(PgError{state, "x"});
    EXPECT_EQ(c.error_class, ErrorClass::Transient) << state;
    EXPECT_EQ(c.exit_code, exit_code::kOk) << state;
    EXPECT_EQ(c.component, "source") << state;
  }
  EXPECT_EQ(classified(PgError{"08006", "x"}).reason, "connection");
  EXPECT_EQ(classified(TransientError("target gone")).component, "target");
  EXPECT_EQ(classified(KafkaUnavailable("broker gone")).component, "kafka");
  EXPECT_EQ(classified(CheckpointUnavailable("redis gone")).component, "checkpoint");
  EXPECT_EQ(classified(SpoolError("disk full")).error_class, ErrorClass::Transient);
}

TEST(ClassifyErrors, ADroppedDatabaseAndAnErrorWithoutSqlstateAreNotTransient) {
  EXPECT_FALSE(PgError("57P04", "database dropped").transient());
  EXPECT_FALSE(PgError("", "client-side error").transient());
  EXPECT_FALSE(PgError("42501", "permission denied").transient());
  EXPECT_TRUE(PgError("57P01", "admin shutdown").transient());
  EXPECT_EQ(classified(PgError{"57P04", "database dropped"}).exit_code, exit_code::kError);
  EXPECT_EQ(classified(PgError{"", "client-side error"}).exit_code, exit_code::kInternal);
}

TEST(ClassifyErrors, AFailureWithoutSqlstateIsALostConnectionOnlyWhenTheConnectionIsGone) {
  // No connection at all: libpq has nothing to say but that it is gone.
  EXPECT_EQ(pg_error(nullptr, nullptr, "reading").sqlstate(), kConnectionLost);
  EXPECT_TRUE(pg_error(nullptr, nullptr, "reading").transient());
}

TEST(ClassifyErrors, AnotherInstanceMeansStandingBy) {
  EXPECT_EQ(classified(LeaseLost("held")).error_class, ErrorClass::Standby);
  EXPECT_EQ(classified(WriterLockHeld("held")).error_class, ErrorClass::Standby);
  EXPECT_EQ(classified(PgError{"55006", "replication slot is active for PID 42"}).error_class,
            ErrorClass::Standby);
}

TEST(ClassifyErrors, EachStopHasItsExitCode) {
  EXPECT_EQ(classified(PermanentError("ref.customer", Lsn{0x10}, "23505", "unique")).exit_code,
            exit_code::kApplyFailed);
  EXPECT_EQ(classified(FatalError("gap_detected", exit_code::kDataLossRisk, "gap")).error_class,
            ErrorClass::DataLossRisk);
  EXPECT_EQ(classified(FatalError("config", exit_code::kError, "bad")).error_class, ErrorClass::Config);
  EXPECT_EQ(classified(CheckpointFatal("NOPERM", "no")).exit_code, exit_code::kError);
  EXPECT_EQ(classified(PgError{"42501", "permission denied for publication"}).exit_code, exit_code::kError);
}

TEST(ClassifyErrors, ASourceStreamErrorStopsWithFiveAndNamesTheLsn) {
  const Classified c = classified(
      SourceStreamError("malformed_message", Lsn{0x16B374D848}, "I\x01", "Insert message at offset 5"));
  EXPECT_EQ(c.error_class, ErrorClass::SourceStream);
  EXPECT_EQ(c.exit_code, exit_code::kDecodeError);
  EXPECT_EQ(c.reason, "decode_error");
  EXPECT_NE(c.message.find("16/B374D848"), std::string::npos) << c.message;
  // Unwrapped, from the decoder or the assembler: the same class.
  EXPECT_EQ(classified(DecodeError("Insert", 3, "needs 4 bytes")).exit_code, exit_code::kDecodeError);
  EXPECT_EQ(classified(ProtocolError(Lsn{0x20}, "Commit without Begin")).exit_code, exit_code::kDecodeError);
}

TEST(ClassifyErrors, AnythingUnexpectedStopsWithSixNotARetryNorAConfigError) {
  EXPECT_EQ(classified(std::logic_error("bug")).exit_code, exit_code::kInternal);
  EXPECT_EQ(classified(std::bad_alloc()).exit_code, exit_code::kInternal);
  EXPECT_EQ(classified(std::runtime_error("what?")).exit_code, exit_code::kInternal);
  // A stray invalid_argument while streaming (say from the decoder) is not a configuration error.
  EXPECT_EQ(classified(std::invalid_argument("bad value")).exit_code, exit_code::kInternal);
  EXPECT_EQ(classify(std::make_exception_ptr(42)).exit_code, exit_code::kInternal);
}

class StreamEvidence : public ::testing::Test {
 protected:
  StreamEvidence() {
    const char* old = std::getenv("STATE_DIRECTORY");
    if (old != nullptr) saved_ = old;
    dir_ = std::filesystem::temp_directory_path() / ("cdcsync-evidence-test-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~StreamEvidence() override {
    if (saved_) {
      setenv("STATE_DIRECTORY", saved_->c_str(), 1);
    } else {
      unsetenv("STATE_DIRECTORY");
    }
    std::filesystem::remove_all(dir_);
  }
  static std::string contents(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static unsigned mode_of(const std::filesystem::path& p) {
    struct stat st {};
    lstat(p.c_str(), &st);
    return st.st_mode & 0777;
  }

  std::filesystem::path dir_;
  std::optional<std::string> saved_;
};

TEST_F(StreamEvidence, GoesToAPrivateFileInAPrivateDirectoryUnderTheStateDirectory) {
  setenv("STATE_DIRECTORY", dir_.c_str(), 1);
  const std::string bytes("I\0\0\x40\x01N\0\x01t\x7f\xff\xff\xf0", 13);
  const auto path =
      save_stream_evidence(SourceStreamError("malformed_message", Lsn{0x16B374D848}, bytes, "x"), "p1");
  EXPECT_EQ(path.parent_path(), dir_ / "bug-reports");
  EXPECT_NE(path.filename().string().find("16-B374D848"), std::string::npos) << path;
  EXPECT_EQ(contents(path), bytes);
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(mode_of(path.parent_path()), 0700u);
  // A second error gets a file of its own, in the same directory.
  const auto second =
      save_stream_evidence(SourceStreamError("protocol_violation", Lsn{0x20}, "C", "y"), "p1");
  EXPECT_NE(second, path);
  EXPECT_EQ(contents(path), bytes);
}

TEST_F(StreamEvidence, WithoutAStateDirectoryGoesToAFreshUnpredictableDirectory) {
  unsetenv("STATE_DIRECTORY");
  const auto a = save_stream_evidence(SourceStreamError("malformed_message", Lsn{0x10}, "x", "x"), "p1");
  const auto b = save_stream_evidence(SourceStreamError("malformed_message", Lsn{0x10}, "x", "x"), "p1");
  EXPECT_NE(a.parent_path(), b.parent_path());
  EXPECT_EQ(mode_of(a.parent_path()), 0700u);
  EXPECT_EQ(mode_of(a), 0600u);
  EXPECT_TRUE(a.parent_path().filename().string().starts_with("cdcsync-bug-report-")) << a;
  std::filesystem::remove_all(a.parent_path());
  std::filesystem::remove_all(b.parent_path());
}

TEST_F(StreamEvidence, RefusesAStateDirectoryWhoseBugReportsIsASymlink) {
  setenv("STATE_DIRECTORY", dir_.c_str(), 1);
  std::filesystem::create_directories(dir_ / "elsewhere");
  std::filesystem::create_directory_symlink(dir_ / "elsewhere", dir_ / "bug-reports");
  EXPECT_THROW(save_stream_evidence(SourceStreamError("malformed_message", Lsn{0x10}, "x", "x"), "p1"),
               std::runtime_error);
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "elsewhere"));
}

}  // namespace
}  // namespace cdcsync
