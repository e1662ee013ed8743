// The `nats` sink against real nats-server processes on loopback (tests/testlib/nats_cluster):
// a 3-node JetStream cluster with a stream of 3 replicas; events go through a real SinkSet and
// AsyncSink; a durable pull consumer reads the stream back and checks that every event arrived
// exactly once (by its id). A node killed mid-stream, the whole cluster down (at start and at
// runtime: lines spool and arrive after the restart), credentials the server refuses (counted,
// spooled, delivered once right credentials take over the spool), a batch sent twice (deduplicated
// by Nats-Msg-Id). Docs: docs/fleet.md.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "sinks/sink.h"
#include "sinks/transport.h"
#include "testlib/nats_cluster.h"

namespace writ {
namespace {

using sinks::SinkSet;
using testlib::NatsCluster;

#define SKIP_WITHOUT_NATS()                                                             \
  do {                                                                                  \
    if (std::string why = NatsCluster::SkipReason(); !why.empty()) GTEST_SKIP() << why; \
  } while (0)

// A spool directory, removed when the test ends.
struct TempSpool {
  std::string path;
  TempSpool() {
    char tmpl[] = "/tmp/writ-nats-spool-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempSpool() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

writ::v1::Event MakeEvent(int i) {
  writ::v1::Event ev;
  ev.set_id(absl::StrCat("e2e-", i));
  ev.set_kind("exec");
  ev.mutable_process()->set_pid(1000 + i);
  ev.mutable_process()->set_exe("/usr/bin/true");
  return ev;
}

// A SinkSet with one nats sink, from YAML as writd.yaml would hold it.
std::unique_ptr<SinkSet> NatsSinks(const std::vector<std::string>& servers,
                                   const std::string& extra) {
  const std::string y =
      absl::StrCat("- type: nats\n  name: nats-e2e\n  servers: [", absl::StrJoin(servers, ", "),
                   "]\n  stream: WRIT_EVENTS\n  subject: writ.events.e2e\n", extra);
  auto set = sinks::MakeSinkSet(YAML::Load(y), "test.yaml");
  EXPECT_TRUE(set.ok()) << set.status() << "\n" << y;
  return set.ok() ? std::move(*set) : nullptr;
}

// An admin connection of the test's own, for the stream and the consumer.
struct Admin {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  explicit Admin(const std::vector<std::string>& urls, const char* user = nullptr,
                 const char* pass = nullptr) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    std::vector<const char*> u;
    for (const auto& s : urls) u.push_back(s.c_str());
    natsOptions_SetServers(o, u.data(), static_cast<int>(u.size()));
    if (user != nullptr) natsOptions_SetUserInfo(o, user, pass);
    natsOptions_SetTimeout(o, 5000);
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 200);
    EXPECT_EQ(natsConnection_Connect(&nc, o), NATS_OK) << nats_GetLastError(nullptr);
    natsOptions_Destroy(o);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    if (nc != nullptr) natsConnection_JetStream(&js, nc, &jo);
  }
  ~Admin() {
    if (js != nullptr) jsCtx_Destroy(js);
    if (nc != nullptr) natsConnection_Destroy(nc);
  }
  void CreateStream(int replicas) {
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = "WRIT_EVENTS";
    const char* subjects[] = {"writ.events.>"};
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    ASSERT_EQ(js_AddStream(&si, js, &sc, nullptr, &jerr), NATS_OK)
        << nats_GetLastError(nullptr) << " " << jerr;
    jsStreamInfo_Destroy(si);
  }
  uint64_t StreamMsgs() {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    natsStatus s = NATS_ERR;
    for (const absl::Time until = absl::Now() + absl::Seconds(30); absl::Now() < until;) {
      s = js_GetStreamInfo(&si, js, "WRIT_EVENTS", nullptr, &jerr);
      if (s == NATS_OK) break;
      absl::SleepFor(absl::Milliseconds(500));
    }
    if (s != NATS_OK) return 0;
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
  }
  // Reads the whole stream with a durable pull consumer (acking each message); event id -> count.
  std::map<std::string, int> ConsumeAll(size_t expect, absl::Duration max = absl::Seconds(60)) {
    std::map<std::string, int> seen;
    natsSubscription* sub = nullptr;
    jsErrCode jerr{};
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "WRIT_EVENTS";
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverAll;
    // After a node kill the cluster may still be electing its meta leader: retry, bounded.
    natsStatus s = NATS_ERR;
    for (const absl::Time until = absl::Now() + absl::Seconds(30); absl::Now() < until;) {
      s = js_PullSubscribe(&sub, js, "writ.events.>", "e2e-reader", nullptr, &so, &jerr);
      if (s == NATS_OK) break;
      absl::SleepFor(absl::Milliseconds(500));
    }
    EXPECT_EQ(s, NATS_OK) << nats_GetLastError(nullptr) << " " << jerr;
    if (s != NATS_OK) return seen;
    const absl::Time deadline = absl::Now() + max;
    size_t total = 0;
    while (absl::Now() < deadline) {
      natsMsgList list{};
      s = natsSubscription_Fetch(&list, sub, 500, 1000, &jerr);
      if (s == NATS_OK) {
        for (int i = 0; i < list.Count; ++i) {
          natsMsg* m = list.Msgs[i];
          auto j = nlohmann::json::parse(
              std::string(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))),
              nullptr, false);
          seen[j.is_object() ? j.value("id", "?") : "?"]++;
          total++;
          natsMsg_Ack(m, nullptr);
        }
        natsMsgList_Destroy(&list);
      } else if (total >= expect) {
        break;  // nothing more within 1 s after everything expected arrived
      }
    }
    natsSubscription_Destroy(sub);
    return seen;
  }
};

