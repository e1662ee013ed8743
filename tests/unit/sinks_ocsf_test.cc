// OCSF encoder: every generated record is parsed and checked against a table of the attributes the
// OCSF 1.x schema marks required (base event, per class, and inside the objects used), plus the
// mapping rules writ documents in docs/siem.md.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sinks/ocsf_encoder.h"
#include "writ/v1/event.pb.h"

namespace writ::sinks {
namespace {

using nlohmann::json;

// Required attributes per OCSF 1.x class (base_event + class + its category's base: System Activity
// requires actor and device; Findings require finding_info).
const std::vector<std::string> kBaseRequired = {
    "activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time", "type_uid"};
const std::map<int, std::vector<std::string>> kClassRequired = {
    {0, {}},
    {1001, {"actor", "device", "file"}},
    {1007, {"actor", "device", "process"}},
    {4001, {"dst_endpoint"}},  // 1.x: at least one of src_endpoint/dst_endpoint; writ has dst
    {4003, {"src_endpoint"}},  // likewise; the querying host (the resolver when the task named one)
    {2004, {"finding_info"}},
};
const std::map<int, int> kClassCategory = {{0, 0},    {1001, 1}, {1007, 1},
                                           {4001, 4}, {4003, 4}, {2004, 2}};
const std::map<int, std::set<int>> kClassActivities = {
    {0, {0, 99}},
    {1001, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 99}},
    {1007, {0, 1, 2, 3, 4, 5, 99}},
    {4001, {0, 1, 2, 3, 4, 5, 6, 7, 99}},
    {4003, {0, 1, 2, 6, 99}},
    {2004, {0, 1, 2, 3, 99}},
};

void CheckRecord(const json& r, const std::string& name) {
  SCOPED_TRACE(name + ": " + r.dump());
  for (const auto& k : kBaseRequired) ASSERT_TRUE(r.contains(k)) << "missing " << k;
  const int cls = r["class_uid"].get<int>();
  ASSERT_TRUE(kClassRequired.count(cls)) << "unexpected class " << cls;
  for (const auto& k : kClassRequired.at(cls)) EXPECT_TRUE(r.contains(k)) << "missing " << k;
  EXPECT_EQ(r["category_uid"].get<int>(), kClassCategory.at(cls));
  const int act = r["activity_id"].get<int>();
  EXPECT_TRUE(kClassActivities.at(cls).count(act)) << "activity " << act;
  EXPECT_EQ(r["type_uid"].get<int64_t>(), int64_t{cls} * 100 + act);
  EXPECT_TRUE(r["time"].is_number_integer());
  const int sev = r["severity_id"].get<int>();
  EXPECT_TRUE((sev >= 0 && sev <= 6) || sev == 99);
  // metadata: version and product (vendor_name required, name recommended).
  const json& md = r["metadata"];
  ASSERT_TRUE(md.contains("version"));
  EXPECT_GE(md["version"].get<std::string>(), "1.4.0");
  ASSERT_TRUE(md.contains("product"));
  EXPECT_EQ(md["product"]["name"], "writ");
  EXPECT_TRUE(md["product"].contains("vendor_name"));
  // Objects' own required attributes.
  if (r.contains("file")) {
    EXPECT_TRUE(r["file"].contains("name"));
    EXPECT_TRUE(r["file"].contains("type_id"));
  }
  if (r.contains("device")) {
    EXPECT_TRUE(r["device"].contains("type_id"));
    if (r["device"].contains("os")) {
      EXPECT_TRUE(r["device"]["os"].contains("name"));
      EXPECT_TRUE(r["device"]["os"].contains("type_id"));
    }
  }
  if (r.contains("actor")) {
    const json& a = r["actor"];
    EXPECT_TRUE(a.contains("process") || a.contains("user") || a.contains("app_name") ||
                a.contains("session"))
        << "actor needs at least one of process/user/app_name/session";
  }
  if (r.contains("dst_endpoint")) {
    EXPECT_TRUE(r["dst_endpoint"].contains("ip") || r["dst_endpoint"].contains("hostname"));
  }
  if (cls == 2004) {
    EXPECT_TRUE(r["finding_info"].contains("uid"));
    EXPECT_TRUE(r["finding_info"].contains("title"));
  }
  if (r.contains("disposition_id")) {
    EXPECT_TRUE(r.contains("disposition"));
  }
}

json Encode(const writ::v1::Event& ev) {
  std::string out;
  AppendOcsf(ev, &out);
  EXPECT_NE(out.back(), '\n');
  return json::parse(out);
}

writ::v1::Event Base(const std::string& kind) {
  writ::v1::Event ev;
  ev.set_id("boot-" + kind);
  ev.set_time("2025-01-02T03:04:05.123456789Z");
  ev.set_kind(kind);
  ev.set_host("build-7");
  auto* a = ev.mutable_agent();
  a->set_spiffe_id("spiffe://example.org/agent/reviewer");
  a->set_task_id("t-1");
  a->set_principal("user:alice@example.org");
  a->set_intent("coding-agent");
  a->add_chain("user:alice@example.org");
  auto* p = ev.mutable_process();
  p->set_pid(42);
  p->set_ppid(7);
  p->set_uid(1000);
  p->set_exe("/usr/bin/curl");
  p->add_args("curl");
  p->add_args("https://x \"y\"");
  p->set_comm("curl");
  p->set_start_time_ns(99);
  return ev;
}

std::vector<std::pair<std::string, writ::v1::Event>> AllKinds() {
  std::vector<std::pair<std::string, writ::v1::Event>> v;
  v.emplace_back("exec", Base("exec"));
  v.emplace_back("fork", Base("fork"));
  auto exit = Base("exit");
  exit.mutable_process()->set_exit_code(137);
  v.emplace_back("exit", exit);
  auto open = Base("open");
  open.mutable_file()->set_path("/etc/shadow");
  open.mutable_file()->set_result(-13);
  v.emplace_back("open", open);
  auto connect = Base("connect");
  connect.mutable_network()->set_family("inet");
  connect.mutable_network()->set_dst_ip("10.0.0.1");
  connect.mutable_network()->set_dst_port(443);
  v.emplace_back("connect", connect);
  for (const char* outcome : {"prevented", "killed", "killed_after", "stopped", "would_deny"}) {
    auto viol = open;
    viol.set_verdict("violation");
    viol.set_outcome(outcome);
    auto* f = viol.mutable_finding();
    f->set_rule("coding-agent/files.deny[0]");
    f->set_reason("read of /etc/shadow");
    f->add_frameworks("OWASP-ASI03");
    f->set_severity("high");
    v.emplace_back(std::string("violation_") + outcome, viol);
  }
  auto task_start = Base("task_start");
  task_start.mutable_task()->set_deadline("2025-01-02T05:00:00Z");
  v.emplace_back("task_start", task_start);
  auto task_end = Base("task_end");
  task_end.mutable_task()->set_reason("deadline");
  v.emplace_back("task_end", task_end);
  auto action = Base("action");
  action.mutable_action()->set_type("kill");
  v.emplace_back("action", action);
  auto approval = Base("approval_request");
  approval.mutable_approval()->set_id("ap-1");
  v.emplace_back("approval_request", approval);
  auto cred = Base("credential");
  cred.mutable_credential()->set_operation("revoke");
  v.emplace_back("credential", cred);
  auto secret = Base("secret");
  secret.mutable_process()->set_pid(42);
  secret.mutable_process()->set_exe("/usr/bin/curl");
  secret.mutable_process()->clear_args();
  secret.mutable_process()->add_args("curl");
  secret.mutable_process()->add_args("-u");
  secret.mutable_process()->add_args("bot:[REDACTED:curl-user-password:0123456789ab]");
  secret.mutable_finding()->set_rule("writ/secret.argv");
  secret.mutable_finding()->set_category("secret");
  secret.mutable_finding()->set_reason("a credential was passed on the command line");
  secret.mutable_finding()->add_frameworks("OWASP-NHI2");
  secret.mutable_finding()->set_severity("medium");
  v.emplace_back("secret", secret);
  auto dns = Base("dns");  // the stub's report: the task, no process
  dns.clear_process();
  auto* d = dns.mutable_dns();
  d->set_query("api.example.com");
  d->set_qtype("A");
  d->set_verdict("allowed");
  d->set_rule("*.example.com");
  d->set_rcode("NOERROR");
  d->add_cnames("edge.cdn.example.net");
  d->add_answers("192.0.2.10");
  d->add_answers("2001:db8::10");
  d->set_ttl(300);
  d->set_server("192.0.2.53:53");
  d->set_transport("udp");
  v.emplace_back("dns", dns);
  auto refused = Base("dns");
  refused.clear_process();
  auto* r = refused.mutable_dns();
  r->set_query("pastebin.com");
  r->set_qtype("A");
  r->set_verdict("refused");
  r->set_reason("not allowed");
  r->set_rcode("REFUSED");
  r->set_server("[2001:db8::1]:53");
  r->set_transport("tcp");
  refused.set_verdict("violation");
  refused.set_outcome("prevented");
  refused.set_enforcement("dns");
  refused.mutable_finding()->set_rule("coding-agent/network.dns.default");
  refused.mutable_finding()->set_category("network");
  refused.mutable_finding()->set_reason("DNS query for a name not in network.dns: pastebin.com");
  refused.mutable_finding()->set_severity("high");
  v.emplace_back("dns_refused", refused);
  writ::v1::Event bare;  // nothing set at all: still a valid record
  v.emplace_back("empty", bare);
  return v;
}

TEST(SinksOcsf, EveryKindProducesAValidRecordOfTheExpectedClass) {
  const std::map<std::string, std::pair<int, int>> expected = {
      {"exec", {1007, 1}},     {"fork", {1007, 1}},        {"exit", {1007, 2}},
      {"open", {1001, 14}},    {"connect", {4001, 1}},     {"task_start", {0, 99}},
      {"task_end", {0, 99}},   {"action", {0, 99}},        {"approval_request", {0, 99}},
      {"credential", {0, 99}}, {"empty", {0, 99}},         {"secret", {2004, 1}},
      {"dns", {4003, 1}},      {"dns_refused", {2004, 1}},
  };
  for (const auto& [name, ev] : AllKinds()) {
    const json r = Encode(ev);
    CheckRecord(r, name);
    if (name.rfind("violation_", 0) == 0) {
      EXPECT_EQ(r["class_uid"], 2004) << name;
      EXPECT_EQ(r["activity_id"], 1) << name;
    } else {
      ASSERT_TRUE(expected.count(name)) << name;
      EXPECT_EQ(r["class_uid"], expected.at(name).first) << name;
      EXPECT_EQ(r["activity_id"], expected.at(name).second) << name;
    }
  }
}

TEST(SinksOcsf, CommonAttributes) {
  auto ev = AllKinds()[3].second;  // open
  const json r = Encode(ev);
  EXPECT_EQ(r["time"].get<int64_t>(), 1735787045123);
  EXPECT_EQ(r["metadata"]["uid"], "boot-open");
  EXPECT_EQ(r["severity_id"], 1);
  EXPECT_EQ(r["status_id"], 2);  // result -13: Failure
  EXPECT_EQ(r["file"]["path"], "/etc/shadow");
  EXPECT_EQ(r["file"]["name"], "shadow");
  EXPECT_EQ(r["file"]["parent_folder"], "/etc");
  EXPECT_EQ(r["actor"]["process"]["pid"], 42);
  EXPECT_EQ(r["actor"]["process"]["cmd_line"], "curl https://x \"y\"");
  EXPECT_EQ(r["device"]["hostname"], "build-7");
  EXPECT_EQ(r["unmapped"]["writ"]["agent"]["spiffe_id"], "spiffe://example.org/agent/reviewer");
  EXPECT_EQ(r["unmapped"]["writ"]["agent"]["chain"][0], "user:alice@example.org");

  const json exec = Encode(AllKinds()[0].second);
  EXPECT_EQ(exec["process"]["pid"], 42);
  EXPECT_EQ(exec["process"]["file"]["path"], "/usr/bin/curl");
  EXPECT_EQ(exec["process"]["uid"], "42:99");
  EXPECT_EQ(exec["actor"]["process"]["pid"], 7);          // the parent launched it
  EXPECT_FALSE(exec["process"].contains("xattributes"));  // filename = exe, no script

  // A shebang exec: the interpreter is the process's file, the script and the name passed go in
  // the process's custom attributes.
  auto script_ev = AllKinds()[0].second;
  script_ev.mutable_process()->set_exe("/usr/bin/dash");
  script_ev.mutable_process()->set_filename("./deploy.sh");
  script_ev.mutable_process()->set_script("/srv/app/deploy.sh");
  const json script = Encode(script_ev);
  EXPECT_EQ(script["process"]["file"]["path"], "/usr/bin/dash");
  EXPECT_EQ(script["process"]["xattributes"]["execve_filename"], "./deploy.sh");
  EXPECT_EQ(script["process"]["xattributes"]["script"], "/srv/app/deploy.sh");

  const json conn = Encode(AllKinds()[4].second);
  EXPECT_EQ(conn["dst_endpoint"]["ip"], "10.0.0.1");
  EXPECT_EQ(conn["dst_endpoint"]["port"], 443);
  EXPECT_EQ(conn["status_id"], 1);
}

TEST(SinksOcsf, ViolationIsDetectionFindingWithDisposition) {
  const std::map<std::string, std::pair<int, std::string>> disp = {
      {"violation_prevented", {2, "Blocked"}},
      {"violation_killed", {2, "Blocked"}},
      {"violation_stopped", {3, "Quarantined"}},
      {"violation_would_deny", {1, "Allowed"}},
      {"violation_killed_after", {99, "Killed After Access"}},
  };
  for (const auto& [name, ev] : AllKinds()) {
    if (!disp.count(name)) continue;
    const json r = Encode(ev);
    EXPECT_EQ(r["disposition_id"], disp.at(name).first) << name;
    EXPECT_EQ(r["disposition"], disp.at(name).second) << name;
    EXPECT_EQ(r["finding_info"]["uid"], ev.id());
    EXPECT_EQ(r["finding_info"]["title"], "coding-agent/files.deny[0]");
    EXPECT_EQ(r["finding_info"]["types"], json::array({"OWASP-ASI03"}));
    EXPECT_EQ(r["severity_id"], 4);  // high
    ASSERT_EQ(r["evidences"].size(), 1u);
    EXPECT_EQ(r["evidences"][0]["file"]["path"], "/etc/shadow");
    EXPECT_EQ(r["evidences"][0]["actor"]["process"]["pid"], 42);
    EXPECT_EQ(r["resources"][0]["uid"], "t-1");
    EXPECT_EQ(r["is_alert"], true);
  }
}

TEST(SinksOcsf, SeverityMapping) {
  auto ev = AllKinds()[5].second;  // a violation
  const std::pair<const char*, int> cases[] = {
      {"low", 2}, {"medium", 3}, {"high", 4}, {"critical", 5}, {"", 3}};
  for (const auto& [sev, id] : cases) {
    ev.mutable_finding()->set_severity(sev);
    EXPECT_EQ(Encode(ev)["severity_id"], id) << sev;
  }
}

TEST(SinksOcsf, SecretOnTheCommandLineIsADetectionFindingWithoutDisposition) {
  for (const auto& [name, ev] : AllKinds()) {
    if (name != "secret") continue;
    const json r = Encode(ev);
    EXPECT_EQ(r["class_uid"], 2004);
    EXPECT_EQ(r["severity_id"], 3);
    EXPECT_EQ(r["finding_info"]["title"], "writ/secret.argv");
    EXPECT_EQ(r["finding_info"]["types"], json::array({"OWASP-NHI2"}));
    EXPECT_EQ(r["evidences"][0]["process"]["cmd_line"],
              "curl -u bot:[REDACTED:curl-user-password:0123456789ab]");
    EXPECT_FALSE(r.contains("disposition_id"));  // nothing was blocked or allowed: not a verdict
    return;
  }
  FAIL() << "no secret event in AllKinds()";
}

writ::v1::Event Kind(const std::string& name) {
  for (const auto& [n, ev] : AllKinds()) {
    if (n == name) return ev;
  }
  ADD_FAILURE() << "no " << name << " in AllKinds()";
  return {};
}

TEST(SinksOcsf, DnsQueryIsDnsActivity) {
  const json r = Encode(Kind("dns"));
  EXPECT_EQ(r["class_uid"], 4003);
  EXPECT_EQ(r["class_name"], "DNS Activity");
  EXPECT_EQ(r["category_uid"], 4);
  EXPECT_EQ(r["activity_id"], 1);
  EXPECT_EQ(r["activity_name"], "Query");
  EXPECT_EQ(r["type_uid"], 400301);
  EXPECT_EQ(r["message"], "dns api.example.com");
  EXPECT_EQ(r["status_id"], 1);
  EXPECT_EQ(r["status"], "Success");
  EXPECT_EQ(r["query"], json({{"hostname", "api.example.com"}, {"type", "A"}, {"class", "IN"}}));
  // The CNAME chain from the query name, then the addresses at its end, typed by family.
  ASSERT_EQ(r["answers"].size(), 3u);
  EXPECT_EQ(r["answers"][0], json({{"hostname", "api.example.com"},
                                   {"type", "CNAME"},
                                   {"class", "IN"},
                                   {"rdata", "edge.cdn.example.net"}}));
  EXPECT_EQ(r["answers"][1], json({{"hostname", "edge.cdn.example.net"},
                                   {"type", "A"},
                                   {"class", "IN"},
                                   {"rdata", "192.0.2.10"},
                                   {"ttl", 300}}));
  EXPECT_EQ(r["answers"][2]["type"], "AAAA");
  EXPECT_EQ(r["answers"][2]["rdata"], "2001:db8::10");
  EXPECT_EQ(r["rcode_id"], 0);
  EXPECT_EQ(r["rcode"], "NoError");
  EXPECT_EQ(r["dst_endpoint"], json({{"ip", "192.0.2.53"}, {"port", 53}}));
  EXPECT_EQ(r["src_endpoint"]["hostname"], "build-7");
  EXPECT_EQ(r["connection_info"]["protocol_name"], "udp");
  EXPECT_EQ(r["connection_info"]["protocol_num"], 17);
  EXPECT_EQ(r["connection_info"]["direction_id"], 2);
  // The same actor, ai_agent, device and metadata as Network Activity.
  EXPECT_EQ(r["actor"]["session"]["uid"], "t-1");
  EXPECT_EQ(r["actor"]["app_name"], "spiffe://example.org/agent/reviewer");
  EXPECT_EQ(r["ai_agent"]["uid"], "spiffe://example.org/agent/reviewer");
  EXPECT_EQ(r["device"]["hostname"], "build-7");
  EXPECT_EQ(r["metadata"]["event_code"], "dns");
  EXPECT_EQ(r["metadata"]["profiles"], json({"host", "ai_operation"}));
  EXPECT_FALSE(r.contains("process"));
  // writd's own words stay in unmapped.writ.
  EXPECT_EQ(r["unmapped"]["writ"]["dns"]["verdict"], "allowed");
  EXPECT_EQ(r["unmapped"]["writ"]["dns"]["rule"], "*.example.com");
  EXPECT_EQ(r["unmapped"]["writ"]["dns"]["rcode"], "NOERROR");
}

TEST(SinksOcsf, DnsRcodeStatusAndServer) {
  const std::tuple<const char*, int, const char*> rcodes[] = {
      {"NOERROR", 0, "NoError"},   {"FORMERR", 1, "FormError"}, {"SERVFAIL", 2, "ServError"},
      {"NXDOMAIN", 3, "NXDomain"}, {"NOTIMP", 4, "NotImp"},     {"REFUSED", 5, "Refused"},
      {"RCODE12", 99, "RCODE12"},
  };
  auto ev = Kind("dns");
  for (const auto& [rcode, id, caption] : rcodes) {
    ev.mutable_dns()->set_rcode(rcode);
    const json r = Encode(ev);
    EXPECT_EQ(r["rcode_id"], id) << rcode;
    EXPECT_EQ(r["rcode"], caption) << rcode;
  }
  ev.mutable_dns()->clear_rcode();  // nothing answered (a query too short to answer)
  EXPECT_FALSE(Encode(ev).contains("rcode_id"));

  const std::tuple<const char*, const char*, int> servers[] = {
      {"[2001:db8::1]:53", "2001:db8::1", 53},
      {"192.0.2.53:5353", "192.0.2.53", 5353},
      {"2001:db8::1", "2001:db8::1", -1},  // no port
      {"192.0.2.53", "192.0.2.53", -1},
  };
  for (const auto& [server, ip, port] : servers) {
    ev.mutable_dns()->set_server(server);
    const json r = Encode(ev);
    EXPECT_EQ(r["dst_endpoint"]["ip"], ip) << server;
    if (port < 0) {
      EXPECT_FALSE(r["dst_endpoint"].contains("port")) << server;
    } else {
      EXPECT_EQ(r["dst_endpoint"]["port"], port) << server;
    }
  }
  ev.mutable_dns()->clear_server();
  EXPECT_FALSE(Encode(ev).contains("dst_endpoint"));

  // Not allowed (refused in monitor mode, malformed, failed): Failure, with writd's reason.
  for (const char* verdict : {"malformed", "failed"}) {
    auto bad = Kind("dns");
    bad.mutable_dns()->set_verdict(verdict);
    bad.mutable_dns()->set_reason("upstream unreachable");
    bad.mutable_dns()->set_rcode("SERVFAIL");
    bad.mutable_dns()->clear_answers();
    bad.mutable_dns()->clear_cnames();
    const json r = Encode(bad);
    EXPECT_EQ(r["class_uid"], 4003) << verdict;
    EXPECT_EQ(r["status_id"], 2) << verdict;
    EXPECT_EQ(r["status"], "Failure") << verdict;
    EXPECT_EQ(r["status_detail"], "upstream unreachable") << verdict;
    EXPECT_FALSE(r.contains("answers")) << verdict;
  }
}

TEST(SinksOcsf, RefusedDnsIsDetectionFindingWithTheQueryAsEvidence) {
  const json r = Encode(Kind("dns_refused"));
  CheckRecord(r, "dns_refused");
  EXPECT_EQ(r["class_uid"], 2004);
  EXPECT_EQ(r["finding_info"]["title"], "coding-agent/network.dns.default");
  EXPECT_EQ(r["message"], "DNS query for a name not in network.dns: pastebin.com");
  EXPECT_EQ(r["disposition_id"], 2);
  EXPECT_EQ(r["disposition"], "Blocked");
  EXPECT_EQ(r["severity_id"], 4);
  ASSERT_EQ(r["evidences"].size(), 1u);
  const json& e = r["evidences"][0];
  EXPECT_EQ(e["query"]["hostname"], "pastebin.com");
  EXPECT_EQ(e["query"]["type"], "A");
  EXPECT_EQ(e["dst_endpoint"], json({{"ip", "2001:db8::1"}, {"port", 53}}));
  EXPECT_EQ(e["connection_info"]["protocol_name"], "tcp");
  EXPECT_EQ(e["connection_info"]["protocol_num"], 6);
  EXPECT_EQ(e["actor"]["session"]["uid"], "t-1");
  EXPECT_EQ(e["ai_agent"]["instance_uid"], "t-1");
  EXPECT_FALSE(r.contains("answers"));  // the finding class has none: in unmapped.writ.dns
  EXPECT_FALSE(r.contains("rcode_id"));
  EXPECT_EQ(r["unmapped"]["writ"]["dns"]["verdict"], "refused");
  EXPECT_EQ(r["unmapped"]["writ"]["dns"]["rcode"], "REFUSED");
  EXPECT_EQ(r["unmapped"]["writ"]["enforcement"], "dns");
}

TEST(SinksOcsf, ConnectNamesTheHostItsAddressWasPinnedFor) {
  auto ev = Kind("connect");
  ev.mutable_network()->set_host("api.example.com");
  const json r = Encode(ev);
  EXPECT_EQ(r["class_uid"], 4001);
  EXPECT_EQ(r["dst_endpoint"],
            json({{"ip", "10.0.0.1"}, {"hostname", "api.example.com"}, {"port", 443}}));
  // Network Activity has no top-level process: the connecting process is the actor.
  EXPECT_FALSE(r.contains("process"));
  EXPECT_EQ(r["actor"]["process"]["pid"], 42);
  // As a violation, the name is in the evidence.
  ev.set_verdict("violation");
  ev.set_outcome("prevented");
  const json f = Encode(ev);
  EXPECT_EQ(f["evidences"][0]["dst_endpoint"]["hostname"], "api.example.com");
  EXPECT_EQ(f["evidences"][0]["process"]["pid"], 42);
}

TEST(SinksOcsf, InvalidUtf8PathStillValidJson) {
  auto ev = AllKinds()[3].second;
  ev.mutable_file()->set_path("/tmp/\xff\xfe/\"x\"\n");
  const json r = Encode(ev);
  EXPECT_EQ(r["file"]["path"], "/tmp/\xc3\xbf\xc3\xbe/\"x\"\n");
  EXPECT_EQ(r["file"]["name"], "\"x\"\n");
}

TEST(SinksOcsf, Rfc3339) {
  int64_t ms = 0;
  ASSERT_TRUE(Rfc3339ToUnixMillis("2025-01-02T03:04:05.123456789Z", &ms));
  EXPECT_EQ(ms, 1735787045123);
  ASSERT_TRUE(Rfc3339ToUnixMillis("2024-02-29T23:59:59.999Z", &ms));
  EXPECT_EQ(ms, 1709251199999);
  ASSERT_TRUE(Rfc3339ToUnixMillis("2025-01-02T05:04:05.5+02:00", &ms));
  EXPECT_EQ(ms, 1735787045500);
  ASSERT_TRUE(Rfc3339ToUnixMillis("1970-01-01T00:00:00Z", &ms));
  EXPECT_EQ(ms, 0);
  ASSERT_TRUE(Rfc3339ToUnixMillis("1969-12-31T23:59:59Z", &ms));
  EXPECT_EQ(ms, -1000);
  for (const char* bad :
       {"", "2025-01-02", "2025-01-02T03:04:05", "2025-13-02T03:04:05Z", "2025-01-02T03:04:05.Z",
        "2025-01-02T03:04:05Zjunk", "2025-01-02T03:04:05+0200"}) {
    EXPECT_FALSE(Rfc3339ToUnixMillis(bad, &ms)) << bad;
  }
}

}  // namespace
}  // namespace writ::sinks
