// Workload API in-process: a C++ gRPC client over the real unix socket; the lookup callback decides
// by pid.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "creds/workload_api.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "writ/v1/workload.grpc.pb.h"

namespace writ::creds {
namespace {

namespace api = ::SpiffeWorkloadAPI;

class WorkloadApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-wl-XXXXXX";
    dir_ = mkdtemp(tmpl);
    KeyStoreOptions ko;
    ko.state_dir = dir_;
    keys_ = std::move(*KeyStore::Open(ko));
    revs_ = std::move(*RevocationStore::Open(dir_ + "/revoked.db"));
    issuer_ =
        std::make_unique<Issuer>(IssuerOptions{"https://writ.local"}, keys_.get(), revs_.get());
    WorkloadApiOptions o;
    o.socket_path = dir_ + "/workload.sock";
    o.trust_domain = "example.org";
    o.bundle_poll = absl::Milliseconds(50);
    o.lookup = [this](pid_t pid, uint64_t start,
                      const std::string& cgroup) -> std::optional<TaskClaims> {
      lookups_++;
      {
        std::lock_guard<std::mutex> lock(mu_);  // handlers run on several gRPC threads at once
        seen_pid_ = pid;
        seen_start_ = start;
        seen_cgroup_ = cgroup;
      }
      if (during_lookup_) during_lookup_(pid);
      if (!is_task_) return std::nullopt;
      return TaskClaims{task_b_ ? "task-b" : "task-9",
                        "spiffe://example.org/agent/x",
                        {"user:alice@x"},
                        "review",
                        absl::Now() + absl::Hours(1)};
    };
    o.proc_root = proc_root_;
    o.max_streams_per_task = max_streams_per_task_;
    o.max_streams_total = max_streams_total_;
    o.max_threads = max_threads_;
    o.on_issued = [this](const TaskClaims&, const Svid& s) {
      std::lock_guard<std::mutex> lock(mu_);
      issued_.push_back(s.jti);
    };
    auto srv = WorkloadApiServer::Start(o, issuer_.get(), keys_.get());
    ASSERT_TRUE(srv.ok()) << srv.status();
    server_ = std::move(*srv);
    stub_ = api::SpiffeWorkloadAPI::NewStub(
        grpc::CreateChannel("unix:" + dir_ + "/workload.sock", grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Stop();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<grpc::ClientContext> Ctx(bool header = true) {
    auto c = std::make_unique<grpc::ClientContext>();
    if (header) c->AddMetadata("workload.spiffe.io", "true");
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return c;
  }

  std::string dir_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<RevocationStore> revs_;
  std::unique_ptr<Issuer> issuer_;
  std::unique_ptr<WorkloadApiServer> server_;
  std::unique_ptr<api::SpiffeWorkloadAPI::Stub> stub_;
  std::atomic<bool> is_task_{true};
  std::atomic<bool> task_b_{false};  // the caller is task-b instead of task-9
  int max_streams_per_task_ = 4, max_streams_total_ = 32, max_threads_ = 0;
  std::atomic<int> lookups_{0};
  // What the handlers record, written from gRPC's threads (concurrently in the threads tests) and
  // read by the test once its calls have returned.
  std::mutex mu_;
  pid_t seen_pid_ = 0;
  uint64_t seen_start_ = 0;
  std::string seen_cgroup_;
  std::vector<std::string> issued_;
  std::string proc_root_ = "/proc";
  std::function<void(pid_t)> during_lookup_;  // runs inside the daemon's lookup (a gRPC thread)
};

// A fake /proc holding only this process, so a test can make its pid "exit" or "be reused" at the
// exact moment the attestation looks (the real kernel gives no such control).
class WorkloadApiFakeProcTest : public WorkloadApiTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-fakeproc-XXXXXX";
    fake_ = mkdtemp(tmpl);
    proc_root_ = fake_;
    pid_dir_ = absl::StrCat(fake_, "/", getpid());
    std::filesystem::create_directories(pid_dir_);
    WriteStat(kStart);
    std::ofstream(pid_dir_ + "/cgroup") << "0::/writ/task-9\n";
    WorkloadApiTest::SetUp();
  }
  void TearDown() override {
    WorkloadApiTest::TearDown();
    std::filesystem::remove_all(fake_);
  }
  void WriteStat(uint64_t start) {
    std::ofstream(pid_dir_ + "/stat.tmp")
        << getpid() << " (agent) S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 " << start
        << " 1000 200\n";
    std::filesystem::rename(pid_dir_ + "/stat.tmp", pid_dir_ + "/stat");
  }
  grpc::Status Fetch(api::JWTSVIDResponse* resp) {
    api::JWTSVIDRequest req;
    req.add_audience("db");
    return stub_->FetchJWTSVID(Ctx().get(), req, resp);
  }
  static constexpr uint64_t kStart = 4242;
  std::string fake_, pid_dir_;
};

TEST_F(WorkloadApiFakeProcTest, AttestedThroughTheFakeProc) {
  api::JWTSVIDResponse resp;
  ASSERT_TRUE(Fetch(&resp).ok());
  EXPECT_EQ(seen_start_, kStart);
  EXPECT_EQ(seen_cgroup_, "/writ/task-9");
}

TEST_F(WorkloadApiFakeProcTest, PidReusedBetweenPeerCredAndLookupIsDenied) {
  // The pid's start time changes while the daemon looks the cgroup up: another process now has the
  // pid.
  during_lookup_ = [this](pid_t) { WriteStat(kStart + 1); };
  api::JWTSVIDResponse resp;
  grpc::Status st = Fetch(&resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_NE(st.error_message().find("gone"), std::string::npos) << st.error_message();
  EXPECT_EQ(resp.svids_size(), 0);
  EXPECT_TRUE(issued_.empty());
}

TEST_F(WorkloadApiFakeProcTest, PidReusedBetweenAcceptAndCallIsDeniedWithoutLookup) {
  api::JWTSVIDResponse resp;
  ASSERT_TRUE(Fetch(&resp).ok());  // the connection is attested with kStart
  const int before = lookups_.load();
  WriteStat(kStart + 7);  // ... then the pid belongs to someone else
  grpc::Status st = Fetch(&resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(lookups_.load(), before);  // refused before the daemon is even asked
  EXPECT_EQ(issued_.size(), 1u);
}

TEST_F(WorkloadApiFakeProcTest, PeerThatVanishesDuringLookupGetsNothing) {
  during_lookup_ = [this](pid_t) { std::filesystem::remove_all(pid_dir_); };
  api::JWTSVIDResponse resp;
  grpc::Status st = Fetch(&resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(issued_.empty());
}

TEST_F(WorkloadApiTest, FetchAndValidateForAttestedTask) {
  api::JWTSVIDRequest req;
  req.add_audience("db");
  api::JWTSVIDResponse resp;
  auto st = stub_->FetchJWTSVID(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.svids_size(), 1);
  EXPECT_EQ(resp.svids(0).spiffe_id(), "spiffe://example.org/agent/x");
  EXPECT_EQ(resp.svids(0).hint(), "task-9");
  // The attestation saw this very process.
  EXPECT_EQ(seen_pid_, getpid());
  EXPECT_EQ(seen_start_, *ReadProcStartTime(getpid()));
  EXPECT_EQ(seen_cgroup_, *ReadCgroupV2Path(getpid()));
  EXPECT_EQ(issued_.size(), 1u);

  api::ValidateJWTSVIDRequest vreq;
  vreq.set_audience("db");
  vreq.set_svid(resp.svids(0).svid());
  api::ValidateJWTSVIDResponse vresp;
  st = stub_->ValidateJWTSVID(Ctx().get(), vreq, &vresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(vresp.spiffe_id(), "spiffe://example.org/agent/x");
  EXPECT_EQ(vresp.claims().fields().at("writ_task").string_value(), "task-9");
  EXPECT_EQ(vresp.claims().fields().at("act").struct_value().fields().at("sub").string_value(),
            "user:alice@x");

  vreq.set_audience("other");
  st = stub_->ValidateJWTSVID(Ctx().get(), vreq, &vresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(WorkloadApiTest, MissingHeaderIsInvalidArgument) {
  api::JWTSVIDRequest req;
  req.add_audience("db");
  api::JWTSVIDResponse resp;
  auto st = stub_->FetchJWTSVID(Ctx(false).get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp.svids_size(), 0);
}

TEST_F(WorkloadApiTest, NonTaskIsPermissionDenied) {
  is_task_ = false;
  api::JWTSVIDRequest req;
  req.add_audience("db");
  api::JWTSVIDResponse resp;
  auto st = stub_->FetchJWTSVID(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_GE(lookups_.load(), 1);
  api::ValidateJWTSVIDRequest vreq;
  vreq.set_audience("db");
  vreq.set_svid("x.y.z");
  api::ValidateJWTSVIDResponse vresp;
  EXPECT_EQ(stub_->ValidateJWTSVID(Ctx().get(), vreq, &vresp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(WorkloadApiTest, OtherIdentityRefusedAndBadAudienceInvalid) {
  api::JWTSVIDRequest req;
  req.add_audience("db");
  req.set_spiffe_id("spiffe://example.org/agent/someone-else");
  api::JWTSVIDResponse resp;
  EXPECT_EQ(stub_->FetchJWTSVID(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  req.set_spiffe_id("spiffe://example.org/agent/x");  // its own: fine
  EXPECT_TRUE(stub_->FetchJWTSVID(Ctx().get(), req, &resp).ok());
  req.clear_audience();
  auto st = stub_->FetchJWTSVID(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("audience"), std::string::npos);
}

TEST_F(WorkloadApiTest, UnknownAudienceFormatsAreInvalidArgumentNamingTheEntry) {
  struct Case {
    std::vector<std::string> aud;
    const char* want;
  } cases[] = {
      {{"db", "has space"}, "audience[1]"},
      {{std::string(257, 'a')}, "audience[0]: 257 bytes"},
      {{"nul\x01"}, "audience[0]"},
      {std::vector<std::string>(9, "a"), "at most 8"},
  };
  for (const auto& c : cases) {
    api::JWTSVIDRequest req;
    for (const auto& a : c.aud) req.add_audience(a);
    api::JWTSVIDResponse resp;
    auto st = stub_->FetchJWTSVID(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.want;
    EXPECT_NE(st.error_message().find(c.want), std::string::npos)
        << st.error_message() << " want " << c.want;
    EXPECT_EQ(resp.svids_size(), 0);
  }
  EXPECT_TRUE(issued_.empty());
}

TEST_F(WorkloadApiTest, OversizedRequestIsRefusedAndTheServerKeepsServing) {
  api::JWTSVIDRequest big;
  big.add_audience(std::string(100 * 1024, 'a'));  // over the 64 KiB request limit
  api::JWTSVIDResponse resp;
  auto st = stub_->FetchJWTSVID(Ctx().get(), big, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  api::ValidateJWTSVIDRequest vbig;
  vbig.set_audience("db");
  vbig.set_svid(std::string(1 << 20, 'x'));
  api::ValidateJWTSVIDResponse vresp;
  EXPECT_EQ(stub_->ValidateJWTSVID(Ctx().get(), vbig, &vresp).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(lookups_.load(), 0);  // refused before attestation or any handler
  api::JWTSVIDRequest ok;
  ok.add_audience("db");
  EXPECT_TRUE(stub_->FetchJWTSVID(Ctx().get(), ok, &resp).ok());
}

TEST_F(WorkloadApiTest, PeerThatExitsMidRequestGetsNothingAndServerKeepsServing) {
#ifndef WRIT_BIN
  GTEST_SKIP() << "WRIT_BIN not defined";
#else
  // A real client process (`writ svid`) that is killed and reaped while the daemon is attesting it.
  std::atomic<pid_t> child{0};
  std::atomic<bool> killed{false};
  during_lookup_ = [&](pid_t pid) {
    if (pid != child.load()) return;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);  // reaped: its /proc entry is gone (or soon belongs to someone else)
    killed = true;
  };
  pid_t p = fork();
  if (p == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    std::string sock = dir_ + "/workload.sock";
    execl(WRIT_BIN, "writ", "svid", "--audience", "db", "--workload-socket", sock.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  child = p;
  for (int i = 0; i < 500 && !killed.load(); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(killed.load()) << "the client never reached the lookup";
  EXPECT_TRUE(issued_.empty()) << "an SVID was minted for a process that had exited";
  during_lookup_ = nullptr;
  api::JWTSVIDRequest req;
  req.add_audience("db");
  api::JWTSVIDResponse resp;
  EXPECT_TRUE(stub_->FetchJWTSVID(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(issued_.size(), 1u);
#endif
}

TEST_F(WorkloadApiTest, RevokedTaskIsDenied) {
  ASSERT_TRUE(issuer_->Revoke("task-9", "violation").ok());
  api::JWTSVIDRequest req;
  req.add_audience("db");
  api::JWTSVIDResponse resp;
  EXPECT_EQ(stub_->FetchJWTSVID(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(WorkloadApiTest, BundlesStreamSendsJwksAndUpdatesOnRotation) {
  auto ctx = Ctx();
  auto reader = stub_->FetchJWTBundles(ctx.get(), api::JWTBundlesRequest());
  api::JWTBundlesResponse b;
  ASSERT_TRUE(reader->Read(&b));
  auto jwks = nlohmann::json::parse(b.bundles().at("example.org"));
  EXPECT_EQ(jwks["keys"].size(), 1u);
  ASSERT_TRUE(keys_->Rotate().ok());
  ASSERT_TRUE(reader->Read(&b));
  EXPECT_EQ(nlohmann::json::parse(b.bundles().at("example.org"))["keys"].size(), 2u);
  ctx->TryCancel();
}

// FetchJWTBundles holds a thread per stream: a task gets max_streams_per_task of them, all tasks
// together max_streams_total; beyond, RESOURCE_EXHAUSTED naming the cap, counted, and the server
// keeps serving SVIDs to everyone. A stream's place is given back when its client cancels.
class WorkloadApiCapTest : public WorkloadApiTest {
 protected:
  WorkloadApiCapTest() {
    max_streams_per_task_ = 2;
    max_streams_total_ = 3;
  }
  struct Stream {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<api::JWTBundlesResponse>> reader;
  };
  // Opens a stream and waits for its first message (OK) or its end (the status).
  grpc::Status Open(std::vector<Stream>* open) {
    Stream s{Ctx(), nullptr};
    s.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    s.reader = stub_->FetchJWTBundles(s.ctx.get(), api::JWTBundlesRequest());
    api::JWTBundlesResponse b;
    if (s.reader->Read(&b)) {
      open->push_back(std::move(s));
      return grpc::Status::OK;
    }
    return s.reader->Finish();
  }
  bool SvidWorks() {
    api::JWTSVIDRequest req;
    req.add_audience("db");
    api::JWTSVIDResponse resp;
    return stub_->FetchJWTSVID(Ctx().get(), req, &resp).ok() && resp.svids_size() == 1;
  }
  void WaitForOpen(int64_t n) {
    for (int i = 0; i < 100 && server_->stats().streams_open != n; ++i)
      absl::SleepFor(absl::Milliseconds(20));
    EXPECT_EQ(server_->stats().streams_open, n);
  }
};

TEST_F(WorkloadApiCapTest, StreamsAreCappedPerTaskAndInTotalAndRefusalsCounted) {
  std::vector<Stream> a, b;
  ASSERT_TRUE(Open(&a).ok());
  ASSERT_TRUE(Open(&a).ok());
  grpc::Status st = Open(&a);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(),
            "task task-9 already has 2 FetchJWTBundles streams open (the limit per task)");
  EXPECT_TRUE(SvidWorks());  // the capped task still gets SVIDs
  task_b_ = true;
  ASSERT_TRUE(Open(&b).ok());
  st = Open(&b);  // task-b has one, but all tasks together have 3
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(), "3 FetchJWTBundles streams are open (the limit for all tasks)");
  EXPECT_TRUE(SvidWorks());
  WorkloadApiStats s = server_->stats();
  EXPECT_EQ(s.streams_open, 3);
  EXPECT_EQ(s.streams_refused, 2u);
  // task-9 cancels one: the place is free again (after at most one poll period).
  a[0].ctx->TryCancel();
  WaitForOpen(2);
  EXPECT_TRUE(Open(&b).ok());
  for (auto* l : {&a, &b}) {
    for (auto& x : *l) x.ctx->TryCancel();
  }
  WaitForOpen(0);
  EXPECT_EQ(server_->stats().streams_refused, 2u);
}

// A flood of streams from one task, beyond every cap and beyond the thread bound: each gets an
// answer, the server is still serving SVIDs, and every refusal but gRPC's own is counted.
TEST_F(WorkloadApiCapTest, FloodOfStreamsLeavesTheServerServing) {
  std::vector<Stream> open;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReader<api::JWTBundlesResponse>>> readers;
  constexpr int kFlood = 200;
  for (int i = 0; i < kFlood; ++i) {
    ctxs.push_back(Ctx());
    readers.push_back(stub_->FetchJWTBundles(ctxs.back().get(), api::JWTBundlesRequest()));
  }
  int ok = 0, exhausted = 0;
  for (int i = 0; i < kFlood; ++i) {
    api::JWTBundlesResponse r;
    if (readers[i]->Read(&r)) {
      ok++;
      continue;
    }
    exhausted += readers[i]->Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(exhausted, kFlood - 2);
  EXPECT_TRUE(SvidWorks());
  const WorkloadApiStats s = server_->stats();
  EXPECT_EQ(s.streams_open, 2);
  EXPECT_GE(s.streams_refused, 1u);
  EXPECT_LE(s.streams_refused, static_cast<uint64_t>(kFlood - 2));
  for (auto& c : ctxs) c->TryCancel();
  WaitForOpen(0);
}

// The gRPC threads are bounded (ResourceQuota): calls held inside the server (here: a lookup that
// takes 300 ms) never run on more threads than max_threads, whatever a client sends at once; the
// calls beyond wait or get RESOURCE_EXHAUSTED from gRPC, and the server serves again afterwards.
class WorkloadApiThreadsTest : public WorkloadApiTest {
 protected:
  void SetUp() override {
    max_threads_ = 6;
    max_streams_per_task_ = 1;
    max_streams_total_ = 2;
    WorkloadApiTest::SetUp();
  }
};

TEST_F(WorkloadApiThreadsTest, ConcurrentCallsNeverExceedTheThreadBound) {
  std::atomic<int> in_flight{0}, most{0};
  during_lookup_ = [&](pid_t) {
    int now = ++in_flight;
    for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {
    }
    absl::SleepFor(absl::Milliseconds(300));
    --in_flight;
  };
  constexpr int kCalls = 40;
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&] {
      api::JWTSVIDRequest req;
      req.add_audience("db");
      api::JWTSVIDResponse resp;
      auto ctx = Ctx();
      ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      grpc::Status st = stub_->FetchJWTSVID(ctx.get(), req, &resp);
      (st.ok()                                                   ? ok
       : st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ? exhausted
                                                                 : other)++;
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_GE(most.load(), 2);
  EXPECT_LE(most.load(), 6);  // pollers count against the quota too
  EXPECT_EQ(ok + exhausted, kCalls) << other << " calls ended otherwise";
  EXPECT_GT(ok.load(), 0);
  printf("%d calls at once, at most %d in the server together: %d served, %d refused by gRPC\n",
         kCalls, most.load(), ok.load(), exhausted.load());
  during_lookup_ = nullptr;
  api::JWTSVIDRequest req;
  req.add_audience("db");
  api::JWTSVIDResponse resp;
  EXPECT_TRUE(stub_->FetchJWTSVID(Ctx().get(), req, &resp).ok());
}

TEST(WorkloadApiOptionsTest, CapsMustLeaveRoom) {
  WorkloadApiOptions o;
  o.socket_path = "/tmp/unused.sock";
  o.trust_domain = "example.org";
  o.lookup = [](pid_t, uint64_t, const std::string&) { return std::optional<TaskClaims>(); };
  o.max_streams_per_task = 0;
  EXPECT_THAT(std::string(WorkloadApiServer::Start(o, nullptr, nullptr).status().message()),
              ::testing::HasSubstr("max_streams_per_task (0) must be at least 1"));
  o.max_streams_per_task = 8;
  o.max_streams_total = 4;
  EXPECT_FALSE(WorkloadApiServer::Start(o, nullptr, nullptr).ok());
  o.max_streams_total = 8;
  o.max_threads = 8;
  EXPECT_THAT(std::string(WorkloadApiServer::Start(o, nullptr, nullptr).status().message()),
              ::testing::HasSubstr("leaves no thread for unary calls"));
}

TEST(ProcParse, StartTimeWithHostileComm) {
  char tmpl[] = "/tmp/writ-proc-XXXXXX";
  std::string root = mkdtemp(tmpl);
  std::filesystem::create_directories(root + "/42");
  std::ofstream(root + "/42/stat")
      << "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
         "987654 1000 200 18446744073709551615\n";
  std::ofstream(root + "/42/cgroup") << "12:memory:/x\n0::/writ/t-1\n";
  EXPECT_EQ(*ReadProcStartTime(42, root), 987654u);
  EXPECT_EQ(*ReadCgroupV2Path(42, root), "/writ/t-1");
  std::ofstream(root + "/42/stat") << "42 (x) S 1\n";
  auto bad = ReadProcStartTime(42, root);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("field 22"), std::string::npos);
  EXPECT_EQ(ReadProcStartTime(43, root).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace writ::creds