// Every event 0..n-1 exactly once.
void ExpectExactlyOnce(const std::map<std::string, int>& seen, int n) {
  int missing = 0, dups = 0;
  for (int i = 0; i < n; ++i) {
    auto it = seen.find(absl::StrCat("e2e-", i));
    if (it == seen.end()) {
      missing++;
    } else if (it->second != 1) {
      dups += it->second - 1;
    }
  }
  EXPECT_EQ(missing, 0) << "events lost";
  EXPECT_EQ(dups, 0) << "events duplicated";
  EXPECT_EQ(seen.size(), static_cast<size_t>(n)) << "unexpected ids in the stream";
}

void WaitFor(const std::function<bool()>& cond, absl::Duration max, const char* what) {
  const absl::Time deadline = absl::Now() + max;
  while (!cond()) {
    ASSERT_LT(absl::Now(), deadline) << "timed out waiting for " << what;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

TEST(NatsSinkE2e, ThreeNodesEveryEventOnceThroughANodeKill) {
  SKIP_WITHOUT_NATS();
  NatsCluster nats;
  ASSERT_TRUE(nats.Start(3).ok());
  {
    Admin admin(nats.urls());
    admin.CreateStream(3);
  }
  const TempSpool spool;
  const std::string& dir = spool.path;
  auto set = NatsSinks(nats.urls(), absl::StrCat("  spool_dir: ", dir, "\n"));
  ASSERT_NE(set, nullptr);
  absl::SleepFor(absl::Milliseconds(300));  // the sink's connect
  constexpr int kN = 5000;
  const absl::Time t0 = absl::Now();
  int killed = -1;
  uint64_t delivered_at_kill = 0;
  for (int i = 0; i < kN; ++i) {
    set->Submit(MakeEvent(i));
    if (i % 100 == 99) absl::SleepFor(absl::Milliseconds(10));  // a steady stream, not one burst
    if (i == kN / 2) {
      // Kill the node the sink is connected to: its connection moves to another; the R3 stream
      // keeps its quorum of two.
      killed = nats.NodeServing("writd nats-e2e");
      ASSERT_GE(killed, 0) << "no node lists the sink's connection";
      ASSERT_TRUE(nats.Kill(killed).ok());
      delivered_at_kill = set->stats(0).delivered;
    }
  }
  set->Flush(absl::Seconds(60));
  const absl::Duration took = absl::Now() - t0;
  const sinks::SinkStats st = set->stats(0);
  EXPECT_GT(delivered_at_kill, 0u) << "the kill came before any delivery";
  EXPECT_LT(delivered_at_kill, static_cast<uint64_t>(kN)) << "the kill came after all deliveries";
  EXPECT_EQ(st.dropped(), 0u);
  EXPECT_EQ(st.queue_depth, 0u);
  EXPECT_EQ(st.spool_bytes, 0u);
  EXPECT_GE(st.delivered, static_cast<uint64_t>(kN));
  std::vector<std::string> alive;
  for (int i = 0; i < nats.size(); ++i) {
    if (i != killed) alive.push_back(nats.url(i));
  }
  Admin admin(alive);
  ExpectExactlyOnce(admin.ConsumeAll(kN), kN);
  EXPECT_EQ(admin.StreamMsgs(), static_cast<uint64_t>(kN));
  printf(
      "nats sink: %d events, node%d (the sink's) killed after %llu delivered; all in %s, "
      "retries %llu, spooled %llu\n",
      kN, killed + 1, static_cast<unsigned long long>(delivered_at_kill),
      absl::FormatDuration(took).c_str(), static_cast<unsigned long long>(st.retries),
      static_cast<unsigned long long>(st.spooled));
  set->Stop();
}

TEST(NatsSinkE2e, PublishRate) {
  SKIP_WITHOUT_NATS();
  NatsCluster nats;
  ASSERT_TRUE(nats.Start(3).ok());
  Admin admin(nats.urls());
  admin.CreateStream(3);
  auto set = NatsSinks(nats.urls(), "  queue_max: 50000\n");
  ASSERT_NE(set, nullptr);
  absl::SleepFor(absl::Milliseconds(300));  // the sink's connect, not part of the rate
  constexpr int kN = 20000;
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < kN; ++i) set->Submit(MakeEvent(i));
  set->Flush(absl::Seconds(60));
  const absl::Duration took = absl::Now() - t0;
  EXPECT_EQ(set->stats(0).delivered, static_cast<uint64_t>(kN));
  EXPECT_EQ(set->stats(0).retries, 0u);
  ExpectExactlyOnce(admin.ConsumeAll(kN), kN);
  printf("nats sink: %d events, R3 stream, batch_max 100, in %s: %.0f events/s\n", kN,
         absl::FormatDuration(took).c_str(), kN / absl::ToDoubleSeconds(took));
  // For comparison: the same kind of line published synchronously, one PubAck wait per message
  // (what the sink does not do).
  constexpr int kSync = 2000;
  const absl::Time s0 = absl::Now();
  for (int i = 0; i < kSync; ++i) {
    const std::string line = absl::StrCat(R"({"id":"sync-)", i, R"(","kind":"exec"})");
    natsMsg* m = nullptr;
    natsMsg_Create(&m, "writ.events.sync", nullptr, line.data(), static_cast<int>(line.size()));
    natsMsgHeader_Set(m, "Nats-Msg-Id", sinks::NatsMsgId(line).c_str());
    jsPubAck* pa = nullptr;
    ASSERT_EQ(js_PublishMsg(&pa, admin.js, m, nullptr, nullptr), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
  }
  const absl::Duration sync_took = absl::Now() - s0;
  printf("synchronous js_PublishMsg, one ack wait each: %d in %s: %.0f messages/s\n", kSync,
         absl::FormatDuration(sync_took).c_str(), kSync / absl::ToDoubleSeconds(sync_took));
}

TEST(NatsSinkE2e, ClusterDownAtRuntimeSpoolsAndDeliversAfterRestart) {
  SKIP_WITHOUT_NATS();
  NatsCluster nats;
  ASSERT_TRUE(nats.Start(3).ok());
  {
    Admin admin(nats.urls());
    admin.CreateStream(3);
  }
  const TempSpool spool;
  const std::string& dir = spool.path;
  auto set = NatsSinks(nats.urls(), absl::StrCat("  spool_dir: ", dir, "\n"));
  ASSERT_NE(set, nullptr);
  for (int i = 0; i < 500; ++i) set->Submit(MakeEvent(i));
  set->Flush(absl::Seconds(30));
  EXPECT_EQ(set->stats(0).delivered, 500u);
  ASSERT_TRUE(nats.KillAll().ok());
  for (int i = 500; i < 1000; ++i) set->Submit(MakeEvent(i));
  WaitFor([&] { return set->stats(0).spooled > 0; }, absl::Seconds(30), "lines to spool");
  EXPECT_GT(set->stats(0).retries, 0u);
  EXPECT_FALSE(set->stats(0).last_error.empty());
  ASSERT_TRUE(nats.RestartAll().ok());
  WaitFor([&] { return set->stats(0).delivered >= 1000 && set->stats(0).spool_bytes == 0; },
          absl::Seconds(60), "the spool to replay");
  EXPECT_EQ(set->stats(0).dropped(), 0u);
  Admin admin(nats.urls());
  ExpectExactlyOnce(admin.ConsumeAll(1000), 1000);
}

TEST(NatsSinkE2e, UnreachableAtStartDoesNotBlockAndDeliversLater) {
  SKIP_WITHOUT_NATS();
  NatsCluster nats;
  ASSERT_TRUE(nats.Start(3).ok());
  ASSERT_TRUE(nats.KillAll().ok());
  const TempSpool spool;
  const std::string& dir = spool.path;
  const absl::Time t0 = absl::Now();
  auto set = NatsSinks(nats.urls(), absl::StrCat("  create_stream: true\n  replicas: 3\n",
                                                 "  spool_dir: ", dir, "\n"));
  ASSERT_NE(set, nullptr);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1)) << "the sink waited for NATS at start";
  for (int i = 0; i < 300; ++i) set->Submit(MakeEvent(i));
  WaitFor([&] { return set->stats(0).spooled > 0 && !set->stats(0).last_error.empty(); },
          absl::Seconds(30), "lines to spool");
  EXPECT_NE(set->stats(0).last_error.find("not connected"), std::string::npos)
      << set->stats(0).last_error;
  ASSERT_TRUE(nats.RestartAll().ok());
  WaitFor([&] { return set->stats(0).delivered >= 300 && set->stats(0).spool_bytes == 0; },
          absl::Seconds(60), "delivery after NATS came up");
  Admin admin(nats.urls());
  ExpectExactlyOnce(admin.ConsumeAll(300), 300);
}

