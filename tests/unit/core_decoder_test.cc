// Decoder: every field of every record kind, built with the RecordBuilder; malformed records
// counted.
#include <fcntl.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "decode/decoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/alloc_counter.h"
#include "testlib/record_builder.h"

namespace writ::decode {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testlib::RecordBuilder;

// 2023-11-14T22:13:20Z as Unix ns: keeps the expected RFC 3339 strings hand-checkable.
constexpr int64_t kBootToUnix = 1'700'000'000'000'000'000;

class DecoderTest : public ::testing::Test {
 protected:
  absl::Status Decode(const std::vector<uint8_t>& rec) {
    return dec_.Decode(rec.data(), rec.size(), &ev_, &info_);
  }
  Decoder dec_{kBootToUnix, "b00t"};
  v1::Event ev_;
  RecordInfo info_;
};

TEST_F(DecoderTest, ExecEveryField) {
  auto rec = RecordBuilder::Exec()
                 .Pid(4242)
                 .Tid(4243)
                 .Ppid(41)
                 .Uid(1000)
                 .Gid(100)
                 .Cgroup(777)
                 .Slot(5)
                 .StartNs(99'000)
                 .Ktime(123'456'789)
                 .Comm("curl")
                 .Flags(WRIT_F_NEEDS_VERDICT)
                 .Exe("/usr/bin/curl")
                 .Filename("curl")
                 .Args({"curl", "-s", "https://x.test/a b"})
                 .KernelVerdict(WRIT_KV_DENY)
                 .Build();
  ASSERT_TRUE(Decode(rec).ok());
  EXPECT_EQ(ev_.kind(), "exec");
  EXPECT_EQ(ev_.id(), "b00t-75bcd15-1093");  // ktime 123456789 = 0x75bcd15, tid 4243 = 0x1093
  EXPECT_EQ(ev_.time(), "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(ev_.ktime_ns(), 123'456'789u);
  const v1::Process& p = ev_.process();
  EXPECT_EQ(p.pid(), 4242u);
  EXPECT_EQ(p.tid(), 4243u);
  EXPECT_EQ(p.ppid(), 41u);
  EXPECT_EQ(p.uid(), 1000u);
  EXPECT_EQ(p.gid(), 100u);
  EXPECT_EQ(p.start_time_ns(), 99'000u);
  EXPECT_EQ(p.comm(), "curl");
  EXPECT_EQ(p.exe(), "/usr/bin/curl");
  EXPECT_EQ(p.filename(), "curl");
  EXPECT_THAT(p.args(), ElementsAre("curl", "-s", "https://x.test/a b"));
  EXPECT_FALSE(p.args_truncated());
  EXPECT_EQ(info_.kind, EventKind::kExec);
  EXPECT_TRUE(info_.needs_verdict);
  EXPECT_FALSE(info_.kernel_denied);
  EXPECT_FALSE(info_.kernel_stopped);
  EXPECT_EQ(info_.kernel_verdict, static_cast<uint32_t>(WRIT_KV_DENY));
  EXPECT_EQ(info_.cgroup_id, 777u);
  EXPECT_EQ(info_.start_time_ns, 99'000u);
  EXPECT_EQ(info_.tgid, 4242u);
  EXPECT_EQ(info_.slot, 5u);
  EXPECT_EQ(info_.ktime_ns, 123'456'789u);
  EXPECT_EQ(dec_.stats().decoded, 1u);
}

TEST_F(DecoderTest, ExecRootAndNoArgs) {
  ASSERT_TRUE(Decode(RecordBuilder::Exec().Pid(1).Exe("/").Build()).ok());
  EXPECT_EQ(ev_.process().exe(), "/");
  EXPECT_EQ(ev_.process().args_size(), 0);
}

TEST_F(DecoderTest, ExecMoreThanSixteenArgsTruncated) {
  std::vector<std::string> args;
  for (int i = 0; i < 20; i++) args.push_back("a" + std::to_string(i));
  ASSERT_TRUE(Decode(RecordBuilder::Exec().Pid(1).Exe("/bin/x").Args(args).Build()).ok());
  ASSERT_EQ(ev_.process().args_size(), WRIT_ARGC_MAX);
  EXPECT_EQ(ev_.process().args(0), "a0");
  EXPECT_EQ(ev_.process().args(15), "a15");
  EXPECT_TRUE(ev_.process().args_truncated());
}

TEST_F(DecoderTest, ExecExactlySixteenArgsNotTruncated) {
  std::vector<std::string> args(WRIT_ARGC_MAX, "x");
  ASSERT_TRUE(Decode(RecordBuilder::Exec().Pid(1).Exe("/bin/x").Args(args).Build()).ok());
  EXPECT_EQ(ev_.process().args_size(), WRIT_ARGC_MAX);
  EXPECT_FALSE(ev_.process().args_truncated());
}

TEST_F(DecoderTest, ExecLongArgumentCutAndKernelTruncationFlag) {
  std::string big(WRIT_NAME_MAX + 50, 'z');
  ASSERT_TRUE(
      Decode(RecordBuilder::Exec().Pid(1).Exe("/bin/x").Args({"x", big, "y"}).Build()).ok());
  ASSERT_EQ(ev_.process().args_size(), 3);
  EXPECT_EQ(ev_.process().args(1), std::string(WRIT_NAME_MAX, 'z'));
  EXPECT_EQ(ev_.process().args(2), "y");
  EXPECT_TRUE(ev_.process().args_truncated());

  ASSERT_TRUE(
      Decode(
          RecordBuilder::Exec().Pid(1).Exe("/bin/x").Args({"x"}).Flags(WRIT_F_ARGS_TRUNC).Build())
          .ok());
  EXPECT_THAT(ev_.process().args(), ElementsAre("x"));
  EXPECT_TRUE(ev_.process().args_truncated());
}

TEST_F(DecoderTest, ForkNamesTheParent) {
  ASSERT_TRUE(Decode(RecordBuilder::Fork().Pid(200).Ppid(1).Parent(150, 7).Cgroup(9).Build()).ok());
  EXPECT_EQ(ev_.kind(), "fork");
  EXPECT_EQ(ev_.process().pid(), 200u);
  EXPECT_EQ(ev_.process().ppid(), 150u);  // the forking process, not the header's real_parent
  EXPECT_EQ(info_.cgroup_id, 9u);
}

TEST_F(DecoderTest, ExitCodeAndSignal) {
  ASSERT_TRUE(Decode(RecordBuilder::Exit().Pid(3).WaitStatus(3 << 8).Build()).ok());
  EXPECT_EQ(ev_.kind(), "exit");
  EXPECT_EQ(ev_.process().exit_code(), 3);
  EXPECT_EQ(ev_.process().exit_signal(), 0u);

  ASSERT_TRUE(Decode(RecordBuilder::Exit().Pid(3).WaitStatus(9).Build()).ok());
  EXPECT_EQ(ev_.process().exit_code(), 137);
  EXPECT_EQ(ev_.process().exit_signal(), 9u);

  // A core dump sets 0x80 on top of the signal: still 128 + signal.
  ASSERT_TRUE(Decode(RecordBuilder::Exit().Pid(3).WaitStatus(0x80 | 11).Build()).ok());
  EXPECT_EQ(ev_.process().exit_code(), 139);
  EXPECT_EQ(ev_.process().exit_signal(), 11u);
}

TEST_F(DecoderTest, OpenResolvedEveryField) {
  auto rec = RecordBuilder::Open()
                 .Pid(10)
                 .OpenPath("/home/u/.ssh/id_rsa")
                 .OpenFlags(O_RDWR | O_CREAT | O_TRUNC)
                 .Result(7)
                 .Syscall(257)
                 .FileId((8u << 20) | 1, 0x1234567890ull)
                 .Build();
  ASSERT_TRUE(Decode(rec).ok());
  const v1::File& f = ev_.file();
  EXPECT_EQ(f.inode(), 0x1234567890ull);
  EXPECT_EQ(f.dev(), (8u << 20) | 1);
  EXPECT_EQ(ev_.kind(), "open");
  EXPECT_EQ(f.path(), "/home/u/.ssh/id_rsa");
  EXPECT_THAT(f.flags(), ElementsAre("read", "write", "create", "truncate"));
  EXPECT_EQ(f.result(), 0);  // an fd is success, reported as 0
  EXPECT_FALSE(f.unresolved());
  EXPECT_FALSE(f.truncated());
  EXPECT_EQ(f.raw_flags(), static_cast<uint32_t>(O_RDWR | O_CREAT | O_TRUNC));
  EXPECT_EQ(f.syscall(), "openat");
}

TEST_F(DecoderTest, OpenFlagsAndSyscallNames) {
  struct Case {
    uint32_t flags;
    std::vector<std::string> want;
  };
  for (const Case& c : {Case{O_RDONLY, {"read"}}, Case{O_WRONLY, {"write"}},
                        Case{O_WRONLY | O_CREAT, {"write", "create"}},
                        Case{O_RDONLY | O_TRUNC, {"read", "truncate"}}}) {
    ASSERT_TRUE(
        Decode(RecordBuilder::Open().Pid(1).OpenPath("/f").OpenFlags(c.flags).Build()).ok());
    EXPECT_EQ(std::vector<std::string>(ev_.file().flags().begin(), ev_.file().flags().end()),
              c.want)
        << "flags " << c.flags;
  }
  for (auto [nr, name] : std::vector<std::pair<uint32_t, std::string>>{
           {2, "open"}, {85, "creat"}, {257, "openat"}, {437, "openat2"}, {9999, ""}}) {
    ASSERT_TRUE(Decode(RecordBuilder::Open().Pid(1).OpenPath("/f").Syscall(nr).Build()).ok());
    EXPECT_EQ(ev_.file().syscall(), name);
  }
}

TEST_F(DecoderTest, OpenFailedIsUnresolvedWithErrno) {
  ASSERT_TRUE(Decode(RecordBuilder::Open()
                         .Pid(1)
                         .UnresolvedPath("../missing/x.txt")
                         .OpenFlags(O_RDONLY)
                         .Result(-2)
                         .Build())
                  .ok());
  EXPECT_EQ(ev_.file().path(), "../missing/x.txt");
  EXPECT_TRUE(ev_.file().unresolved());
  EXPECT_EQ(ev_.file().result(), -2);
}

TEST_F(DecoderTest, OpenPathTruncatedFlag) {
  ASSERT_TRUE(
      Decode(RecordBuilder::Open().Pid(1).OpenPath("/deep/er").Flags(WRIT_F_PATH_TRUNC).Build())
          .ok());
  EXPECT_TRUE(ev_.file().truncated());
  EXPECT_EQ(ev_.file().path(), "/deep/er");
}

TEST_F(DecoderTest, ConnectIpv4AndIpv6) {
  ASSERT_TRUE(Decode(RecordBuilder::Connect()
                         .Pid(1)
                         .Dst("127.0.0.1", 8443)
                         .Result(-1)
                         .KernelVerdict(WRIT_KV_DENY)
                         .Build())
                  .ok());
  const v1::Network& n = ev_.network();
  EXPECT_EQ(ev_.kind(), "connect");
  EXPECT_EQ(n.family(), "inet");
  EXPECT_EQ(n.dst_ip(), "127.0.0.1");
  EXPECT_EQ(n.dst_port(), 8443u);
  EXPECT_EQ(n.result(), -1);
  EXPECT_EQ(n.hook(), "syscall");
  EXPECT_EQ(info_.kernel_verdict, static_cast<uint32_t>(WRIT_KV_DENY));

  ASSERT_TRUE(
      Decode(
          RecordBuilder::Connect().Pid(1).Dst("2001:db8::7", 53).Flags(WRIT_F_CGROUP_HOOK).Build())
          .ok());
  EXPECT_EQ(ev_.network().family(), "inet6");
  EXPECT_EQ(ev_.network().dst_ip(), "2001:db8::7");
  EXPECT_EQ(ev_.network().dst_port(), 53u);
  EXPECT_EQ(ev_.network().result(), 0);
  EXPECT_EQ(ev_.network().hook(), "cgroup");
}

TEST_F(DecoderTest, SelfRecordNamesSyscallTargetAndArgs) {
  ASSERT_TRUE(Decode(RecordBuilder::Self()
                         .Pid(7)
                         .SelfCall(62, -1, WRIT_SELF_WRITD, 4242, 4243, 9)
                         .Flags(WRIT_F_SECCOMP | WRIT_F_NEEDS_VERDICT)
                         .Build())
                  .ok());
  EXPECT_EQ(ev_.kind(), "self");
  EXPECT_EQ(ev_.syscall().name(), "kill");
  EXPECT_EQ(ev_.syscall().result(), -1);
  EXPECT_EQ(ev_.syscall().target(), "writd");
  EXPECT_EQ(ev_.syscall().target_pid(), 4242u);  // a thread id (4243) resolved to its process
  ASSERT_EQ(ev_.syscall().args_size(), 3);
  EXPECT_EQ(ev_.syscall().args(0), 4243);
  EXPECT_EQ(ev_.syscall().args(1), 9);
  EXPECT_EQ(ev_.syscall().args(2), 0);
  EXPECT_TRUE(info_.seccomp);
  ASSERT_TRUE(
      Decode(RecordBuilder::Self().Pid(7).SelfCall(425, -1, WRIT_SELF_NONE, 0, 4, 0).Build()).ok());
  EXPECT_EQ(ev_.syscall().name(), "io_uring_setup");
  EXPECT_EQ(ev_.syscall().target(), "");
  ASSERT_TRUE(Decode(RecordBuilder::Self().Pid(7).SelfCall(12345, 0, 99, 0, 0, 0).Build()).ok());
  EXPECT_EQ(ev_.syscall().name(), "unknown");  // a number the decoder does not know: still decoded
  auto shorty = RecordBuilder::Self().Pid(1).Build();
  shorty.resize(sizeof(writ_event_hdr) + 8);
  reinterpret_cast<writ_event_hdr*>(shorty.data())->size = shorty.size();
  EXPECT_THAT(std::string(Decode(shorty).message()),
              HasSubstr("self record of 88 bytes, needs 120"));
}

TEST_F(DecoderTest, BadVersionCounted) {
  absl::Status st = Decode(RecordBuilder::Exit().Pid(1).Version(WRIT_ABI_VERSION + 1).Build());
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr(absl::StrCat("ABI version ", WRIT_ABI_VERSION + 1, ", expected ",
                                     WRIT_ABI_VERSION)));
  EXPECT_EQ(dec_.stats().bad_version, 1u);
  EXPECT_EQ(dec_.stats().decoded, 0u);
}

TEST_F(DecoderTest, ShortRecordsCounted) {
  auto rec = RecordBuilder::Exit().Pid(1).Build();
  // Shorter than a header.
  EXPECT_THAT(std::string(dec_.Decode(rec.data(), 10, &ev_, &info_).message()),
              HasSubstr("10 bytes is shorter than a header"));
  // Header claims more than the buffer holds.
  EXPECT_THAT(std::string(dec_.Decode(rec.data(), rec.size() - 1, &ev_, &info_).message()),
              HasSubstr("claims 88 bytes, has 87"));
  // Header consistent, but too short for the kind.
  auto shorty = RecordBuilder::Connect().Pid(1).Build();
  shorty.resize(sizeof(writ_event_hdr) + 4);
  reinterpret_cast<writ_event_hdr*>(shorty.data())->size = shorty.size();
  EXPECT_THAT(std::string(Decode(shorty).message()),
              HasSubstr("connect record of 84 bytes, needs 112"));
  EXPECT_EQ(dec_.stats().bad_size, 3u);
  EXPECT_EQ(dec_.stats().decoded, 0u);
}

TEST_F(DecoderTest, UnknownKindCounted) {
  for (uint16_t kind : {uint16_t{0}, uint16_t{WRIT_EV_KIND_MAX}, uint16_t{999}}) {
    absl::Status st = Decode(RecordBuilder::Exit().Pid(1).Kind(kind).Build());
    EXPECT_THAT(std::string(st.message()),
                HasSubstr("unknown record kind " + std::to_string(kind)));
  }
  EXPECT_EQ(dec_.stats().bad_kind, 3u);
}

TEST_F(DecoderTest, EventStorageReusedWithoutLeftovers) {
  ASSERT_TRUE(Decode(RecordBuilder::Open().Pid(1).OpenPath("/a").Build()).ok());
  ASSERT_TRUE(Decode(RecordBuilder::Exit().Pid(2).Build()).ok());
  EXPECT_FALSE(ev_.has_file());  // Decode clears what the previous record left
  EXPECT_EQ(ev_.process().pid(), 2u);
}

// The pipeline decodes every record into one reused Event: once its strings and sub-messages have
// grown, a stream that alternates kinds (the sub-message of a kind the last record did not use
// waits in the decoder) allocates nothing.
TEST_F(DecoderTest, AlternatingKindsAllocateNothingOnceWarm) {
  const std::vector<std::vector<uint8_t>> recs = {
      RecordBuilder::Open()
          .Pid(7)
          .OpenPath("/usr/lib/x86_64-linux-gnu/libc.so.6")
          .OpenFlags(0)
          .Build(),
      RecordBuilder::Exec()
          .Pid(7)
          .Exe("/usr/bin/git")
          .Filename("git")
          .Args({"git", "status"})
          .Build(),
      RecordBuilder::Connect().Pid(7).Build(),
      RecordBuilder::Open().Pid(8).OpenPath("/home/dev/repo/src/main.cc").OpenFlags(01101).Build(),
      RecordBuilder::Fork().Pid(9).Parent(7, 1).Build(),
      RecordBuilder::Self().Pid(7).SelfCall(62, -1, WRIT_SELF_WRITD, 1, 9, 9).Build(),
      RecordBuilder::Exit().Pid(9).WaitStatus(0).Build(),
  };
  for (int warm = 0; warm < 2; warm++) {
    for (const auto& r : recs) ASSERT_TRUE(Decode(r).ok());
  }
  testlib::AllocCounter::Start();
  for (int i = 0; i < 700; i++) ASSERT_TRUE(Decode(recs[i % recs.size()]).ok());
  EXPECT_EQ(testlib::AllocCounter::Stop(), 0);
  EXPECT_EQ(ev_.kind(), "exit");  // and the last one decoded as itself
  EXPECT_FALSE(ev_.has_file());
}

TEST(ComponentsToPath, ReversesComponents) {
  auto conv = [](const std::string& enc) {
    std::string out;
    ComponentsToPath(enc.data(), enc.size(), &out);
    return out;
  };
  EXPECT_EQ(conv(std::string("", 0)), "/");
  EXPECT_EQ(conv(std::string("\0\0", 2)), "/");  // trailing NULs only: still the root
  EXPECT_EQ(conv(std::string("etc\0", 4)), "/etc");
  EXPECT_EQ(conv(std::string("etc", 3)), "/etc");  // last NUL missing (cut record)
  EXPECT_EQ(conv(std::string("file\0dir\0usr\0", 13)), "/usr/dir/file");
  EXPECT_EQ(conv(testlib::LeafFirst("/a/b c/d.e")), "/a/b c/d.e");
  EXPECT_EQ(conv(std::string("a\0\0b", 4)), "/b//a");  // an empty component stays one
  EXPECT_EQ(conv(std::string("\0a", 2)), "/a/");       // an empty leaf
  std::string deep;                                    // 200 components, as a long path has
  for (int i = 199; i >= 0; --i) deep += "c" + std::to_string(i) + std::string(1, '\0');
  std::string want;
  for (int i = 0; i < 200; ++i) want += "/c" + std::to_string(i);
  EXPECT_EQ(conv(deep), want);
  std::string appended = "x:";
  ComponentsToPath("b\0a\0", 4, &appended);
  EXPECT_EQ(appended, "x:/a/b");  // appends, never overwrites
}

TEST(KindName, Names) {
  EXPECT_STREQ(KindName(WRIT_EV_EXEC), "exec");
  EXPECT_STREQ(KindName(WRIT_EV_FORK), "fork");
  EXPECT_STREQ(KindName(WRIT_EV_EXIT), "exit");
  EXPECT_STREQ(KindName(WRIT_EV_OPEN), "open");
  EXPECT_STREQ(KindName(WRIT_EV_CONNECT), "connect");
  EXPECT_STREQ(KindName(42), "unknown");
}

}  // namespace
}  // namespace writ::decode

namespace writ::decode {
namespace {

// ---- records of the containment hooks
// ---------------------------------------------------------------

TEST_F(DecoderTest, UnixConnectNamesThePathOrAbstractNameAndTheSocketReached) {
  ASSERT_TRUE(Decode(RecordBuilder::UnixConnect("/tmp/ok.sock", "/run/agent.sock")
                         .Pid(7)
                         .Result(0)
                         .Flags(WRIT_F_CGROUP_HOOK)
                         .Build())
                  .ok());
  EXPECT_EQ(ev_.kind(), "connect");
  EXPECT_EQ(ev_.network().family(), "unix");
  EXPECT_EQ(ev_.network().path(), "/tmp/ok.sock");
  EXPECT_EQ(ev_.network().peer_path(), "/run/agent.sock");
  EXPECT_EQ(ev_.network().dst_ip(), "");
  EXPECT_EQ(ev_.network().hook(), "cgroup");
  // An abstract name: every byte after the leading NUL, written @name.
  ASSERT_TRUE(
      Decode(RecordBuilder::UnixConnect("@/tmp/.X11-unix/X0").Pid(7).Result(-1).Build()).ok());
  EXPECT_EQ(ev_.network().path(), "@/tmp/.X11-unix/X0");
  EXPECT_EQ(ev_.network().peer_path(), "");
  EXPECT_EQ(ev_.network().result(), -1);
  // Cut short of its name: refused, counted.
  auto rec = RecordBuilder::UnixConnect("/x").Pid(7).Build();
  rec.resize(offsetof(writ_unix_connect_event, name));
  reinterpret_cast<writ_event_hdr*>(rec.data())->size = rec.size();
  EXPECT_THAT(std::string(Decode(rec).message()), HasSubstr("unix connect record of"));
}

TEST_F(DecoderTest, DatagramSendIsAConnectFlaggedAsASend) {
  ASSERT_TRUE(Decode(RecordBuilder::Connect()
                         .Pid(7)
                         .Dst("10.1.2.3", 53)
                         .Result(-1)
                         .Suppressed(41)
                         .Flags(WRIT_F_SEND | WRIT_F_CGROUP_HOOK | WRIT_F_KERNEL_DENY)
                         .Build())
                  .ok());
  EXPECT_TRUE(ev_.network().send());
  EXPECT_EQ(ev_.network().suppressed(), 41u);
  EXPECT_EQ(ev_.network().dst_ip(), "10.1.2.3");
  EXPECT_TRUE(info_.kernel_denied);
  ASSERT_TRUE(Decode(RecordBuilder::Connect().Pid(7).Dst("10.1.2.3", 53).Build()).ok());
  EXPECT_FALSE(ev_.network().send());
}

TEST_F(DecoderTest, LinkRecordsGiveBothNamesResolvedOrAsPassed) {
  ASSERT_TRUE(Decode(RecordBuilder::Link(82, "/w/p/.env", "/w/p/e.txt")
                         .Pid(9)
                         .Flags(WRIT_F_KERNEL_DENY)
                         .LinkFlags(WRIT_LINK_HIT_OLD)
                         .Build())
                  .ok());
  EXPECT_EQ(ev_.kind(), "link");
  EXPECT_EQ(ev_.file().syscall(), "rename");
  EXPECT_EQ(ev_.file().path(), "/w/p/.env");
  EXPECT_EQ(ev_.file().new_path(), "/w/p/e.txt");
  EXPECT_FALSE(ev_.file().unresolved());
  EXPECT_TRUE(info_.kernel_denied);
  EXPECT_EQ(info_.kind, EventKind::kLink);
  // A symlink's relative content points from the link's directory.
  ASSERT_TRUE(
      Decode(RecordBuilder::Link(266, "../.ssh/./id", "/w/p/s", /*old_raw=*/true).Pid(9).Build())
          .ok());
  EXPECT_EQ(ev_.file().syscall(), "symlinkat");
  EXPECT_EQ(ev_.file().path(), "/w/.ssh/id");
  EXPECT_FALSE(ev_.file().unresolved());
  // A relative name whose directory the kernel could not find: as passed, unresolved.
  ASSERT_TRUE(Decode(RecordBuilder::Link(265, "k", "/w/x", /*old_raw=*/true).Pid(9).Build()).ok());
  EXPECT_EQ(ev_.file().syscall(), "linkat");
  EXPECT_EQ(ev_.file().path(), "k");
  EXPECT_TRUE(ev_.file().unresolved());
  // Lengths past the record are cut to it, never read beyond.
  auto rec = RecordBuilder::Link(86, "/a", "/b").Pid(9).Build();
  reinterpret_cast<writ_link_event*>(rec.data())->new_len = 5000;
  ASSERT_TRUE(Decode(rec).ok());
  EXPECT_EQ(ev_.file().new_path(), "/b");
}

TEST_F(DecoderTest, ContainmentSyscallAndFlagNames) {
  ASSERT_TRUE(
      Decode(RecordBuilder::Open().Pid(7).OpenPath("/etc/shadow").Syscall(304).Result(3).Build())
          .ok());
  EXPECT_EQ(ev_.file().syscall(), "open_by_handle_at");
  for (const auto& [nr, name] :
       std::vector<std::pair<uint32_t, std::string>>{{72, "fcntl"},
                                                     {16, "ioctl"},
                                                     {109, "setpgid"},
                                                     {175, "init_module"},
                                                     {313, "finit_module"},
                                                     {246, "kexec_load"},
                                                     {320, "kexec_file_load"}}) {
    ASSERT_TRUE(
        Decode(RecordBuilder::Self().Pid(7).SelfCall(nr, -1, WRIT_SELF_WRITD, 42, 3, 8, 42).Build())
            .ok());
    EXPECT_EQ(ev_.syscall().name(), name);
    EXPECT_EQ(ev_.syscall().args(2), 42);
  }
  ASSERT_TRUE(Decode(RecordBuilder::Exec()
                         .Pid(7)
                         .Exe("/usr/lib/ld.so")
                         .Flags(WRIT_F_LOADER | WRIT_F_PATH_TRUNC)
                         .Build())
                  .ok());
  EXPECT_TRUE(info_.loader);
  EXPECT_TRUE(info_.path_truncated);
}

TEST(LexicalJoin, AppliesDotsAndNeverClimbsAboveTheRoot) {
  auto join = [](std::string_view b, std::string_view r) {
    std::string out;
    LexicalJoin(b, r, &out);
    return out;
  };
  EXPECT_EQ(join("/a/b", "c"), "/a/b/c");
  EXPECT_EQ(join("/a/b", "../c/./d"), "/a/c/d");
  EXPECT_EQ(join("/a", "../../../x"), "/x");
  EXPECT_EQ(join("/a", "/abs//p/"), "/abs/p");
  EXPECT_EQ(join("/", ".."), "/");
}

}  // namespace
}  // namespace writ::decode
