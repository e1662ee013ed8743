// Sink framework: YAML config errors, syslog framing, URL parsing, file rotation, HTTP webhook and
// HEC against an in-process receiver (500s, hangs, down then up with a spool), drop accounting.
#include "sinks/sink.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "http/server.h"
#include "sinks/transport.h"
#include "sinks_test_receiver.h"

namespace writ::sinks {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HttpReceiver;

fs::path TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / absl::StrCat("writ-sinks-", name, "-", ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string Line(int i) { return absl::StrCat(R"({"id":"e-)", i, R"(","kind":"exec"})"); }

// Bounded wait for a condition.
template <typename F>
bool WaitFor(F f, absl::Duration max = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + max;
  while (absl::Now() < end) {
    if (f()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return f();
}

std::string ConfigError(const std::string& yaml) {
  YAML::Node n = YAML::Load(yaml);
  auto s = MakeSinkSet(n["sinks"], "writd.yaml");
  return s.ok() ? "" : std::string(s.status().message());
}

TEST(SinksConfig, ErrorsNameFileLineAndField) {
  EXPECT_EQ(ConfigError("sinks:\n  - type: stdout\n  - type: syslog\n    address: nohost\n"),
            "writd.yaml:4: sinks[1].address: expected host:port, got 'nohost'");
  EXPECT_EQ(ConfigError("sinks:\n  - type: carrier-pigeon\n"),
            "writd.yaml:2: sinks[0].type: unknown sink type 'carrier-pigeon' (want stdout, file, "
            "syslog, http, hec or nats)");
  EXPECT_EQ(ConfigError("sinks:\n  - type: stdout\n    format: xml\n"),
            "writd.yaml:3: sinks[0].format: unknown format 'xml' (want json or ocsf)");
  EXPECT_EQ(ConfigError("sinks:\n  - type: hec\n    url: http://127.0.0.1:8088\n"),
            "writd.yaml:2: sinks[0].token: required for hec");
  EXPECT_EQ(ConfigError("sinks:\n  - type: file\n    path: /tmp/x\n    max_bytes: lots\n"),
            "writd.yaml:4: sinks[0].max_bytes: expected a non-negative integer, got 'lots'");
  EXPECT_EQ(ConfigError("sinks:\n  - type: syslog\n    address: 127.0.0.1:514\n    tls: {verify: "
                        "maybe}\n"),
            "writd.yaml:4: sinks[0].tls.verify: expected true or false");
  EXPECT_EQ(ConfigError("sinks:\n  - type: http\n    url: ftp://x\n"),
            "writd.yaml:3: sinks[0].url: expected http:// or https:// URL, got 'ftp://x'");
  EXPECT_EQ(ConfigError("sinks:\n  - type: stdout\n    colour: red\n"),
            "writd.yaml:3: sinks[0].colour: unknown field");
  EXPECT_EQ(ConfigError("sinks:\n  - {type: file}\n"),
            "writd.yaml:2: sinks[0].path: required for a file sink");
  EXPECT_EQ(ConfigError("sinks: {type: stdout}\n"), "writd.yaml:1: sinks: expected a list");
}

TEST(SinksConfig, ParsesEveryField) {
  YAML::Node n = YAML::Load(R"(
- type: syslog
  format: ocsf
  address: "[::1]:6514"
  tls: {ca: /etc/ca.pem, cert: /c.pem, key: /k.pem, verify: false}
  spool_dir: /var/spool/writ
  spool_max_bytes: 1000
  name: siem
)");
  auto c = ParseSinkConfig(n[0], "f.yaml", 0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->type, "syslog");
  EXPECT_EQ(c->format, Format::kOcsf);
  EXPECT_EQ(c->address, "[::1]:6514");
  EXPECT_TRUE(c->tls.enabled);
  EXPECT_FALSE(c->tls.verify);
  EXPECT_EQ(c->tls.cert, "/c.pem");
  EXPECT_EQ(c->spool_max_bytes, 1000u);
  EXPECT_EQ(c->name, "siem");
}

TEST(SinksConfig, NatsFieldsAndErrors) {
  YAML::Node n = YAML::Load(R"(
- type: nats
  format: ocsf
  servers: [nats://10.0.0.1:4222, tls://10.0.0.2:4222]
  stream: WRIT_EVENTS
  subject: writ.events.web-1
  create_stream: true
  replicas: 3
  creds_file: writd.creds
  spool_dir: spool
- {type: nats, servers: nats://127.0.0.1:4222, stream: S}
)");
  auto c = ParseSinkConfig(n[0], "/etc/writ/writd.yaml", 0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->nats.servers,
            (std::vector<std::string>{"nats://10.0.0.1:4222", "tls://10.0.0.2:4222"}));
  EXPECT_EQ(c->nats.stream, "WRIT_EVENTS");
  EXPECT_EQ(c->nats.subject, "writ.events.web-1");
  EXPECT_TRUE(c->nats.create_stream);
  EXPECT_EQ(c->nats.replicas, 3);
  EXPECT_EQ(c->nats.creds_file, "/etc/writ/writd.creds");
  EXPECT_EQ(c->name, "nats-0");
  c = ParseSinkConfig(n[1], "f.yaml", 1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(absl::StartsWith(c->nats.subject, "writ.events.")) << c->nats.subject;
  EXPECT_EQ(c->nats.subject.find('.', 12), std::string::npos) << "the host name is one token";
  EXPECT_EQ(ConfigError("sinks:\n  - {type: nats, stream: S}\n"),
            "writd.yaml:2: sinks[0].servers: required for a nats sink");
  EXPECT_EQ(ConfigError("sinks:\n  - {type: nats, servers: [nats://x:1]}\n"),
            "writd.yaml:2: sinks[0].stream: required for a nats sink");
  EXPECT_EQ(ConfigError("sinks:\n  - type: nats\n    servers: [nats://x:1, \"x:2\"]\n"),
            "writd.yaml:3: sinks[0].servers: expected a nats:// or tls:// URL, got 'x:2'");
  EXPECT_EQ(ConfigError("sinks:\n  - type: nats\n    servers: [nats://x:1]\n    stream: S\n"
                        "    subject: writ.events.>\n"),
            "writd.yaml:5: sinks[0].subject: expected a subject without spaces or wildcards");
  EXPECT_EQ(
      ConfigError("sinks:\n  - type: nats\n    servers: [nats://x:1]\n    stream: A.B\n"),
      "writd.yaml:4: sinks[0].stream: expected a stream name without spaces, '.', '*' or '>'");
  EXPECT_EQ(ConfigError("sinks:\n  - type: nats\n    servers: [nats://x:1]\n    stream: S\n"
                        "    replicas: 7\n"),
            "writd.yaml:5: sinks[0].replicas: must be between 1 and 5");
  EXPECT_EQ(ConfigError("sinks:\n  - type: stdout\n    stream: S\n"),
            "writd.yaml:3: sinks[0].stream: only for a nats sink");
  EXPECT_EQ(ConfigError("sinks:\n  - {type: nats, servers: [nats://x:1], stream: S, user: u, "
                        "creds_file: c}\n"),
            "writd.yaml:2: sinks[0].creds_file: creds_file, nkey_seed_file and user exclude each "
            "other");
  // Files the sink cannot read stop the start, naming the sink.
  const std::string err = ConfigError(
      "sinks:\n  - {type: nats, servers: [nats://127.0.0.1:1], stream: S, "
      "creds_file: /nonexistent/x.creds}\n");
  EXPECT_NE(err.find("writd.yaml:2: sinks[0]: creds_file /nonexistent/x.creds: No such file"),
            std::string::npos)
      << err;
}

TEST(SinksNats, MessageIdIsTheLinesSha256) {
  const std::string line = R"({"id":"b1-42","kind":"exec"})";
  EXPECT_EQ(NatsMsgId(line), NatsMsgId(std::string(line)));
  EXPECT_EQ(NatsMsgId(line).size(), 64u);
  EXPECT_NE(NatsMsgId(line), NatsMsgId(R"({"id":"b1-43","kind":"exec"})"));
  // sha256("abc"), FIPS 180-2 test vector.
  EXPECT_EQ(NatsMsgId("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(SinksConfig, RelativePathsResolveAgainstTheConfigFile) {
  YAML::Node n = YAML::Load(R"(
- {type: file, path: log/events.jsonl, spool_dir: ../spool, tls: {ca: ca.pem}}
- {type: file, path: /abs/events.jsonl, spool_dir: /var/spool/writ}
- {type: stdout}
)");
  auto c = ParseSinkConfig(n[0], "/etc/writ/writd.yaml", 0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->path, "/etc/writ/log/events.jsonl");
  EXPECT_EQ(c->spool_dir, "/etc/spool");
  EXPECT_EQ(c->tls.ca, "/etc/writ/ca.pem");
  c = ParseSinkConfig(n[1], "/etc/writ/writd.yaml", 1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->path, "/abs/events.jsonl");
  EXPECT_EQ(c->spool_dir, "/var/spool/writ");
  c = ParseSinkConfig(n[2], "/etc/writ/writd.yaml", 2);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->path, "-");
}

TEST(SinksSyslog, OctetCountingFrame) {
  std::string out;
  const absl::Time t = absl::FromUnixMicros(1735787045123456);
  AppendSyslogFrame(R"({"id":"1"})", "host-1", "writ", 77, t, &out);
  const std::string expect_msg =
      R"(<134>1 2025-01-02T03:04:05.123456Z host-1 writ 77 event - {"id":"1"})";
  EXPECT_EQ(out, absl::StrCat(expect_msg.size(), " ", expect_msg));
  // Two frames back to back are separable by their counts alone.
  AppendSyslogFrame("x y\nz", "", "writ", 1, t, &out);
  const size_t sp = out.find(' ');
  const size_t len = std::stoul(out.substr(0, sp));
  const std::string second = out.substr(sp + 1 + len);
  const size_t sp2 = second.find(' ');
  EXPECT_EQ(std::stoul(second.substr(0, sp2)), second.size() - sp2 - 1);
  EXPECT_NE(second.find(" - writ 1 event - x y\nz"), std::string::npos);
}

TEST(SinksUrl, Parse) {
  auto u = ParseUrl("https://splunk.example:8088/services/collector/event");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "splunk.example");
  EXPECT_EQ(u->port, 8088);
  EXPECT_EQ(u->path, "/services/collector/event");
  u = ParseUrl("http://[::1]/hook");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 80);
  EXPECT_FALSE(ParseUrl("http://h:99999/").ok());
  EXPECT_FALSE(ParseUrl("h:80").ok());
}

TEST(SinksFile, AppendsAndRotatesBySize) {
  const fs::path dir = TempDir("file");
  SinkConfig c;
  c.type = "file";
  c.name = "f";
  c.path = (dir / "events.jsonl").string();
  c.max_bytes = 1000;
  c.max_files = 50;
  c.fsync = true;
  auto sink = MakeSink(c);
  ASSERT_TRUE(sink.ok()) << sink.status();
  const int n = 300;
  for (int i = 0; i < n; ++i) (*sink)->Submit(Line(i));
  (*sink)->Flush(absl::Seconds(10));
  const SinkStats st = (*sink)->stats();
  EXPECT_EQ(st.delivered, static_cast<uint64_t>(n));
  EXPECT_EQ(st.dropped(), 0u);
  (*sink)->Stop();
  // Oldest is the highest suffix; read back in order and check every line, each file <= max_bytes.
  std::vector<fs::path> files;
  for (int i = 50; i >= 1; --i) {
    fs::path p = dir / absl::StrCat("events.jsonl.", i);
    if (fs::exists(p)) files.push_back(p);
  }
  files.push_back(dir / "events.jsonl");
  EXPECT_GT(files.size(), 5u);
  int next = 0;
  for (const auto& f : files) {
    EXPECT_LE(fs::file_size(f), c.max_bytes) << f;
    std::ifstream in(f);
    std::string l;
    while (std::getline(in, l)) EXPECT_EQ(l, Line(next++));
  }
  EXPECT_EQ(next, n);
}

TEST(SinksFile, UnwritablePathFailsAtCreation) {
  auto s = MakeFileSink("/nonexistent-dir/x.jsonl", Format::kJson);
  EXPECT_FALSE(s.ok());
}

// Collects ids from webhook bodies (JSON arrays) or HEC bodies (concatenated objects).
std::multiset<std::string> Ids(const std::vector<testing::HttpRequest>& reqs, bool hec) {
  std::multiset<std::string> ids;
  for (const auto& r : reqs) {
    if (hec) {
      std::istringstream in(r.body);
      std::string l;
      while (std::getline(in, l)) {
        if (!l.empty()) ids.insert(json::parse(l)["event"]["id"].get<std::string>());
      }
    } else {
      for (const auto& e : json::parse(r.body)) ids.insert(e["id"].get<std::string>());
    }
  }
  return ids;
}

SinkConfig HttpConfig(const std::string& type, int port) {
  SinkConfig c;
  c.type = type;
  c.name = type;
  c.url = absl::StrCat("http://127.0.0.1:", port, type == "hec" ? "" : "/hook");
  c.token = "tok-123";
  c.batch_max = 25;
  c.backoff_min = absl::Milliseconds(20);
  c.backoff_max = absl::Milliseconds(200);
  c.timeout = absl::Milliseconds(300);
  return c;
}

TEST(SinksHttp, WebhookBatchesJsonArrays) {
  HttpReceiver rx;
  ASSERT_TRUE(rx.ok());
  auto sink = MakeSink(HttpConfig("http", rx.port()));
  ASSERT_TRUE(sink.ok()) << sink.status();
  for (int i = 0; i < 100; ++i) (*sink)->Submit(Line(i));
  (*sink)->Flush(absl::Seconds(10));
  const auto reqs = rx.requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs[0].request_line, "POST /hook HTTP/1.1");
  const auto ids = Ids(reqs, false);
  EXPECT_EQ(ids.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ids.count(absl::StrCat("e-", i)), 1u) << i;
  EXPECT_EQ((*sink)->stats().delivered, 100u);
}

TEST(SinksHttp, HecPathAndToken) {
  HttpReceiver rx;
  auto sink = MakeSink(HttpConfig("hec", rx.port()));
  ASSERT_TRUE(sink.ok()) << sink.status();
  for (int i = 0; i < 30; ++i) (*sink)->Submit(Line(i));
  (*sink)->Flush(absl::Seconds(10));
  const auto reqs = rx.requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs[0].request_line, "POST /services/collector/event HTTP/1.1");
  EXPECT_NE((reqs[0].headers + "\r\n").find("\r\nAuthorization: Splunk tok-123\r\n"),
            std::string::npos)
      << reqs[0].headers;
  EXPECT_EQ(Ids(reqs, true).size(), 30u);
}

TEST(SinksHttp, Receiver500IsRetriedAndNothingLost) {
  HttpReceiver rx(0, HttpReceiver::Mode::kFail500, 3);
  auto sink = MakeSink(HttpConfig("http", rx.port()));
  ASSERT_TRUE(sink.ok());
  for (int i = 0; i < 60; ++i) (*sink)->Submit(Line(i));
  (*sink)->Flush(absl::Seconds(15));
  const SinkStats st = (*sink)->stats();
  EXPECT_EQ(rx.bad_answered(), 3);
  EXPECT_GE(st.retries, 3u);
  EXPECT_NE(st.last_error.find("status 500"), std::string::npos) << st.last_error;
  EXPECT_EQ(st.errors[static_cast<size_t>(SinkError::kHttpStatus)], st.retries);
  EXPECT_EQ(st.dropped(), 0u);
  const auto ids = Ids(rx.requests(), false);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 60u);
}

TEST(SinksHttp, HangingReceiverTimesOutAndRetries) {
  HttpReceiver rx(0, HttpReceiver::Mode::kHang, 2);
  auto sink = MakeSink(HttpConfig("http", rx.port()));
  ASSERT_TRUE(sink.ok());
  for (int i = 0; i < 40; ++i) (*sink)->Submit(Line(i));
  (*sink)->Flush(absl::Seconds(15));
  const SinkStats st = (*sink)->stats();
  EXPECT_EQ(rx.bad_answered(), 2);
  EXPECT_GE(st.retries, 2u);
  EXPECT_NE(st.last_error.find("timed out"), std::string::npos) << st.last_error;
  EXPECT_EQ(st.errors[static_cast<size_t>(SinkError::kTimeout)], st.retries);
  const auto ids = Ids(rx.requests(), false);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 40u);
  EXPECT_EQ(st.dropped(), 0u);
}

// Batches go over one kept-alive connection (http::Client), not one connection each.
TEST(SinksHttp, KeepsItsConnectionAcrossBatches) {
  auto rx = http::Server::Create({});
  ASSERT_TRUE(rx.ok()) << rx.status();
  std::atomic<int> batches{0};
  (*rx)->AddRoute("POST", "/hook", [&batches](const http::Request& r) {
    batches++;
    http::Response resp;
    resp.body = nlohmann::json::parse(r.body).is_array() ? "{}" : "not an array";
    return resp;
  });
  ASSERT_TRUE((*rx)->Start().ok());
  SinkConfig c = HttpConfig("http", (*rx)->port());
  c.batch_max = 10;
  c.linger = absl::ZeroDuration();
  auto sink = MakeSink(c);
  ASSERT_TRUE(sink.ok()) << sink.status();
  for (int i = 0; i < 100; ++i) {
    (*sink)->Submit(Line(i));
    if (i % 10 == 9) (*sink)->Flush(absl::Seconds(10));
  }
  EXPECT_EQ((*sink)->stats().delivered, 100u);
  EXPECT_GE(batches.load(), 10);
  EXPECT_EQ((*rx)->stats().connections_accepted, 1u);
}

// https is always verified: a configuration that turns verification off is refused, naming why.
TEST(SinksHttp, VerifyOffIsRefused) {
  for (const char* type : {"http", "hec"}) {
    SinkConfig c = HttpConfig(type, 443);
    c.url = "https://siem.example:8088/hook";
    c.tls.verify = false;
    auto sink = MakeSink(c);
    ASSERT_FALSE(sink.ok()) << type;
    EXPECT_EQ(sink.status().message(),
              absl::StrCat("sink ", type, ": tls.verify: false is not available for ", type,
                           " sinks (https is always verified; give the receiver's CA in tls.ca)"));
  }
}

TEST(SinksSpool, ReceiverDownThenUpReplaysInOrder) {
  const fs::path dir = TempDir("spool");
  const int port = testing::FreePort();
  SinkConfig c = HttpConfig("http", port);
  c.spool_dir = dir.string();
  auto sink = MakeSink(c);
  ASSERT_TRUE(sink.ok());
  for (int i = 0; i < 200; ++i) (*sink)->Submit(Line(i));
  ASSERT_TRUE(WaitFor([&] { return (*sink)->stats().spooled == 200; })) << (*sink)->stats().spooled;
  EXPECT_GT((*sink)->stats().spool_bytes, 0u);
  EXPECT_TRUE(fs::exists(dir / "http.spool"));
  HttpReceiver rx(port);
  ASSERT_TRUE(rx.ok()) << "port " << port << " taken meanwhile";
  for (int i = 200; i < 250; ++i) (*sink)->Submit(Line(i));
  (*sink)->Flush(absl::Seconds(20));
  const SinkStats st = (*sink)->stats();
  EXPECT_EQ(st.spool_bytes, 0u);
  EXPECT_EQ(st.dropped(), 0u);
  // In order: the spooled lines first, then the new ones.
  std::vector<std::string> order;
  for (const auto& r : rx.requests()) {
    for (const auto& e : json::parse(r.body)) order.push_back(e["id"].get<std::string>());
  }
  ASSERT_EQ(order.size(), 250u);
  for (int i = 0; i < 250; ++i) EXPECT_EQ(order[i], absl::StrCat("e-", i));
  EXPECT_EQ(fs::file_size(dir / "http.spool"), 0u);  // truncated once drained
}

TEST(SinksSpool, FullSpoolAndFullQueueAreCounted) {
  const fs::path dir = TempDir("spoolfull");
  SinkConfig c = HttpConfig("http", testing::FreePort());
  c.spool_dir = dir.string();
  c.spool_max_bytes = 10 * (Line(0).size() + 1);  // room for 10 lines
  auto sink = MakeSink(c);
  ASSERT_TRUE(sink.ok());
  for (int i = 0; i < 50; ++i) (*sink)->Submit(Line(i));
  ASSERT_TRUE(WaitFor([&] {
    const auto s = (*sink)->stats();
    return s.spooled + s.dropped_spool_full == 50;
  }));
  const SinkStats st = (*sink)->stats();
  EXPECT_EQ(st.spooled, 10u);
  EXPECT_EQ(st.dropped_spool_full, 40u);

  // No spool: the in-memory queue bounds memory and counts what does not fit.
  SinkConfig q = HttpConfig("http", testing::FreePort());
  q.queue_max = 10;
  q.batch_max = 1;
  q.backoff_min = absl::Seconds(1);
  auto s2 = MakeSink(q);
  ASSERT_TRUE(s2.ok());
  for (int i = 0; i < 100; ++i) (*s2)->Submit(Line(i));
  const SinkStats st2 = (*s2)->stats();
  EXPECT_EQ(st2.submitted, 100u);
  EXPECT_GE(st2.dropped_queue_full, 89u);
  EXPECT_EQ(st2.dropped_queue_full + st2.queue_depth, 100u);
  (*s2)->Stop();
  const SinkStats st3 = (*s2)->stats();
  EXPECT_EQ(st3.dropped(), 100u);  // nothing delivered, nothing silently lost
}

TEST(SinksSet, EncodesOncePerFormatAndFansOut) {
  const fs::path dir = TempDir("set");
  const std::string yaml =
      absl::StrCat("sinks:\n  - {type: file, path: ", (dir / "a.jsonl").string(),
                   "}\n  - {type: file, format: ocsf, path: ", (dir / "b.jsonl").string(), "}\n");
  YAML::Node n = YAML::Load(yaml);
  auto set = MakeSinkSet(n["sinks"], "t.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ((*set)->size(), 2u);
  writ::v1::Event ev;
  ev.set_id("ev-1");
  ev.set_kind("exec");
  ev.set_time("2025-01-02T03:04:05Z");
  ev.mutable_process()->set_pid(5);
  (*set)->Submit(ev);
  (*set)->Flush(absl::Seconds(5));
  (*set)->Stop();
  std::ifstream a(dir / "a.jsonl"), b(dir / "b.jsonl");
  std::string la, lb;
  ASSERT_TRUE(std::getline(a, la));
  ASSERT_TRUE(std::getline(b, lb));
  EXPECT_EQ(json::parse(la)["id"], "ev-1");
  EXPECT_EQ(json::parse(lb)["class_uid"], 1007);
  EXPECT_EQ(json::parse(lb)["metadata"]["uid"], "ev-1");
}

// The pipeline stages lines and hands them over per batch: nothing reaches a sink before Commit (or
// a Submit, which commits what was staged before it), every kCommitEvery events commit by
// themselves, and the file gets every line once, in order.
TEST(SinksSet, StagedLinesWaitForCommitAndKeepOrder) {
  const fs::path dir = TempDir("stage");
  YAML::Node n = YAML::Load(
      absl::StrCat("sinks:\n  - {type: file, path: ", (dir / "a.jsonl").string(), "}\n"));
  auto set = MakeSinkSet(n["sinks"], "t.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  auto ev = [](const std::string& id) {
    writ::v1::Event e;
    e.set_id(id);
    return e;
  };
  std::vector<std::string> want;
  for (int i = 0; i < 3; ++i) {
    want.push_back(absl::StrCat("s", i));
    (*set)->Stage(ev(want.back()));
  }
  EXPECT_EQ((*set)->stats(0).submitted, 0u) << "staged lines were handed over before a commit";
  want.push_back("direct");
  (*set)->Submit(ev(want.back()));
  EXPECT_EQ((*set)->stats(0).submitted, 4u);
  for (size_t i = 0; i < SinkSet::kCommitEvery; ++i) {
    want.push_back(absl::StrCat("b", i));
    (*set)->Stage(ev(want.back()));
  }
  EXPECT_EQ((*set)->stats(0).submitted, 4u + SinkSet::kCommitEvery)
      << "no commit after kCommitEvery";
  want.push_back("last");
  (*set)->Stage(ev(want.back()));
  (*set)->Stop();  // commits the last staged line, then flushes
  std::ifstream in(dir / "a.jsonl");
  std::vector<std::string> got;
  for (std::string line; std::getline(in, line);) got.push_back(json::parse(line)["id"]);
  EXPECT_EQ(got, want);
  EXPECT_EQ((*set)->stats(0).submitted, want.size());
  EXPECT_EQ((*set)->stats(0).delivered, want.size());
}

}  // namespace
}  // namespace writ::sinks
