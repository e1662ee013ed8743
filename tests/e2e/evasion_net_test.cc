// The agent as attacker: io_uring, datagrams, unix sockets.
// Fixture, attacker models and outcomes: evasion_fixture.h.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include "evasion_fixture.h"

namespace writ::testlib::evasion {
namespace {

// ---- network
// --------------------------------------------------------------------------------------------

// io_uring: `writ run`'s seccomp filter refuses io_uring_setup (EPERM) so neither IORING_OP_OPENAT
// (which bypasses the open tracepoints) nor IORING_OP_CONNECT ever runs: an OWASP-ASI10 finding,
// and the task is killed by its response. On the LSM rung the ring is allowed (writ run installs
// no filter): each operation meets the same LSM hooks as its syscall, so the open of the denied
// file is refused by lsm/file_open (EPERM, prevented) and the task killed by its response.
TEST_P(Evasion, IoUringIsPreventedAndTheTaskKilled) {
  CmdResult r =
      RunFiles(absl::StrCat(helper_, " uring-open ", secret_, "/key; sleep 5; echo after"));
  if (lsm_) {
    if (!r.out.empty()) {
      EXPECT_THAT(r.out, HasSubstr("uring-open error Operation not permitted"));
    }
    ExpectSecretOpenKilled(r);
    return;
  }
  // The task-wide kill can land before the helper prints (it no longer waits for the finding's
  // journal fsync): ExpectSelfPrevented checks that whatever was printed is the EPERM, and the
  // record's result.
  if (!r.out.empty()) {
    EXPECT_THAT(r.out, HasSubstr("uring-open error Operation not permitted"));
  }
  EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
  ExpectSelfPrevented(r, Events(r), "io_uring_setup", "");
}

// Without the filter (writ run --no-seccomp; the fallback for processes the launcher did not start)
// a monitor-mode task's io_uring connect still meets the cgroup connect hook, which sees every
// connect of the cgroup, io_uring's included: reported (hook "cgroup"), and the io_uring_setup is a
// finding too. On the LSM rung lsm/socket_connect sees it first and reports it (hook "lsm"); the
// ring itself is no finding there.
TEST_P(Evasion, IoUringConnectWithoutTheFilterIsSeenByTheCgroupHook) {
  Listener l(AF_INET);
  ASSERT_NE(l.port, 0);
  CmdResult r =
      Run(absl::StrCat(helper_, " uring-connect ", l.port),
          {"--no-seccomp", "--intent", "e-net-monitor", "--param", absl::StrCat("port=", l.port)});
  EXPECT_THAT(r.out, HasSubstr("uring-connect ok")) << r.err;
  auto evs = Events(r);
  json ev = Find(evs, [&](const json& e) {
    return e.value("kind", "") == "connect" && e["network"].value("dst_port", 0) == l.port;
  });
  ASSERT_FALSE(ev.is_null()) << "io_uring connect not reported";
  EXPECT_EQ(ev["network"]["hook"], lsm_ ? "lsm" : "cgroup");
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "would_deny");
  int reports = 0;
  for (const auto& e : evs) {
    reports += e.value("kind", "") == "connect" && e["network"].value("dst_port", 0) == l.port;
  }
  EXPECT_EQ(reports, 1) << "reported by both the LSM and the cgroup hook";
  if (lsm_) return;
  json setup = Find(evs, [](const json& e) {
    return e.value("kind", "") == "self" && e["syscall"].value("name", "") == "io_uring_setup";
  });
  ASSERT_FALSE(setup.is_null());
  EXPECT_EQ(setup["outcome"], "would_deny");
  EXPECT_EQ(setup["finding"]["frameworks"][0], "OWASP-ASI10");
}

// A datagram sent to a denied address without connect(): refused by cgroup/sendmsg4|6 with EPERM,
// the datagram never leaves, a connect event flagged as a send, the task killed by its response.
TEST_P(Evasion, UdpSendtoWithoutConnectIsPreventedV4AndV6) {
  for (int family : {AF_INET, AF_INET6}) {
    SCOPED_TRACE(family == AF_INET ? "v4" : "v6");
    UdpReceiver rx(family);
    ASSERT_NE(rx.port, 0);
    const std::string ip = family == AF_INET ? "127.0.0.1" : "::1";
    CmdResult r =
        Run(absl::StrCat(helper_, " udp-send ", ip, " ", rx.port, "; sleep 5; echo after"),
            {"--intent", "e-udp"});
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    if (!r.out.empty()) {
      EXPECT_THAT(r.out, HasSubstr("udp-send error Operation not permitted"));
    }
    EXPECT_THAT(r.out, Not(HasSubstr("after")));
    EXPECT_EQ(rx.Received(), 0) << "the datagram left";
    auto evs = Events(r);
    json ev = Find(evs, [&](const json& e) {
      return e.value("kind", "") == "connect" && e["network"].value("dst_port", 0) == rx.port;
    });
    ASSERT_FALSE(ev.is_null()) << "the refused send was not reported";
    EXPECT_EQ(ev["network"]["send"], true);
    EXPECT_EQ(ev["network"]["hook"], "cgroup");
    EXPECT_EQ(ev["network"]["dst_ip"], ip);
    EXPECT_EQ(ev["network"]["result"], -1);
    EXPECT_EQ(ev["verdict"], "violation");
    EXPECT_EQ(ev["outcome"], "prevented");
    EXPECT_EQ(ev["enforcement"], "cgroup-bpf");
    EXPECT_EQ(ev["finding"]["rule"], "e-udp/network.connect.default");
    EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr("datagram to "));
  }
}

