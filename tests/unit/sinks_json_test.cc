// Native JSON encoder: parsed back with a real JSON parser (nlohmann), field names checked against
// the proto descriptors, RFC 8259 escaping and invalid-UTF-8 handling, omission rules, no
// allocation.
#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "sinks/json_encoder.h"
#include "sinks/json_writer.h"
#include "testlib/alloc_counter.h"
#include "writ/v1/event.pb.h"

namespace writ::sinks {
namespace {

using google::protobuf::Descriptor;
using nlohmann::json;

writ::v1::Event FullEvent() {
  writ::v1::Event ev;
  ev.set_id("b00t-42");
  ev.set_time("2025-01-02T03:04:05.123456789Z");
  ev.set_ktime_ns(18446744073709551615ull);
  ev.set_kind("open");
  auto* a = ev.mutable_agent();
  a->set_spiffe_id("spiffe://example.org/agent/reviewer");
  a->set_task_id("t-1");
  a->set_principal("user:alice@example.org");
  a->set_intent("coding-agent");
  a->set_parent_task("t-0");
  a->add_chain("user:alice@example.org");
  a->add_chain("spiffe://example.org/agent/reviewer");
  a->set_charter("/etc/writ/policies/coding-agent.yaml");
  a->set_charter_sha256("0123abcd");
  auto* p = ev.mutable_process();
  p->set_pid(4242);
  p->set_tid(4243);
  p->set_ppid(1);
  p->set_uid(1000);
  p->set_gid(1000);
  p->set_exe("/usr/bin/cat");
  p->add_args("cat");
  p->add_args("/etc/shadow");
  p->set_args_truncated(true);
  p->set_comm("cat");
  p->set_start_time_ns(123456789012345ull);
  p->set_filename("cat");
  p->set_script("/srv/tools/cat.sh");
  p->set_loaded("/srv/tools/cat");
  p->set_unresolved(true);
  p->set_exit_code(-1);
  p->set_exit_signal(9);
  auto* f = ev.mutable_file();
  f->set_path("/etc/shadow");
  f->add_flags("read");
  f->set_result(-13);
  f->set_unresolved(true);
  f->set_truncated(true);
  f->set_raw_flags(0x241);
  f->set_syscall("openat");
  f->set_inode(1234567);
  f->set_dev((8u << 20) | 1);
  f->set_new_path("/tmp/e.txt");
  auto* n = ev.mutable_network();
  n->set_family("inet6");
  n->set_dst_ip("2001:db8::1");
  n->set_dst_port(443);
  n->set_result(-111);
  n->set_hook("cgroup");
  n->set_path("/run/dbus/system_bus_socket");
  n->set_peer_path("/run/dbus/system_bus_socket");
  n->set_send(true);
  n->set_suppressed(3);
  n->set_host("api.example.com");
  ev.set_verdict("violation");
  ev.set_outcome("killed_after");
  ev.set_enforcement("kernel-signal");
  auto* fi = ev.mutable_finding();
  fi->set_rule("coding-agent/files.deny[0]");
  fi->set_category("file");
  fi->set_reason("read of /etc/shadow");
  fi->add_frameworks("ASI03");
  fi->add_responses("kill");
  fi->set_severity("high");
  auto* ac = ev.mutable_action();
  ac->set_type("kill");
  ac->set_result("ok");
  ac->set_latency_us(87);
  ac->set_target("task");
  ac->set_reason("violation");
  auto* ap = ev.mutable_approval();
  ap->set_id("ap-1");
  ap->set_action("exec /usr/bin/git push");
  ap->set_action_hash("abc");
  ap->set_expires("2025-01-02T04:00:00Z");
  ap->set_decided_by("user:bob");
  ap->set_decided_via("console from 127.0.0.1:51234");
  ap->set_scope("once");
  ap->set_reason("ok");
  auto* t = ev.mutable_task();
  t->set_reason("killed");
  t->set_deadline("2025-01-02T05:00:00Z");
  t->set_cgroup("/sys/fs/cgroup/writ/t-1");
  (*t->mutable_params())["repo"] = "writ";
  (*t->mutable_params())["branch\"x"] = "main";
  t->set_adopted(true);
  t->add_command("make");
  t->set_workload("nightly-triage");
  t->set_run_uid(1000);
  t->set_run_user("alice");
  t->set_root(true);
  t->set_rung("lsm");
  auto* c = ev.mutable_credential();
  c->set_type("jwt-svid");
  c->set_jti("j-1");
  c->set_provider("writ");
  c->set_operation("revoke");
  c->set_expires("2025-01-02T05:00:00Z");
  c->set_detail("violation: exec /usr/bin/curl");
  auto* sc = ev.mutable_syscall();
  sc->set_name("kill");
  sc->set_result(-1);
  sc->set_target("writd");
  sc->set_target_pid(77);
  sc->add_args(-77);  // kill(-pgid, SIGKILL)
  sc->add_args(9);
  auto* tl = ev.mutable_tool();
  tl->set_name("write_file");
  tl->set_call_id("7");
  tl->set_arguments("{\"path\":\"/etc/shadow\"}");
  tl->set_arguments_truncated(true);
  tl->set_arguments_bytes(5000);
  tl->set_status("denied");
  tl->set_error("tool write_file argument /path");
  tl->set_duration_us(12);
  tl->set_in_flight(2);
  tl->add_call_ids("write_file 7");
  tl->set_violations(1);
  tl->add_violation_ids("b-1");
  tl->add_offered("write_file");
  tl->add_hidden("write_file");
  tl->set_rule("coding-agent/tools.deny[0]");
  tl->set_arguments_sha256("ab");
  auto* d = ev.mutable_dns();
  d->set_query("api.example.com");
  d->set_qtype("AAAA");
  d->set_verdict("allowed");
  d->set_reason("long_label");
  d->set_rule("*.example.com");
  d->set_rcode("NOERROR");
  d->add_answers("2001:db8::10");
  d->add_answers("2001:db8::11");
  d->add_cnames("edge.cdn.example.net");
  d->set_ttl(300);
  d->set_server("[2001:db8::53]:53");
  d->set_transport("tcp");
  ev.set_host("build-7");
  return ev;
}

std::string Encode(const writ::v1::Event& ev) {
  std::string out;
  AppendJson(ev, &out);
  return out;
}

// Every key in `obj` must be a field of `desc` (nested objects checked recursively), and, when
// `require_all`, every field of `desc` must be present.
void CheckNames(const json& obj, const Descriptor* desc, bool require_all, const std::string& at) {
  ASSERT_TRUE(obj.is_object()) << at;
  for (const auto& [key, value] : obj.items()) {
    const auto* fd = desc->FindFieldByName(key);
    ASSERT_NE(fd, nullptr) << at << "." << key << " is not a field of " << desc->full_name();
    if (fd->message_type() != nullptr && !fd->is_map()) {
      CheckNames(value, fd->message_type(), require_all, at + "." + key);
    }
  }
  if (require_all) {
    for (int i = 0; i < desc->field_count(); ++i) {
      EXPECT_TRUE(obj.contains(desc->field(i)->name()))
          << at << " lacks " << desc->field(i)->name();
    }
  }
}

TEST(SinksJson, FullEventParsesWithExactFieldNamesAndValues) {
  const auto ev = FullEvent();
  const std::string s = Encode(ev);
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s.front(), '{');
  EXPECT_EQ(s.back(), '}');  // no trailing newline
  const json j = json::parse(s);
  CheckNames(j, writ::v1::Event::descriptor(), /*require_all=*/true, "event");

