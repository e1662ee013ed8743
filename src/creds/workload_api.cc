#include "creds/workload_api.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "creds/log.h"
#include "writ/v1/workload.grpc.pb.h"

namespace writ::creds {
namespace {

namespace api = ::SpiffeWorkloadAPI;

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

grpc::Status CheckHeader(grpc::ServerContext* ctx) {
  auto& md = ctx->client_metadata();
  auto it = md.find("workload.spiffe.io");
  if (it == md.end() || std::string(it->second.data(), it->second.size()) != "true") {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "security header missing from request");
  }
  return grpc::Status::OK;
}

class Service final : public api::SpiffeWorkloadAPI::Service {
 public:
  Service(WorkloadApiServer* owner, const WorkloadApiOptions* options, Issuer* issuer,
          KeyStore* keys)
      : owner_(owner), options_(options), issuer_(issuer), keys_(keys) {}

  grpc::Status FetchJWTSVID(grpc::ServerContext* ctx, const api::JWTSVIDRequest* req,
                            api::JWTSVIDResponse* resp) override {
    if (auto s = CheckHeader(ctx); !s.ok()) return s;
    auto task = owner_->Attest(ctx->peer());
    if (!task.ok()) return ToGrpc(task.status());
    if (!req->spiffe_id().empty() && req->spiffe_id() != task->spiffe_id) {
      // A task can only ever speak for its own identity.
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          absl::StrCat("caller's identity is ", task->spiffe_id, ", not ", req->spiffe_id()));
    }
    std::vector<std::string> aud(req->audience().begin(), req->audience().end());
    auto svid = issuer_->Mint(*task, std::move(aud));
    if (!svid.ok()) {
      if (svid.status().code() == absl::StatusCode::kFailedPrecondition) {
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            std::string(svid.status().message()));
      }
      return ToGrpc(svid.status());
    }
    auto* out = resp->add_svids();
    out->set_spiffe_id(svid->spiffe_id);
    out->set_svid(svid->token);
    out->set_hint(task->task_id);
    if (options_->on_issued) options_->on_issued(*task, *svid);
    return grpc::Status::OK;
  }

  grpc::Status FetchJWTBundles(grpc::ServerContext* ctx, const api::JWTBundlesRequest*,
                               grpc::ServerWriter<api::JWTBundlesResponse>* writer) override {
    if (auto s = CheckHeader(ctx); !s.ok()) return s;
    auto t = owner_->Attest(ctx->peer());
    if (!t.ok()) return ToGrpc(t.status());
    // This call holds a thread until the client cancels: capped per task and in total.
    auto slot = owner_->AcquireStream(t->task_id);
    if (!slot.ok()) return ToGrpc(slot.status());
    uint64_t sent_generation = ~0ull;
    // Bounded by the client (cancel) and by server shutdown; each wait is one poll period.
    while (!ctx->IsCancelled() && !owner_->stopping()) {
      uint64_t gen = keys_->generation();
      if (gen != sent_generation) {
        api::JWTBundlesResponse resp;
        (*resp.mutable_bundles())[options_->trust_domain] = keys_->JwksJson();
        if (!writer->Write(resp)) break;
        sent_generation = gen;
      }
      absl::SleepFor(options_->bundle_poll);
    }
    return grpc::Status::OK;
  }

  grpc::Status ValidateJWTSVID(grpc::ServerContext* ctx, const api::ValidateJWTSVIDRequest* req,
                               api::ValidateJWTSVIDResponse* resp) override {
    if (auto s = CheckHeader(ctx); !s.ok()) return s;
    if (auto t = owner_->Attest(ctx->peer()); !t.ok()) return ToGrpc(t.status());
    if (req->audience().empty())
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "audience must be specified");
    if (req->svid().empty())
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "svid must be specified");
    auto claims = issuer_->Validate(req->svid(), req->audience());
    if (!claims.ok())
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string(claims.status().message()));
    resp->set_spiffe_id(claims->value("sub", ""));
    auto st = google::protobuf::util::JsonStringToMessage(claims->dump(), resp->mutable_claims());
    if (!st.ok())
      return grpc::Status(grpc::StatusCode::INTERNAL, "claims do not convert to Struct");
    return grpc::Status::OK;
  }

 private:
  WorkloadApiServer* const owner_;
  const WorkloadApiOptions* const options_;
  Issuer* const issuer_;
  KeyStore* const keys_;
};

}  // namespace

