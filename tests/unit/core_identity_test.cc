// identity: SPIFFE ID parser (valid IDs and every class of bad input, with its message), the
// process table keyed by (pid, start time), the task registry's slots and generation, and resolving
// a name a process passed to the kernel from /proc.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "identity/proc_path.h"
#include "identity/spiffe_id.h"
#include "identity/task.h"

namespace writ::identity {
namespace {

using ::testing::HasSubstr;

TEST(SpiffeId, Valid) {
  struct Case {
    const char* in;
    const char* td;
    const char* path;
  };
  for (const Case& c : {Case{"spiffe://example.org", "example.org", ""},
                        Case{"spiffe://example.org/agent/x", "example.org", "/agent/x"},
                        Case{"spiffe://a-b_c.9/A.b-C_d/e", "a-b_c.9", "/A.b-C_d/e"},
                        Case{"spiffe://td/..x/x..", "td", "/..x/x.."}}) {
    auto id = ParseSpiffeId(c.in);
    ASSERT_TRUE(id.ok()) << c.in << ": " << id.status();
    EXPECT_EQ(id->trust_domain, c.td);
    EXPECT_EQ(id->path, c.path);
    EXPECT_EQ(id->ToString(), c.in);
  }
}

TEST(SpiffeId, EveryClassOfBadInputNamesTheRule) {
  struct Case {
    std::string in;
    const char* why;
  };
  const Case cases[] = {
      {"", "empty"},
      {"https://example.org/a", "must start with spiffe:// (lowercase scheme)"},
      {"SPIFFE://example.org/a", "must start with spiffe:// (lowercase scheme)"},
      {"spiffe:/example.org", "must start with spiffe://"},
      {"spiffe://", "empty trust domain"},
      {"spiffe:///a", "empty trust domain"},
      {"spiffe://Example.org/a", "trust domain must be lowercase"},
      {"spiffe://example.org:8443/a", "a port is not allowed in the trust domain"},
      {"spiffe://user@example.org/a", "userinfo is not allowed in the trust domain"},
      {"spiffe://ex ample.org", "character ' ' not allowed in trust domain (a-z 0-9 . - _)"},
      {"spiffe://" + std::string(256, 'a'), "trust domain longer than 255 bytes"},
      {"spiffe://example.org/a?x=1", "query and fragment are not allowed"},
      {"spiffe://example.org/a#frag", "query and fragment are not allowed"},
      {"spiffe://example.org/", "trailing slash in path"},
      {"spiffe://example.org/a/", "trailing slash in path"},
      {"spiffe://example.org//a", "empty path segment (//)"},
      {"spiffe://example.org/a/./b", "path segments . and .. are not allowed"},
      {"spiffe://example.org/a/..", "path segments . and .. are not allowed"},
      {"spiffe://example.org/a b", "character ' ' not allowed in path (a-z A-Z 0-9 . - _)"},
      {"spiffe://example.org/caf%C3", "character '%' not allowed in path"},
      {"spiffe://example.org/" + std::string(2100, 'a'), "longer than 2048 bytes"},
  };
  for (const Case& c : cases) {
    auto id = ParseSpiffeId(c.in);
    ASSERT_FALSE(id.ok()) << c.in;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    std::string msg(id.status().message());
    EXPECT_THAT(msg, HasSubstr("invalid SPIFFE ID \"")) << c.in;
    EXPECT_THAT(msg, HasSubstr(c.why)) << c.in;
    EXPECT_EQ(msg.find('\n'), std::string::npos);  // one line, for the CLI
  }
}

TEST(SpiffeId, OverlongIdIsQuotedShortened) {
  auto id = ParseSpiffeId("spiffe://example.org/" + std::string(3000, 'a'));
  ASSERT_FALSE(id.ok());
  EXPECT_LT(id.status().message().size(), 200u);  // the message quotes a prefix, not 3 KB
}

// A scratch directory with a file, a symlink to it and a directory fd, for ResolveProcessPath on
// this very process (its cwd is moved there and restored).
class ProcPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-procpath-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = std::filesystem::canonical(tmpl).string();
    std::filesystem::create_directories(dir_ + "/sub");
    std::ofstream(dir_ + "/f.sh") << "#!/bin/sh\n";
    std::filesystem::create_symlink(dir_ + "/f.sh", dir_ + "/sub/link.sh");
    old_cwd_ = std::filesystem::current_path();
    std::filesystem::current_path(dir_ + "/sub");
  }
  void TearDown() override {
    std::filesystem::current_path(old_cwd_);
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::filesystem::path old_cwd_;
};

TEST_F(ProcPathTest, RelativeDotDotFdAndSymlinkNames) {
  const pid_t me = getpid();
  EXPECT_EQ(ResolveProcessPath(me, "../f.sh", false), dir_ + "/f.sh");
  EXPECT_EQ(ResolveProcessPath(me, "./../sub/./../f.sh", false), dir_ + "/f.sh");
  EXPECT_EQ(ResolveProcessPath(me, dir_ + "//sub/../f.sh", false), dir_ + "/f.sh");
  // A symlink is kept as named without follow_symlinks, resolved with it.
  EXPECT_EQ(ResolveProcessPath(me, "link.sh", false), dir_ + "/sub/link.sh");
  EXPECT_EQ(ResolveProcessPath(me, "link.sh", true), dir_ + "/f.sh");
  // A name that does not exist resolves lexically either way.
  EXPECT_EQ(ResolveProcessPath(me, "nope/../x", true), dir_ + "/sub/x");
  // execveat(dirfd, NAME): the kernel's "/dev/fd/N/NAME" goes through the process's fd N.
  int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dfd, 0);
  EXPECT_EQ(ResolveProcessPath(me, "/dev/fd/" + std::to_string(dfd) + "/f.sh", true),
            dir_ + "/f.sh");
  EXPECT_EQ(ResolveProcessPath(me, "/dev/fd/" + std::to_string(dfd), true), dir_);
  close(dfd);
  EXPECT_EQ(ResolveProcessPath(me, "/dev/fd/" + std::to_string(dfd) + "/f.sh", true),
            "");  // closed
  EXPECT_EQ(ResolveProcessPath(me, "", true), "");
  EXPECT_EQ(ResolveProcessPath(0x7ffffff0, "rel", true), "");  // no such process: no cwd
}