  EXPECT_EQ(j["ktime_ns"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_TRUE(j["ktime_ns"].is_number_unsigned());  // a number, not a string
  EXPECT_EQ(j["process"]["pid"], 4242);
  EXPECT_EQ(j["process"]["exit_code"], -1);
  EXPECT_EQ(j["process"]["args"], json::array({"cat", "/etc/shadow"}));
  EXPECT_EQ(j["process"]["args_truncated"], true);
  EXPECT_EQ(j["process"]["script"], "/srv/tools/cat.sh");
  EXPECT_EQ(j["file"]["result"], -13);
  EXPECT_EQ(j["file"]["raw_flags"], 0x241);
  EXPECT_EQ(j["file"]["inode"], 1234567);
  EXPECT_EQ(j["file"]["dev"], (8u << 20) | 1);
  EXPECT_EQ(j["network"]["dst_port"], 443);
  EXPECT_EQ(j["network"]["result"], -111);
  EXPECT_EQ(j["network"]["path"], "/run/dbus/system_bus_socket");
  EXPECT_EQ(j["network"]["send"], true);
  EXPECT_EQ(j["network"]["suppressed"], 3);
  EXPECT_EQ(j["file"]["new_path"], "/tmp/e.txt");
  EXPECT_EQ(j["process"]["loaded"], "/srv/tools/cat");
  EXPECT_EQ(j["process"]["unresolved"], true);
  EXPECT_EQ(j["agent"]["chain"][1], "spiffe://example.org/agent/reviewer");
  EXPECT_EQ(j["task"]["params"]["repo"], "writ");
  EXPECT_EQ(j["task"]["params"]["branch\"x"], "main");
  EXPECT_EQ(j["finding"]["frameworks"], json::array({"ASI03"}));
  EXPECT_EQ(j["action"]["latency_us"], 87);
  EXPECT_EQ(j["credential"]["operation"], "revoke");
  EXPECT_EQ(j["credential"]["detail"], "violation: exec /usr/bin/curl");
  EXPECT_EQ(j["approval"]["scope"], "once");
  EXPECT_EQ(j["syscall"]["result"], -1);
  EXPECT_EQ(j["syscall"]["args"], json::array({-77, 9}));
  EXPECT_EQ(j["syscall"]["target_pid"], 77);
  EXPECT_EQ(j["host"], "build-7");
  EXPECT_EQ(j["network"]["host"], "api.example.com");
  EXPECT_EQ(j["dns"]["query"], "api.example.com");
  EXPECT_EQ(j["dns"]["qtype"], "AAAA");
  EXPECT_EQ(j["dns"]["answers"], json::array({"2001:db8::10", "2001:db8::11"}));
  EXPECT_EQ(j["dns"]["cnames"], json::array({"edge.cdn.example.net"}));
  EXPECT_EQ(j["dns"]["ttl"], 300);
  EXPECT_TRUE(j["dns"]["ttl"].is_number_unsigned());
  EXPECT_EQ(j["dns"]["server"], "[2001:db8::53]:53");
  EXPECT_EQ(j["dns"]["transport"], "tcp");
}

// A dns event as writd's stub reports a refused name: empty fields (answers, cnames, ttl 0, rule)
// are omitted like everywhere else, and an empty dns object is no object.
TEST(SinksJson, DnsEventOmitsEmptyFields) {
  writ::v1::Event ev;
  ev.set_kind("dns");
  auto* d = ev.mutable_dns();
  d->set_query("pastebin.com");
  d->set_qtype("A");
  d->set_verdict("refused");
  d->set_reason("not allowed");
  d->set_rcode("REFUSED");
  d->set_server("192.0.2.53:53");
  d->set_transport("udp");
  ev.set_verdict("violation");
  ev.set_outcome("prevented");
  ev.set_enforcement("dns");
  EXPECT_EQ(
      Encode(ev),
      R"({"kind":"dns","dns":{"query":"pastebin.com","qtype":"A","verdict":"refused",)"
      R"("reason":"not allowed","rcode":"REFUSED","server":"192.0.2.53:53",)"
      R"("transport":"udp"},"verdict":"violation","outcome":"prevented","enforcement":"dns"})");

  writ::v1::Event empty;
  empty.set_kind("dns");
  empty.mutable_dns();
  EXPECT_EQ(Encode(empty), R"({"kind":"dns"})");

  writ::v1::Event conn;  // network.host, the name a pinned address came from
  conn.set_kind("connect");
  conn.mutable_network()->set_dst_ip("192.0.2.10");
  conn.mutable_network()->set_dst_port(443);
  conn.mutable_network()->set_host("api.example.com");
  EXPECT_EQ(Encode(conn),
            R"({"kind":"connect","network":{"dst_ip":"192.0.2.10","dst_port":443,"result":0,)"
            R"("host":"api.example.com"}})");
}

TEST(SinksJson, EmptyEventIsEmptyObject) { EXPECT_EQ(Encode(writ::v1::Event()), "{}"); }

TEST(SinksJson, OmitsDefaultsButKeepsMeaningfulZeros) {
  writ::v1::Event ev;
  ev.set_kind("connect");
  ev.mutable_agent();    // present but empty: omitted
  ev.mutable_finding();  // likewise
  ev.mutable_task();     // likewise (empty map, empty lists)
  ev.mutable_process();  // pid 0 is still reported, and uid/gid 0 are root
  ev.mutable_file();     // result 0 = success
  ev.mutable_network();  // dst_port 0 and result 0 are meaningful
  EXPECT_EQ(Encode(ev),
            R"({"kind":"connect","process":{"pid":0,"uid":0,"gid":0},"file":{"result":0},)"
            R"("network":{"dst_port":0,"result":0}})");

  writ::v1::Event exit_ev;  // a clean exit says so
  exit_ev.set_kind("exit");
  exit_ev.mutable_process()->set_pid(7);
  EXPECT_EQ(Encode(exit_ev),
            R"({"kind":"exit","process":{"pid":7,"uid":0,"gid":0,"exit_code":0}})");

  writ::v1::Event only_empty_sub;
  only_empty_sub.mutable_credential();
  only_empty_sub.mutable_action();
  EXPECT_EQ(Encode(only_empty_sub), "{}");  // rollback must not leave a dangling comma or key

  writ::v1::Event e2;
  e2.set_id("x");
  e2.mutable_approval();
  e2.set_host("h");
  EXPECT_EQ(Encode(e2), R"({"id":"x","host":"h"})");
}

struct EscapeCase {
  const char* name;
  std::string raw;
  std::string decoded;  // what a JSON parser must give back (UTF-8)
};

TEST(SinksJson, EscapesTrickyStringsToValidJsonAndUtf8) {
  const EscapeCase cases[] = {
      {"quote_backslash", "a\"b\\c", "a\"b\\c"},
      {"controls", std::string("\n\r\t\b\f\x01\x1f", 7), "\n\r\t\b\f\x01\x1f"},
      {"nul", std::string("a\0b", 3), std::string("a\0b", 3)},
      {"slash_and_del", "/\x7f", "/\x7f"},
      {"valid_2_3_4", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
       "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
      {"invalid_ff",
       "a\xff"
       "b",
       "a\xc3\xbf"
       "b"},
      {"lone_continuation", "\x80", "\xc2\x80"},
      {"overlong_c0", "\xc0\x80", "\xc3\x80\xc2\x80"},
      {"overlong_e0", "\xe0\x80\xaf", "\xc3\xa0\xc2\x80\xc2\xaf"},
      {"surrogate", "\xed\xa0\x80", "\xc3\xad\xc2\xa0\xc2\x80"},
      {"beyond_10ffff", "\xf4\x90\x80\x80", "\xc3\xb4\xc2\x90\xc2\x80\xc2\x80"},
      {"truncated_at_end", "x\xe2\x82", "x\xc3\xa2\xc2\x82"},
      {"latin1_path", "/tmp/caf\xe9", "/tmp/caf\xc3\xa9"},
  };
  for (const auto& c : cases) {
    writ::v1::Event ev;
    ev.mutable_file()->set_path(c.raw);
    const std::string s = Encode(ev);
    json j;
    ASSERT_NO_THROW(j = json::parse(s)) << c.name << ": " << s;
    EXPECT_EQ(j["file"]["path"].get<std::string>(), c.decoded) << c.name << ": " << s;
  }
}

// Random byte strings (fixed seed, bounded count): output always parses, and valid UTF-8 input
// round-trips unchanged.
TEST(SinksJson, RandomBytesAlwaysProduceParseableJson) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> len(0, 40), byte(0, 255);
  for (int iter = 0; iter < 5000; ++iter) {
    std::string raw;
    const int n = len(rng);
    for (int i = 0; i < n; ++i) raw.push_back(static_cast<char>(byte(rng)));
    std::string out;
    AppendJsonString(raw, &out);
    json j;
    ASSERT_NO_THROW(j = json::parse(out)) << "iter " << iter;
    const std::string back = j.get<std::string>();
    // Re-encoding the decoded (valid UTF-8) string must reproduce it exactly.
    std::string out2;
    AppendJsonString(back, &out2);
    EXPECT_EQ(json::parse(out2).get<std::string>(), back);
  }
}

// The escaper scans 16 bytes at a time with a separate path for the last partial block: a byte that
// needs escaping (or a multi-byte UTF-8 sequence) must be found at every position of every length,
// with the same bytes out as a byte-at-a-time reference.
std::string ReferenceEscape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else if (c == 0xC3 && i + 1 < s.size() &&
               (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      out.append(s, i, 2);  // the only multi-byte sequence the test inserts
      ++i;
    } else if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    }
  }
  return out;
}

TEST(SinksJson, EscapesAtEveryPositionOfEveryLength) {
  const std::vector<std::string> specials = {"\"",   "\\",   "\n",       "\x01", "\x1f",
                                             "\x80", "\xff", "\xc3\xa9", "\xc3"};
  int checked = 0;
  for (size_t len = 0; len <= 50; ++len) {
    for (size_t pos = 0; pos <= len; ++pos) {
      for (const auto& sp : specials) {
        std::string s(len, 'a');
        for (size_t k = 0; k < len; ++k) s[k] = static_cast<char>('a' + k % 26);
        s.insert(pos, sp);
        std::string got = "pre";
        AppendJsonStringBody(s, &got);
        ASSERT_EQ(got, "pre" + ReferenceEscape(s)) << "len " << len << " pos " << pos;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 1326 * 9);
  // Two specials in one 16-byte block, and one in the overlapping tail after a clean block.
  std::string got;
  AppendJsonStringBody("0123456789abcdef01\"3\\", &got);
  EXPECT_EQ(got, "0123456789abcdef01\\\"3\\\\");
}

// The hand-rolled decimal writer against std::to_chars: every power of ten and its neighbours, the
// extremes of both types, and a spread of random values of every length.
TEST(SinksJson, DecimalMatchesToChars) {
  auto check = [](auto v) {
    char want[32], got[32];
    const size_t wn = static_cast<size_t>(std::to_chars(want, want + sizeof(want), v).ptr - want);
    const size_t gn = static_cast<size_t>(WriteDecimal(got, v) - got);
    ASSERT_EQ(std::string(got, gn), std::string(want, wn));
  };
  uint64_t p = 1;
  for (int k = 0; k < 20; ++k, p *= 10) {
    for (uint64_t d : {p - 1, p, p + 1, 2 * p - 1, 9 * p}) {
      check(d);
      check(static_cast<int64_t>(d));
      check(-static_cast<int64_t>(d & INT64_MAX));
    }
  }
  check(uint64_t{0});
  check(int64_t{0});
  check(UINT64_MAX);
  check(INT64_MAX);
  check(INT64_MIN);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    check(v);
    check(static_cast<int64_t>(v));
  }
}

TEST(SinksJson, AllocatesNothingOnceOutHasCapacity) {
  const auto ev = FullEvent();
  std::string out;
  AppendJson(ev, &out);
  const size_t len = out.size();
  out.reserve(len * 2);
  out.clear();
  testlib::AllocCounter::Start();
  for (int i = 0; i < 100; ++i) {
    out.clear();
    AppendJson(ev, &out);
  }
  EXPECT_EQ(testlib::AllocCounter::Stop(), 0);
  // The counter itself works: a heap-sized string while counting is seen.
  testlib::AllocCounter::Start();
  std::string probe(1000, 'x');
  EXPECT_GT(testlib::AllocCounter::Stop(), 0) << probe.size();
  EXPECT_EQ(out.size(), len);
}

TEST(SinksJson, AppendsToExistingContent) {
  writ::v1::Event ev;
  ev.set_id("1");
  std::string out = "prefix ";
  AppendJson(ev, &out);
  EXPECT_EQ(out, R"(prefix {"id":"1"})");
}

}  // namespace
}  // namespace writ::sinks