absl::StatusOr<uint64_t> ReadProcStartTime(pid_t pid, const std::string& proc_root) {
  std::string path = absl::StrCat(proc_root, "/", pid, "/stat");
  auto text = ReadFile(path);
  if (!text.ok())
    return absl::NotFoundError(absl::StrCat("process ", pid, " is gone (", path, ")"));
  // comm (field 2) may contain spaces and ')': fields resume after the last ')'.
  size_t rp = text->rfind(')');
  if (rp == std::string::npos)
    return absl::DataLossError(absl::StrCat(path, ": no ')' after comm"));
  std::vector<std::string> fields = absl::StrSplit(text->substr(rp + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); starttime is field 22.
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) {
    return absl::DataLossError(
        absl::StrCat(path, ": field 22 (starttime) missing or not a number"));
  }
  return start;
}

absl::StatusOr<std::string> ReadCgroupV2Path(pid_t pid, const std::string& proc_root) {
  std::string path = absl::StrCat(proc_root, "/", pid, "/cgroup");
  auto text = ReadFile(path);
  if (!text.ok())
    return absl::NotFoundError(absl::StrCat("process ", pid, " is gone (", path, ")"));
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::StartsWith(line, "0::")) return std::string(line.substr(3));
  }
  return absl::NotFoundError(absl::StrCat(path, ": no cgroup2 (\"0::\") line"));
}

absl::StatusOr<std::unique_ptr<WorkloadApiServer>> WorkloadApiServer::Start(
    WorkloadApiOptions options, Issuer* issuer, KeyStore* keys) {
  if (!options.lookup) return absl::InvalidArgumentError("workload api: no task lookup callback");
  if (options.trust_domain.empty())
    return absl::InvalidArgumentError("workload api: trust_domain is empty");
  sockaddr_un addr{};
  if (options.socket_path.empty() || options.socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("workload api: socket path '", options.socket_path,
                     "' is empty or longer than ", sizeof(addr.sun_path) - 1));
  }
  if (options.max_streams_per_task < 1 ||
      options.max_streams_total < options.max_streams_per_task) {
    return absl::InvalidArgumentError(absl::StrCat(
        "workload api: max_streams_per_task (", options.max_streams_per_task,
        ") must be at least 1 and at most max_streams_total (", options.max_streams_total, ")"));
  }
  if (options.max_threads == 0) options.max_threads = options.max_streams_total + 16;
  if (options.max_threads <= options.max_streams_total) {
    return absl::InvalidArgumentError(
        absl::StrCat("workload api: max_threads (", options.max_threads,
                     ") leaves no thread for unary calls beside max_streams_total (",
                     options.max_streams_total, ")"));
  }
  std::unique_ptr<WorkloadApiServer> s(new WorkloadApiServer(std::move(options)));
  s->service_ = std::make_unique<Service>(s.get(), &s->options_, issuer, keys);
  grpc::ServerBuilder builder;
  builder.RegisterService(s->service_.get());
  builder.SetMaxReceiveMessageSize(s->options_.max_request_bytes);
  // A sync server otherwise starts a thread per concurrent call, without bound.
  grpc::ResourceQuota quota("writ-workload-api");
  quota.SetMaxThreads(s->options_.max_threads);
  builder.SetResourceQuota(quota);
  s->server_ =
      builder.BuildAndStart();  // no listening ports: every connection comes from our accept loop
  if (!s->server_) return absl::InternalError("workload api: grpc server did not start");

  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, s->options_.socket_path.c_str(), sizeof(addr.sun_path) - 1);
  ::unlink(addr.sun_path);  // a stale socket from a previous run
  s->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->listen_fd_ < 0 ||
      ::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(s->listen_fd_, 64) != 0) {
    return absl::UnavailableError(
        absl::StrCat("workload api: listen on ", s->options_.socket_path, ": ", strerror(errno)));
  }
  // Anyone may connect: attestation, not file permissions, decides what a caller gets.
  ::chmod(addr.sun_path, 0666);
  if (::pipe2(s->wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0)
    return absl::InternalError("workload api: pipe");
  s->acceptor_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  Log()->info("workload api: serving on {}", s->options_.socket_path);
  return s;
}

WorkloadApiServer::WorkloadApiServer(WorkloadApiOptions o) : options_(std::move(o)) {}

WorkloadApiServer::~WorkloadApiServer() { Stop(); }

void WorkloadApiServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (wake_pipe_[1] >= 0) (void)!::write(wake_pipe_[1], "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(options_.socket_path.c_str());
  }
  for (int& fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  listen_fd_ = -1;
}

void WorkloadApiServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (::poll(p, 2, 1000) <= 0) continue;
    if (p[1].revents) break;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    ucred cred{};
    socklen_t len = sizeof(cred);
    Attestation a;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) {
      auto start = ReadProcStartTime(cred.pid, options_.proc_root);
      if (start.ok()) {
        a.pid = cred.pid;
        a.start_time = *start;
      }
    }
    // Unattested connections are still served so that the caller gets a clear PermissionDenied.
    {
      absl::MutexLock l(&mu_);
      conns_[fd] = a;
    }
    grpc::AddInsecureChannelFromFd(server_.get(), fd);
  }
}

absl::StatusOr<std::unique_ptr<WorkloadApiServer::StreamSlot>> WorkloadApiServer::AcquireStream(
    const std::string& task_id) {
  absl::MutexLock l(&streams_mu_);
  int& mine = streams_[task_id];
  const bool task_full = mine >= options_.max_streams_per_task;
  const bool all_full = streams_open_ >= options_.max_streams_total;
  if (!task_full && !all_full) {
    ++mine;
    ++streams_open_;
    return std::make_unique<StreamSlot>(this, task_id);
  }
  if (mine == 0) streams_.erase(task_id);
  const uint64_t refused = streams_refused_.fetch_add(1, std::memory_order_relaxed) + 1;
  const std::string why =
      task_full ? absl::StrCat("task ", task_id, " already has ", options_.max_streams_per_task,
                               " FetchJWTBundles streams open (the limit per task)")
                : absl::StrCat(options_.max_streams_total,
                               " FetchJWTBundles streams are open (the limit for all tasks)");
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t last = last_refusal_log_ns_.load(std::memory_order_relaxed);
  if (now - last >= absl::ToInt64Nanoseconds(absl::Seconds(10)) &&
      last_refusal_log_ns_.compare_exchange_strong(last, now)) {
    Log()->warn("workload api: stream refused: {} ({} refused since start)", why, refused);
  }
  return absl::ResourceExhaustedError(why);
}

void WorkloadApiServer::ReleaseStream(const std::string& task_id) {
  absl::MutexLock l(&streams_mu_);
  auto it = streams_.find(task_id);
  if (it != streams_.end() && --it->second <= 0) streams_.erase(it);
  --streams_open_;
}

WorkloadApiStats WorkloadApiServer::stats() const {
  WorkloadApiStats st;
  {
    absl::MutexLock l(&streams_mu_);
    st.streams_open = streams_open_;
  }
  st.streams_refused = streams_refused_.load(std::memory_order_relaxed);
  return st;
}

absl::StatusOr<TaskClaims> WorkloadApiServer::Attest(const std::string& peer) const {
  int fd = -1;
  if (!absl::StartsWith(peer, "fd:") || !absl::SimpleAtoi(absl::string_view(peer).substr(3), &fd)) {
    return absl::PermissionDeniedError(absl::StrCat("unattestable peer '", peer, "'"));
  }
  Attestation a;
  {
    absl::MutexLock l(&mu_);
    auto it = conns_.find(fd);
    if (it != conns_.end()) a = it->second;
  }
  if (a.pid <= 0) return absl::PermissionDeniedError("caller could not be attested");
  auto start = ReadProcStartTime(a.pid, options_.proc_root);
  if (!start.ok() || *start != a.start_time) {
    return absl::PermissionDeniedError("the connecting process is gone");
  }
  auto cgroup = ReadCgroupV2Path(a.pid, options_.proc_root);
  if (!cgroup.ok()) return absl::PermissionDeniedError("caller's cgroup is unknown");
  std::optional<TaskClaims> task = options_.lookup(a.pid, a.start_time, *cgroup);
  // The pid may have exited and been reused while we looked: only a still-matching start time
  // counts.
  auto again = ReadProcStartTime(a.pid, options_.proc_root);
  if (!again.ok() || *again != a.start_time)
    return absl::PermissionDeniedError("the connecting process is gone");
  if (!task.has_value()) {
    Log()->info("workload api: pid {} (cgroup {}) is not a task: denied", a.pid, *cgroup);
    return absl::PermissionDeniedError("caller is not a writ task");
  }
  return *std::move(task);
}

}  // namespace writ::creds