TEST(ProcPath, ArgWithPrefixFindsTheWholeArgument) {
  const std::string longarg = "/tmp/" + std::string(300, 'a') + "/script.sh";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", "sleep 5; exit 0", longarg.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait (bounded) until the child's argv is the new image's.
  std::string found;
  for (int i = 0; i < 200 && found.empty(); i++) {
    found = ArgWithPrefix(pid, longarg.substr(0, 255));
    if (found.empty()) usleep(10000);
  }
  EXPECT_EQ(found, longarg);
  EXPECT_EQ(ArgWithPrefix(pid, "sh"), "");     // argv[0] is never taken
  EXPECT_EQ(ArgWithPrefix(pid, longarg), "");  // equal is not longer
  EXPECT_EQ(ArgWithPrefix(pid, "/nowhere/"), "");
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

TEST(ProcessTable, PidReuseWithAnotherStartTimeIsAnotherProcess) {
  ProcessTable t(8);
  bool created = false;
  ProcessInfo* a = t.Upsert(100, 1000, &created);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(created);
  a->exe = "/bin/old";
  a->cgroup_id = 1;
  ProcessInfo* same = t.Upsert(100, 1000, &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(same, a);
  EXPECT_EQ(same->exe, "/bin/old");

  ProcessInfo* b = t.Upsert(100, 2000, &created);  // same pid, later start: a new process
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(created);
  EXPECT_TRUE(b->exe.empty());
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find(100, 1000)->exe, "/bin/old");
  EXPECT_EQ(t.Find(100, 3000), nullptr);
  EXPECT_TRUE(t.Erase(100, 1000));
  EXPECT_FALSE(t.Erase(100, 1000));
  EXPECT_EQ(t.Find(100, 1000), nullptr);
  EXPECT_NE(t.Find(100, 2000), nullptr);
}

TEST(ProcessTable, OverflowIsCountedNotSilent) {
  ProcessTable t(2);
  bool created = false;
  ASSERT_NE(t.Upsert(1, 1, &created), nullptr);
  ASSERT_NE(t.Upsert(2, 1, &created), nullptr);
  EXPECT_EQ(t.Upsert(3, 1, &created), nullptr);
  EXPECT_FALSE(created);
  EXPECT_EQ(t.Upsert(4, 1, &created), nullptr);
  EXPECT_EQ(t.overflows(), 2u);
  EXPECT_NE(t.Upsert(1, 1, &created), nullptr);  // an existing entry is still found when full
  EXPECT_EQ(t.overflows(), 2u);
  EXPECT_EQ(t.size(), 2u);
}

TEST(ProcessTable, EraseTaskDropsOnlyThatTasksEntries) {
  ProcessTable t(16);
  bool created;
  for (uint32_t pid = 1; pid <= 5; pid++) t.Upsert(pid, 10, &created)->cgroup_id = pid % 2 ? 7 : 8;
  EXPECT_EQ(t.EraseTask(7), 3u);  // pids 1, 3, 5
  EXPECT_EQ(t.size(), 2u);
  EXPECT_NE(t.Find(2, 10), nullptr);
  EXPECT_EQ(t.Find(3, 10), nullptr);
  EXPECT_EQ(t.EraseTask(7), 0u);
  EXPECT_EQ(t.EraseTask(8), 2u);
  EXPECT_EQ(t.size(), 0u);
}

std::shared_ptr<Task> MakeTask(const std::string& id, uint64_t cgroup, uint32_t slot) {
  auto t = std::make_shared<Task>();
  t->id = id;
  t->cgroup_id = cgroup;
  t->slot = slot;
  return t;
}

TEST(TaskRegistry, SlotsStartAtOneAndRunOut) {
  TaskRegistry r(4);  // slots 1..3: slot 0 never aliases a zeroed map value
  EXPECT_EQ(*r.AllocateSlot(), 1u);
  EXPECT_EQ(*r.AllocateSlot(), 2u);
  EXPECT_EQ(*r.AllocateSlot(), 3u);
  auto none = r.AllocateSlot();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(none.status().message(), "all 3 task slots are in use");
  r.FreeSlot(2);
  EXPECT_EQ(*r.AllocateSlot(), 2u);  // a freed slot is handed out again
  r.FreeSlot(99);                    // out of range: ignored, no crash
}

TEST(TaskRegistry, GenerationBumpsOnEveryChange) {
  TaskRegistry r(8);
  uint64_t g0 = r.generation();
  ASSERT_TRUE(r.Add(MakeTask("t-1", 11, 1)).ok());
  uint64_t g1 = r.generation();
  EXPECT_GT(g1, g0);
  EXPECT_EQ(r.FindByCgroup(11)->id, "t-1");
  EXPECT_EQ(r.Find("t-1")->cgroup_id, 11u);
  EXPECT_EQ(r.FindByCgroup(12), nullptr);

  auto dup = r.Add(MakeTask("t-1", 12, 2));
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r.generation(), g1);  // a refused Add changes nothing
  EXPECT_EQ(r.FindByCgroup(12), nullptr);

  ASSERT_TRUE(r.Add(MakeTask("t-2", 12, 2)).ok());
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.All().size(), 2u);
  uint64_t g2 = r.generation();
  EXPECT_GT(g2, g1);
  auto gone = r.Remove("t-1");
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->id, "t-1");
  EXPECT_GT(r.generation(), g2);
  EXPECT_EQ(r.FindByCgroup(11), nullptr);
  EXPECT_EQ(r.Find("t-1"), nullptr);
  uint64_t g3 = r.generation();
  EXPECT_EQ(r.Remove("t-1"), nullptr);
  EXPECT_EQ(r.generation(), g3);
}

}  // namespace
}  // namespace writ::identity