// A dual-stack socket reaching IPv4 through a v4-mapped address is judged by the IPv4 rules in the
// kernel too (a deny-only rule used to be applied in userspace only, after the send).
TEST_P(Evasion, UdpSendToAV4MappedAddressIsJudgedAsIpv4) {
  UdpReceiver rx(AF_INET6);
  ASSERT_NE(rx.port, 0);
  CmdResult r = Run(absl::StrCat(helper_, " udp-send ::ffff:127.0.0.1 ", rx.port),
                    {"--intent", "e-net", "--param", absl::StrCat("port=", rx.port)});
  EXPECT_THAT(r.out, HasSubstr("udp-send error Operation not permitted")) << r.err;
  EXPECT_EQ(rx.Received(), 0);
  auto evs = Events(r);
  json ev = Find(evs, [&](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["outcome"], "prevented");
  EXPECT_EQ(ev["finding"]["rule"], "e-net/network.connect.deny[0]");
}

// A flood of refused sends costs the ring buffer a few records: one per destination per second, the
// rest counted (writ_kernel_suppressed_total, and the next record says how many it stands for). The
// task's response is only an alert here, so it keeps sending.
TEST_P(Evasion, UdpFloodOfRefusedSendsIsReportedBoundedAndCounted) {
  UdpReceiver rx(AF_INET);
  ASSERT_NE(rx.port, 0);
  CmdResult r = Run(absl::StrCat(helper_, " udp-send 127.0.0.1 ", rx.port, " 20000; sleep 1.2; ",
                                 helper_, " udp-send 127.0.0.1 ", rx.port),
                    {"--intent", "e-udp-alert"});
  EXPECT_THAT(r.out, HasSubstr("refused 20000 of 20000")) << r.err;
  EXPECT_EQ(rx.Received(), 0);
  auto evs = Events(r);
  std::vector<json> sends;
  for (const auto& e : evs) {
    if (e.value("kind", "") == "connect" && e["network"].value("send", false)) sends.push_back(e);
  }
  // 20000 sends in well under the second it takes: 1 record, plus 1 for the send after the pause.
  ASSERT_GE(sends.size(), 2u);
  EXPECT_LE(sends.size(), 4u) << "refused sends were not rate-limited";
  uint64_t suppressed = 0;
  for (const auto& e : sends) suppressed += e["network"].value("suppressed", 0);
  EXPECT_GE(suppressed, 19990u) << "the record after the pause says how many were not reported";
  EXPECT_EQ(sends.back()["verdict"], "violation");
  CmdResult st = writd_->Writ({"status"});
  EXPECT_THAT(st.out, HasSubstr("kernel_sends_suppressed"));
}

// Unix sockets: an intent lists the sockets it may connect to. Anything else -- an SSH agent, D-Bus
// (whose systemd-run starts processes outside the task), a container runtime -- is refused before
// the socket is looked up, by lsm/socket_connect (BPF-LSM, the VM tier's 6.1) or
// cgroup/connect_unix (Linux 6.7+): nothing connects.
TEST_P(Evasion, UnixConnectToAnUnlistedSocketIsPrevented) {
  UnixListener ok(work_ + "/ok.sock"), agent(work_ + "/agent.sock");
  UnixListener abstract("@writ-evasion-" + std::to_string(getpid()));
  ASSERT_GE(ok.fd, 0);
  ASSERT_GE(agent.fd, 0);
  ASSERT_GE(abstract.fd, 0);
  const std::vector<std::string> intent = {"--intent", "e-unix", "--param",
                                           "ok=" + work_ + "/ok.sock"};
  CmdResult allowed = Run(absl::StrCat(helper_, " unix-connect ", work_, "/ok.sock"), intent);
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err;
  EXPECT_TRUE(ok.Pending());
  json ev = Find(Events(allowed), [](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(ev.is_null()) << "the allowed unix connect was not reported";
  EXPECT_EQ(ev["network"]["family"], "unix");
  EXPECT_EQ(ev["network"]["path"], work_ + "/ok.sock");
  EXPECT_EQ(ev["network"]["peer_path"], work_ + "/ok.sock");
  EXPECT_EQ(ev["verdict"], "allow");

  for (const std::string& name : {work_ + "/agent.sock", abstract.name}) {
    SCOPED_TRACE(name);
    CmdResult r =
        Run(absl::StrCat(helper_, " unix-connect ", name, "; sleep 5; echo after"), intent);
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("unix-connect ok")));
    json refused = Find(Events(r), [](const json& e) { return e.value("kind", "") == "connect"; });
    ASSERT_FALSE(refused.is_null());
    EXPECT_EQ(refused["network"]["path"], name);
    EXPECT_EQ(refused["finding"]["rule"], "e-unix/network.unix.default");
    if (unix_hook_) {
      EXPECT_FALSE(agent.Pending() || abstract.Pending()) << "the refused connect got through";
      EXPECT_EQ(refused["network"]["result"], -1);
      EXPECT_EQ(refused["outcome"], "prevented");
      EXPECT_EQ(refused["enforcement"], lsm_ ? "lsm" : "cgroup-bpf");
    } else {
      // Linux < 6.7 (no cgroup/connect_unix) without BPF-LSM: the connect happened and its caller
      // was killed at the syscall's exit, before it could use the socket.
      EXPECT_EQ(refused["outcome"], "killed_after");
      EXPECT_EQ(refused["enforcement"], "kernel-signal");
      (void)agent.Pending();
      (void)abstract.Pending();
    }
  }
}

// A datagram to a unix name, sent without connect() (how a process writes to /dev/log or journald's
// socket): an unlisted name is refused before anything is sent, by lsm/socket_sendmsg (BPF-LSM: the
// VM tier's 6.1, which has no cgroup unix hooks) or cgroup/sendmsg_unix (Linux 6.7+), and is a
// violation; the task's kill response ends it. A listed name's datagram arrives.
TEST_P(Evasion, UnixDatagramToAnUnlistedNameIsPrevented) {
  auto bound = [](const std::string& name) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strncpy(un.sun_path, name.c_str(), sizeof(un.sun_path) - 1);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)), 0) << name;
    chmod(name.c_str(), 0666);  // the unprivileged agent may write to both sockets
    return fd;
  };
  auto received = [](int fd) {
    int n = 0;
    char b[8];
    while (recv(fd, b, sizeof(b), 0) > 0) n++;
    return n;
  };
  const std::string ok = work_ + "/ok.sock", log = work_ + "/log.sock";
  const int ok_fd = bound(ok), log_fd = bound(log);
  const std::vector<std::string> intent = {"--intent", "e-unix", "--param", "ok=" + ok};
  CmdResult allowed = Run(absl::StrCat(helper_, " unix-send ", ok), intent);
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err;
  EXPECT_EQ(received(ok_fd), 1);

  CmdResult r = Run(absl::StrCat(helper_, " unix-send ", log, "; sleep 5; echo after"), intent);
  const int arrived = received(log_fd);
  close(ok_fd);
  close(log_fd);
  json ev = Find(Events(r), [](const json& e) {
    return e.value("kind", "") == "connect" && e["network"].value("send", false);
  });
  if (!unix_hook_) {
    // Linux < 6.7 without BPF-LSM: no hook sees a datagram sent by name (writ status: "datagrams
    // to a unix name unjudged"; docs/threat-model.md).
    EXPECT_EQ(arrived, 1);
    EXPECT_TRUE(ev.is_null()) << ev.dump();
    return;
  }
  EXPECT_EQ(arrived, 0) << "the refused datagram arrived";
  EXPECT_EQ(r.exit_code, 137) << "the kill response ends the task: " << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  ASSERT_FALSE(ev.is_null()) << "the refused datagram was not reported";
  EXPECT_EQ(ev["network"]["family"], "unix");
  EXPECT_EQ(ev["network"]["path"], log);
  EXPECT_EQ(ev["network"]["result"], -1);
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "prevented");
  // Where both exist (Linux 6.7+ with BPF-LSM) the cgroup hook keeps datagrams and the LSM hook
  // leaves them to it (bpf/writ_lsm.bpf.c).
  if (lsm_) {
    EXPECT_THAT(ev["enforcement"].get<std::string>(), ::testing::AnyOf("lsm", "cgroup-bpf"));
  } else {
    EXPECT_EQ(ev["enforcement"], "cgroup-bpf");
  }
  EXPECT_EQ(ev["finding"]["rule"], "e-unix/network.unix.default");
}

