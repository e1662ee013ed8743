// Golden bytes of both encoders: a fixed set of events (every kind the daemon emits, every field of
// every sub-message, escaping of every byte value, long strings) encoded to native JSON and OCSF
// and compared byte for byte with tests/unit/golden/events.{json,ocsf}.jsonl. The other encoder
// tests parse the output and check meaning; this one pins the exact bytes, so a faster encoder
// cannot change a single character of what SIEMs receive.
//
// The golden files were written by the encoders as they were before the raw-cursor JsonWriter
// (commit 0ff8c61). Regenerate them only for an intended format change:
//   WRIT_UPDATE_GOLDEN=1 build/bin/sinks_unit_test --gtest_filter='SinksGolden.*'
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sinks/json_encoder.h"
#include "sinks/ocsf_encoder.h"
#include "writ/v1/event.pb.h"

namespace writ::sinks {
namespace {

struct Case {
  std::string name;
  writ::v1::Event ev;
  bool ocsf = true;  // OCSF writes task params in map order: only single-param cases are stable
};

writ::v1::Event Base(const std::string& kind, const std::string& id) {
  writ::v1::Event ev;
  ev.set_id(id);
  ev.set_time("2026-11-28T17:41:59.123456789Z");
  ev.set_ktime_ns(26581234567890ull);
  ev.set_kind(kind);
  auto* a = ev.mutable_agent();
  a->set_spiffe_id("spiffe://example.org/load");
  a->set_task_id("t-6f1c2a9b");
  a->set_intent("coding-agent");
  ev.set_host("writ-vm");
  return ev;
}

void SetProcess(writ::v1::Event* ev, uint32_t pid) {
  auto* p = ev->mutable_process();
  p->set_pid(pid);
  p->set_tid(pid + 1);
  p->set_ppid(pid - 1);
  p->set_uid(0);
  p->set_gid(0);
  p->set_exe("/work/wt-uperf/build/bin/workload");
  p->set_comm("workload");
  p->set_start_time_ns(26580000000000ull + pid);
}

// Every byte value 0x01..0xff once, as a path component: control bytes, quotes, backslash, DEL and
// every byte that cannot start or continue valid UTF-8 where it stands.
std::string AllBytes() {
  std::string s = "/tmp/";
  for (int b = 1; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

std::vector<Case> Cases() {
  std::vector<Case> v;
  {  // the load path: an allowed open in a monitor-mode task
    auto ev = Base("open", "9f2c-182d3c4e5f6a-4d2");
    SetProcess(&ev, 1234);
    auto* f = ev.mutable_file();
    f->set_path("/tmp/writ-e2e-AbC123/repo/file");
    f->add_flags("read");
    f->set_raw_flags(0x8000);
    f->set_syscall("openat");
    ev.set_verdict("allow");
    ev.set_outcome("allowed");
    v.push_back({"open_allowed", ev});
  }
  {  // a failed, unresolved, truncated open with every flag
    auto ev = Base("open", "9f2c-1-2");
    SetProcess(&ev, 77);
    auto* f = ev.mutable_file();
    f->set_path("relative/../path");
    f->add_flags("read");
    f->add_flags("write");
    f->add_flags("create");
    f->add_flags("truncate");
    f->set_result(-2);
    f->set_unresolved(true);
    f->set_truncated(true);
    f->set_raw_flags(0x242);
    f->set_syscall("openat2");
    ev.set_verdict("allow");
    ev.set_outcome("allowed");
    v.push_back({"open_failed_unresolved", ev});
  }
  {  // a violation killed in the kernel, with a finding
    auto ev = Base("open", "9f2c-2-3");
    SetProcess(&ev, 4242);
    auto* f = ev.mutable_file();
    f->set_path("/etc/shadow");
    f->add_flags("read");
    f->set_result(-1);
    f->set_syscall("open");
    ev.set_verdict("violation");
    ev.set_outcome("killed");
    ev.set_enforcement("kernel-signal");
    auto* fi = ev.mutable_finding();
    fi->set_rule("coding-agent/files.deny[0]");
    fi->set_category("file");
    fi->set_reason("secret file: /etc/shadow");
    fi->add_frameworks("OWASP-ASI03");
    fi->add_frameworks("MITRE-T1003");
    fi->add_responses("alert");
    fi->add_responses("kill");
    fi->set_severity("critical");
    v.push_back({"open_violation", ev});
  }
  {  // exec with argv that needs every kind of escaping, and a filename differing from exe
    auto ev = Base("exec", "9f2c-3-4");
    SetProcess(&ev, 300);
    auto* p = ev.mutable_process();
    p->set_exe("/usr/bin/python3.11");
    p->set_filename("/usr/bin/python3");
    p->set_comm("python3");
    p->add_args("python3");
    p->add_args("-c");
    p->add_args("print(\"a\\tb\")\n\r\b\f\x01\x1f\x7f");
    p->add_args("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");  // valid 2-, 3-, 4-byte UTF-8
    p->add_args("\xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf \xff");  // invalid forms
    p->add_args("");
    p->set_args_truncated(true);
    ev.set_verdict("violation");
    ev.set_outcome("would_deny");
    auto* fi = ev.mutable_finding();
    fi->set_rule("coding-agent/exec.default");
    fi->set_category("exec");
    fi->set_reason("exec not in the allow list: /usr/bin/python3.11");
    fi->set_severity("medium");
    v.push_back({"exec_escaping", ev});
  }
  {  // fork
    auto ev = Base("fork", "9f2c-4-5");
    SetProcess(&ev, 301);
    v.push_back({"fork", ev});
  }
  {  // exit: exit_code 0 is written
    auto ev = Base("exit", "9f2c-5-6");
    SetProcess(&ev, 302);
    v.push_back({"exit_clean", ev});
  }
  {  // exit by signal
    auto ev = Base("exit", "9f2c-6-7");
    SetProcess(&ev, 303);
    ev.mutable_process()->set_exit_code(137);
    ev.mutable_process()->set_exit_signal(9);
    v.push_back({"exit_signal", ev});
  }
  {  // connect, IPv4, allowed, cgroup hook
    auto ev = Base("connect", "9f2c-7-8");
    SetProcess(&ev, 304);
    auto* n = ev.mutable_network();
    n->set_family("inet");
    n->set_dst_ip("127.0.0.1");
    n->set_dst_port(9077);
    n->set_hook("cgroup");
    ev.set_verdict("allow");
    ev.set_outcome("allowed");
    v.push_back({"connect_allowed", ev});
  }
  {  // connect, IPv6, prevented in the kernel, port 0
    auto ev = Base("connect", "9f2c-8-9");
    SetProcess(&ev, 305);
    auto* n = ev.mutable_network();
    n->set_family("inet6");
    n->set_dst_ip("2001:db8::1");
    n->set_result(-1);
    n->set_hook("syscall");
    ev.set_verdict("violation");
    ev.set_outcome("prevented");
    ev.set_enforcement("kernel-deny");
    auto* fi = ev.mutable_finding();
    fi->set_rule("coding-agent/network.default");
    fi->set_category("network");
    fi->set_reason("connect not allowed: [2001:db8::1]:0");
    fi->set_severity("high");
    v.push_back({"connect_prevented", ev});
  }
  {  // self-protection: a syscall aimed at writd
    auto ev = Base("self", "9f2c-9-a");
    SetProcess(&ev, 306);
    auto* sc = ev.mutable_syscall();
    sc->set_name("kill");
    sc->set_result(-1);
    sc->set_target("writd");
    sc->set_target_pid(999);
    sc->add_args(999);
    sc->add_args(-9);
    ev.set_verdict("violation");
    ev.set_outcome("stopped");
    auto* fi = ev.mutable_finding();
    fi->set_rule("self-protection/signal");
    fi->set_category("self");
    fi->set_reason("signal to writd");
    fi->add_frameworks("OWASP-ASI10");
    fi->set_severity("low");
    v.push_back({"self_kill", ev});
  }
  {  // self with no args at all (empty array is still written)
    auto ev = Base("self", "9f2c-a-b");
    ev.mutable_syscall()->set_name("bpf");
    v.push_back({"self_no_args", ev});
  }
  {  // action event
    auto ev = Base("action", "9f2c-s18a-1");
    ev.clear_ktime_ns();
    auto* a = ev.mutable_action();
    a->set_type("kill");
    a->set_result("ok");
    a->set_latency_us(87);
    a->set_target("pid 4242");
    a->set_reason("violation");
    v.push_back({"action", ev});
  }
  {  // task start: one param (both encoders), principal, parent and a chain
    auto ev = Base("task_start", "9f2c-s18a-2");
    auto* ag = ev.mutable_agent();
    ag->set_principal("user:alice@example.org");
    ag->set_parent_task("t-00000001");
    ag->add_chain("user:alice@example.org");
    ag->add_chain("spiffe://example.org/load");
    auto* t = ev.mutable_task();
    t->set_deadline("2026-11-28T18:41:59Z");
    t->set_cgroup("/sys/fs/cgroup/unified/writ/t-6f1c2a9b");
    (*t->mutable_params())["repo"] = "/tmp/writ-e2e-AbC123/repo";
    t->add_command("workload");
    t->add_command("open");
    t->add_command("1000");
    v.push_back({"task_start", ev});
  }
  {  // task start with several params: native JSON sorts them
    auto ev = Base("task_start", "9f2c-s18a-3");
    auto* t = ev.mutable_task();
    (*t->mutable_params())["zeta"] = "z";
    (*t->mutable_params())["alpha"] = "a";
    (*t->mutable_params())["m\"id\\"] = "quote\"and\\backslash";
    (*t->mutable_params())["empty"] = "";
    t->set_adopted(true);
    t->set_workload("nightly-triage");
    v.push_back({"task_params", ev, false});
  }
  {  // task end
    auto ev = Base("task_end", "9f2c-s18a-4");
    ev.mutable_task()->set_reason("exited");
    v.push_back({"task_end", ev});
  }
  {  // approval request
    auto ev = Base("approval_request", "9f2c-s18a-5");
    auto* ap = ev.mutable_approval();
    ap->set_id("ap-1");
    ap->set_action("exec /usr/bin/git push origin main");
    ap->set_action_hash("3f5a");
    ap->set_expires("2026-11-28T17:46:59Z");
    ap->set_decided_by("user:bob");
    ap->set_decided_via("console from 127.0.0.1:51234");
    ap->set_scope("once");
    ap->set_reason("release");
    ev.set_verdict("needs_approval");
    v.push_back({"approval", ev});
  }
  {  // credential
    auto ev = Base("credential", "9f2c-s18a-6");
    auto* c = ev.mutable_credential();
    c->set_type("jwt-svid");
    c->set_jti("j-1");
    c->set_provider("writ");
    c->set_operation("revoke");
    c->set_expires("2026-11-28T18:41:59Z");
    c->set_detail("violation: exec /usr/bin/curl");
    v.push_back({"credential", ev});
  }
  {  // every byte value in a path, and a long path
    auto ev = Base("open", "9f2c-b-c");
    SetProcess(&ev, 307);
    ev.mutable_file()->set_path(AllBytes());
    v.push_back({"open_all_bytes", ev});
    auto ev2 = Base("open", "9f2c-c-d");
    SetProcess(&ev2, 308);
    std::string lng;
    for (int i = 0; i < 200; ++i) lng += "/component-" + std::to_string(i);
    ev2.mutable_file()->set_path(lng);
    v.push_back({"open_long_path", ev2});
  }
  {  // an unknown kind, no agent, zero numbers everywhere, and a record with nothing set
    writ::v1::Event ev;
    ev.set_kind("weird\x01kind");
    ev.set_time("not a time");  // OCSF falls back to the clock: skipped there
    ev.mutable_process();
    ev.mutable_file();
    ev.mutable_network();
    v.push_back({"zeros", ev, false});
    v.push_back({"empty", writ::v1::Event(), false});
  }
  {  // extreme numbers
    auto ev = Base("exit", "9f2c-d-e");
    auto* p = ev.mutable_process();
    p->set_pid(4294967295u);
    p->set_tid(4294967295u);
    p->set_ppid(4294967295u);
    p->set_uid(4294967295u);
    p->set_gid(4294967295u);
    p->set_start_time_ns(18446744073709551615ull);
    p->set_exit_code(-2147483647 - 1);
    p->set_exit_signal(4294967295u);
    ev.set_ktime_ns(18446744073709551615ull);
    v.push_back({"extremes", ev});
  }
  return v;
}

std::string GoldenPath(const char* format) {
  return std::string(WRIT_SOURCE_DIR) + "/tests/unit/golden/events." + format + ".jsonl";
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Encodes every case with `encode` (appending to one reused buffer, as SinkSet does, so a stale
// byte from a longer previous event would show) and compares with the golden file.
template <typename Encode>
void CheckGolden(const char* format, Encode encode, bool ocsf) {
  std::vector<std::pair<std::string, std::string>> got;
  std::string buf;
  for (const Case& c : Cases()) {
    if (ocsf && !c.ocsf) continue;
    buf.clear();
    encode(c.ev, &buf);
    got.emplace_back(c.name, buf);
  }
  const std::string path = GoldenPath(format);
  if (getenv("WRIT_UPDATE_GOLDEN")) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (const auto& [name, line] : got) out << line << "\n";
    GTEST_SKIP() << "rewrote " << path;
  }
  const std::vector<std::string> want = ReadLines(path);
  ASSERT_EQ(want.size(), got.size()) << path << ": one line per case expected";
  for (size_t i = 0; i < got.size(); ++i) {
    const std::string& g = got[i].second;
    const std::string& w = want[i];
    if (g == w) continue;
    size_t at = 0;
    while (at < g.size() && at < w.size() && g[at] == w[at]) ++at;
    ADD_FAILURE() << format << " case " << got[i].first << " differs at byte " << at
                  << "\n  want: " << w.substr(at > 40 ? at - 40 : 0, 120)
                  << "\n  got:  " << g.substr(at > 40 ? at - 40 : 0, 120);
  }
}

TEST(SinksGolden, NativeJsonBytesAreUnchanged) { CheckGolden("json", AppendJson, false); }

TEST(SinksGolden, OcsfBytesAreUnchanged) { CheckGolden("ocsf", AppendOcsf, true); }

// Appending after existing content (the journal and `writ tail` reuse buffers): the prefix stays
// and the event follows byte for byte.
TEST(SinksGolden, AppendAfterPrefix) {
  const std::vector<std::string> want = ReadLines(GoldenPath("json"));
  const auto cases = Cases();
  ASSERT_FALSE(want.empty());
  std::string out = "prefix:";
  AppendJson(cases[0].ev, &out);
  EXPECT_EQ(out, "prefix:" + want[0]);
  std::string big(5000, 'x');  // a prefix longer than any capacity the writer would guess
  AppendJson(cases[0].ev, &big);
  EXPECT_EQ(big, std::string(5000, 'x') + want[0]);
}

}  // namespace
}  // namespace writ::sinks
