// The spool's privacy and its bound: a directory only the pipeline's user reads, files 0600, stale files
// removed at start, and spool.limit_bytes refusing the append that would pass it, naming the transaction.
#include "decoders/spool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "decoders/memory_budget.h"

namespace cdcsync {
namespace {

namespace fs = std::filesystem;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root = fs::temp_directory_path() /
           ("cdcsync-spool-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root);
  }
  void TearDown() override { fs::remove_all(root); }

  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }

  fs::path root;
};

TEST_F(SpoolTest, TheDirectoryIsCreatedPrivateAndAWiderOneIsNarrowed) {
  const fs::path dir = root / "state" / "spool-p";
  prepare_spool_dir(dir);
  EXPECT_EQ(mode_of(dir), 0700u);
  fs::permissions(dir, fs::perms::all);
  prepare_spool_dir(dir);
  EXPECT_EQ(mode_of(dir), 0700u);
}

TEST_F(SpoolTest, ASymlinkOrAFileInPlaceOfTheDirectoryIsRefused) {
  fs::create_directories(root / "elsewhere");
  fs::create_directory_symlink(root / "elsewhere", root / "link");
  EXPECT_THROW(prepare_spool_dir(root / "link"), SpoolError);
  { std::ofstream file(root / "file"); }
  EXPECT_THROW(prepare_spool_dir(root / "file"), SpoolError);
}

TEST_F(SpoolTest, StaleSpoolFilesAreRemovedAtStartAndOthersKept) {
  const fs::path dir = root / "spool";
  prepare_spool_dir(dir);
  { std::ofstream stale(dir / "cdcsync-spool-1-1-xid-5"); }
  { std::ofstream other(dir / "not-ours"); }
  prepare_spool_dir(dir);
  EXPECT_FALSE(fs::exists(dir / "cdcsync-spool-1-1-xid-5"));
  EXPECT_TRUE(fs::exists(dir / "not-ours"));
}

TEST_F(SpoolTest, FilesAre0600AndNeverOpenedThroughAnExistingNameOrSymlink) {
  const fs::path dir = root / "spool";
  prepare_spool_dir(dir);
  {
    SpoolFile f{dir / "cdcsync-spool-a"};
    f.append(Xid{1}, Lsn{0x10}, "message");
    EXPECT_EQ(mode_of(dir / "cdcsync-spool-a"), 0600u);
  }
  EXPECT_FALSE(fs::exists(dir / "cdcsync-spool-a")) << "removed with its SpoolFile";
  { std::ofstream existing(dir / "cdcsync-spool-b"); }
  EXPECT_THROW(SpoolFile(dir / "cdcsync-spool-b"), SpoolError);
  fs::create_symlink(root / "target", dir / "cdcsync-spool-c");
  EXPECT_THROW(SpoolFile(dir / "cdcsync-spool-c"), SpoolError);
  EXPECT_FALSE(fs::exists(root / "target"));
}

TEST_F(SpoolTest, TheLimitRefusesTheAppendThatWouldPassItNamingTheTransactionItsSizeAndTheKey) {
  const fs::path dir = root / "spool";
  prepare_spool_dir(dir);
  SpoolUsage usage;
  usage.limit = 1000;
  SpoolFile other{dir / "cdcsync-spool-1", SpoolOwner{Xid{7}, Lsn{0x100}}, &usage};
  other.append(Xid{7}, Lsn{0x100}, std::string(300, 'a'));
  std::string error;
  {
    SpoolFile f{dir / "cdcsync-spool-2", SpoolOwner{Xid{42}, Lsn{0x16B374D8}}, &usage};
    f.append(Xid{42}, Lsn{0x200}, std::string(300, 'b'));
    EXPECT_EQ(usage.bytes.load(), other.bytes() + f.bytes());
    try {
      f.append(Xid{43}, Lsn{0x300}, std::string(400, 'c'));
      FAIL() << "the limit was passed";
    } catch (const SpoolLimitExceeded& e) {
      error = e.what();
    }
    EXPECT_LE(usage.bytes.load(), usage.limit);
  }
  EXPECT_EQ(usage.bytes.load(), other.bytes()) << "a removed file gives its bytes back";
  EXPECT_NE(error.find("xid 42"), std::string::npos) << error;
  EXPECT_NE(error.find("0/16B374D8"), std::string::npos) << error;
  EXPECT_NE(error.find("spool.limit_bytes = 1000 bytes"), std::string::npos) << error;
  EXPECT_NE(error.find("holds 732 bytes"), std::string::npos) << error;
  EXPECT_NE(error.find("other transactions 316 bytes"), std::string::npos) << error;
}

TEST(MemoryBudget, AccountsMoveTheirCountAndGiveItBackAndWaitersSeeRoom) {
  MemoryBudget budget{100};
  {
    MemoryBudget::Account a{&budget};
    a.set(60);
    budget.add(50);
    EXPECT_TRUE(budget.full());
    EXPECT_FALSE(budget.wait_for_room(0, std::chrono::milliseconds(1)));
    a.set(10);
    EXPECT_EQ(budget.held(), 60u);
    EXPECT_TRUE(budget.wait_for_room(0, std::chrono::milliseconds(1)));
    EXPECT_TRUE(budget.full(40));
  }
  EXPECT_EQ(budget.held(), 50u);
  EXPECT_EQ(budget.peak(), 110u);
  MemoryBudget unbounded;
  unbounded.add(1u << 30);
  EXPECT_FALSE(unbounded.full());
}

}  // namespace
}  // namespace cdcsync