// An allowed name pointed (symlink) at another socket reaches that one: the socket file the connect
// reached is judged too, and the task killed.
TEST_P(Evasion, UnixConnectThroughASymlinkIsJudgedByTheSocketReached) {
  UnixListener agent(work_ + "/agent.sock");
  ASSERT_GE(agent.fd, 0);
  std::filesystem::create_symlink(work_ + "/agent.sock", work_ + "/ok.sock");
  CmdResult r = Run(absl::StrCat(helper_, " unix-connect ", work_, "/ok.sock; sleep 5; echo after"),
                    {"--intent", "e-unix", "--param", "ok=" + work_ + "/ok.sock"});
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  json ev = Find(Events(r), [](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["network"]["path"], work_ + "/ok.sock");
  EXPECT_EQ(ev["network"]["peer_path"], work_ + "/agent.sock");
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "killed_after");
  EXPECT_EQ(ev["finding"]["rule"], "e-unix/network.unix.default");
  EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr("the socket " + work_ + "/agent.sock"));
}

// An intent with an egress allow list and no network.unix allows no unix socket (but writd's own).
TEST_P(Evasion, UnixSocketsAreDeniedByAConnectAllowListsDefault) {
  UnixListener agent(work_ + "/agent.sock");
  ASSERT_GE(agent.fd, 0);
  CmdResult r =
      Run(absl::StrCat(helper_, " unix-connect ", work_, "/agent.sock; sleep 5; echo after"),
          {"--intent", "e-udp"});
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  json ev = Find(Events(r), [](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["outcome"], unix_hook_ ? "prevented" : "killed_after");
  if (unix_hook_) {
    EXPECT_FALSE(agent.Pending());
  }
  EXPECT_EQ(ev["finding"]["rule"], "e-udp/network.unix.default");
  // A socket that does not exist reached nothing (glibc probing nscd): refused, but no finding.
  CmdResult probe = Run(absl::StrCat(helper_, " unix-connect ", work_, "/no-such.sock; echo after"),
                        {"--intent", "e-udp"});
  EXPECT_EQ(probe.exit_code, 0) << probe.out << probe.err;
  EXPECT_THAT(probe.out, HasSubstr("after"));
  json pe = Find(Events(probe), [](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(pe.is_null());
  if (unix_hook_) {
    EXPECT_EQ(pe["outcome"], "prevented");  // elsewhere it failed by itself (ENOENT)
  }
  EXPECT_FALSE(pe.contains("finding"));
}

}  // namespace
}  // namespace writ::testlib::evasion