// The least-privilege account docs/fleet.md shows: the sink's user may publish events and ask for
// its stream's info, nothing else.
constexpr char kAuthConfig[] = R"(
authorization {
  users: [
    {user: admin, password: admin-secret}
    {user: writd, password: writd-secret,
     permissions: {publish: {allow: ["writ.events.>", "$JS.API.STREAM.INFO.WRIT_EVENTS"]},
                   subscribe: {allow: ["_INBOX.>"]}}}
  ]
}
)";

// One node under kAuthConfig, its stream created by the admin user.
void StartWithAccounts(NatsCluster& nats) {
  ASSERT_TRUE(nats.Start(1, kAuthConfig).ok());
  Admin admin(nats.urls(), "admin", "admin-secret");
  admin.CreateStream(1);
}

TEST(NatsSinkE2e, WrongCredentialsAreRefusedCountedAndNothingIsLost) {
  SKIP_WITHOUT_NATS();
  NatsCluster nats;
  ASSERT_NO_FATAL_FAILURE(StartWithAccounts(nats));
  const TempSpool spool;
  const std::string& dir = spool.path;
  {
    auto set = NatsSinks(nats.urls(), absl::StrCat("  user: writd\n  password: wrong\n",
                                                   "  spool_dir: ", dir, "\n"));
    ASSERT_NE(set, nullptr);
    for (int i = 0; i < 200; ++i) set->Submit(MakeEvent(i));
    WaitFor([&] { return set->stats(0).spooled >= 200; }, absl::Seconds(30), "lines to spool");
    // The lines spool while the first connect is still under way ("Not Yet Connected"); the
    // server's refusal is the error once that connect has been answered (1.5 s later in one loaded
    // run of scripts/test.sh).
    WaitFor([&] { return set->stats(0).last_error.find("uthorization") != std::string::npos; },
            absl::Seconds(15), "the server's refusal as the last error");
    const sinks::SinkStats st = set->stats(0);
    EXPECT_GT(st.errors[static_cast<int>(sinks::SinkError::kConnect)], 0u);
    EXPECT_NE(st.last_error.find("uthorization"), std::string::npos) << st.last_error;
    EXPECT_EQ(st.delivered, 0u);
    set->Stop();
    EXPECT_EQ(set->stats(0).dropped(), 0u);
  }
  // The right credentials: the same sink name and spool replay what the refused one kept.
  auto set = NatsSinks(nats.urls(), absl::StrCat("  user: writd\n  password: writd-secret\n",
                                                 "  spool_dir: ", dir, "\n"));
  ASSERT_NE(set, nullptr);
  WaitFor([&] { return set->stats(0).replayed >= 200 && set->stats(0).spool_bytes == 0; },
          absl::Seconds(30), "the spool to replay");
  Admin admin(nats.urls(), "admin", "admin-secret");
  ExpectExactlyOnce(admin.ConsumeAll(200), 200);
}

// libnats closes a connection for good once the same server refused its credentials twice; the link
// makes a new one, so a password fixed on the server is picked up without restarting writd.
TEST(NatsSinkE2e, CredentialsFixedOnTheServerArePickedUpWithoutARestart) {
  SKIP_WITHOUT_NATS();
  NatsCluster nats;
  ASSERT_NO_FATAL_FAILURE(StartWithAccounts(nats));
  const TempSpool spool;
  const std::string& dir = spool.path;
  auto set = NatsSinks(nats.urls(), absl::StrCat("  user: writd\n  password: rotated-secret\n",
                                                 "  spool_dir: ", dir, "\n"));
  ASSERT_NE(set, nullptr);
  for (int i = 0; i < 100; ++i) set->Submit(MakeEvent(i));
  WaitFor([&] { return set->stats(0).spooled >= 100; }, absl::Seconds(30), "lines to spool");
  absl::SleepFor(absl::Seconds(2));  // long enough for libnats to give the connection up
  EXPECT_EQ(set->stats(0).delivered, 0u);
  std::string rotated = kAuthConfig;
  rotated.replace(rotated.find("writd-secret"), strlen("writd-secret"), "rotated-secret");
  ASSERT_TRUE(nats.Reconfigure(rotated).ok());
  WaitFor([&] { return set->stats(0).delivered >= 100 && set->stats(0).spool_bytes == 0; },
          absl::Seconds(30), "delivery under the fixed credentials");
  Admin admin(nats.urls(), "admin", "admin-secret");
  ExpectExactlyOnce(admin.ConsumeAll(100), 100);
}

TEST(NatsSinkE2e, ABatchSentTwiceIsStoredOnce) {
  SKIP_WITHOUT_NATS();
  NatsCluster nats;
  ASSERT_TRUE(nats.Start(3).ok());
  Admin admin(nats.urls());
  admin.CreateStream(3);
  auto c = sinks::ParseSinkConfig(
      YAML::Load(absl::StrCat("{type: nats, stream: WRIT_EVENTS, subject: writ.events.e2e, ",
                              "servers: [", absl::StrJoin(nats.urls(), ", "), "]}")),
      "test.yaml", 0);
  ASSERT_TRUE(c.ok()) << c.status();
  auto t = sinks::MakeNatsTransport(*c);
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<std::string> lines;
  for (int i = 0; i < 100; ++i) lines.push_back(absl::StrCat(R"({"id":"e2e-)", i, R"("})"));
  WaitFor([&] { return (*t)->Send(lines).ok(); }, absl::Seconds(10), "the first send");
  ASSERT_TRUE((*t)->Send(lines).ok());  // a retry of the same batch, e.g. after a lost ack
  EXPECT_EQ(admin.StreamMsgs(), 100u);
  ExpectExactlyOnce(admin.ConsumeAll(100), 100);
}

}  // namespace
}  // namespace writ
