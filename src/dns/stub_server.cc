#include "dns/stub_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace writ::dns {
namespace {

constexpr absl::Duration kTcpDeadline = absl::Seconds(2);

socklen_t Len(const sockaddr_storage& s) {
  return s.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

bool Io(int fd, uint8_t* buf, size_t n, bool write, absl::Time deadline) {
  size_t done = 0;
  while (done < n) {
    int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    int r = poll(&p, 1, static_cast<int>(ms));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    ssize_t k =
        write ? send(fd, buf + done, n - done, MSG_NOSIGNAL) : recv(fd, buf + done, n - done, 0);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (k <= 0) return false;
    done += k;
  }
  return true;
}

}  // namespace

StubServer::StubServer(ResolverConfig config, std::unique_ptr<Upstream> upstream, StubCallbacks cb)
    : config_(std::move(config)), upstream_(std::move(upstream)), cb_(std::move(cb)) {}

StubServer::~StubServer() { Stop(); }

absl::Status StubServer::Start(const std::string& addr, const std::string& addr6) {
  auto ss = ParseServer(addr, 53, /*any_port=*/true);
  if (!ss.ok()) return ss.status();
  udp_ = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  tcp_ = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (udp_ < 0 || tcp_ < 0 || wake_ < 0) return absl::InternalError(strerror(errno));
  int one = 1;
  setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Port 0: the TCP socket takes a free port, and UDP binds the same number.
  if (bind(tcp_, reinterpret_cast<const sockaddr*>(&*ss), Len(*ss)) != 0 || listen(tcp_, 64) != 0) {
    return absl::UnavailableError(absl::StrCat("dns stub: bind tcp ", addr, ": ", strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t bl = sizeof(bound);
  getsockname(tcp_, reinterpret_cast<sockaddr*>(&bound), &bl);
  if (bind(udp_, reinterpret_cast<const sockaddr*>(&bound), bl) != 0) {
    return absl::UnavailableError(absl::StrCat("dns stub: bind udp ", addr, ": ", strerror(errno)));
  }
  port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  if (!addr6.empty()) {
    auto s6 = ParseServer(absl::StrCat("[", addr6, "]:", port_), 53, /*any_port=*/true);
    if (!s6.ok() || s6->ss_family != AF_INET6) {
      return absl::InvalidArgumentError(absl::StrCat("dns stub: bad IPv6 address ", addr6));
    }
    udp6_ = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    tcp6_ = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp6_ < 0 || tcp6_ < 0) return absl::InternalError(strerror(errno));
    setsockopt(tcp6_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(tcp6_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    setsockopt(udp6_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(tcp6_, reinterpret_cast<const sockaddr*>(&*s6), Len(*s6)) != 0 ||
        listen(tcp6_, 64) != 0 ||
        bind(udp6_, reinterpret_cast<const sockaddr*>(&*s6), Len(*s6)) != 0) {
      return absl::UnavailableError(
          absl::StrCat("dns stub: bind [", addr6, "]:", port_, ": ", strerror(errno)));
    }
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void StubServer::Stop() {
  if (thread_.joinable()) {
    stop_ = true;
    uint64_t one = 1;
    (void)!write(wake_, &one, sizeof(one));
    thread_.join();
  }
  for (int* fd : {&udp_, &tcp_, &udp6_, &tcp6_, &wake_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void StubServer::AddTask(const std::string& task, NamePolicy policy) {
  std::vector<Pin> gone;  // a task added again (its policy reloaded) starts from no pins
  {
    absl::MutexLock l(&mu_);
    auto& slot = tasks_[task];
    if (slot) gone = slot->pins().Expire(absl::InfiniteFuture());
    slot = std::make_unique<TaskResolver>(config_, std::move(policy), upstream_.get());
  }
  if (!gone.empty() && cb_.on_expired) cb_.on_expired(task, gone);
}

void StubServer::RemoveTask(const std::string& task) {
  std::vector<Pin> gone;
  {
    absl::MutexLock l(&mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return;
    gone = it->second->pins().Expire(absl::InfiniteFuture());
    tasks_.erase(it);
  }
  if (!gone.empty() && cb_.on_expired) cb_.on_expired(task, gone);
}

size_t StubServer::PinCount(const std::string& task) {
  absl::MutexLock l(&mu_);
  auto it = tasks_.find(task);
  return it == tasks_.end() ? 0 : it->second->pins().size();
}

StubCounters StubServer::counters() {
  absl::MutexLock l(&mu_);
  return counters_;
}

std::vector<uint8_t> StubServer::Answer(const QuerySource& src, absl::Span<const uint8_t> q,
                                        size_t max) {
  std::optional<std::string> task = cb_.task_of ? cb_.task_of(src) : std::nullopt;
  Outcome o;
  {
    absl::MutexLock l(&mu_);  // held across the upstream exchange: tasks are served one at a time
    ++counters_.queries;
    auto it = task ? tasks_.find(*task) : tasks_.end();
    if (it == tasks_.end()) {
      ++counters_.refused;
      auto m = Parse(q);
      if (!m.ok()) return {};
      return BuildResponse(*m, kRefused, {}, max);
    }
    o = it->second->Handle(q, max, absl::Now());
    if (o.event.verdict == "refused") ++counters_.refused;
    if (o.event.verdict == "malformed") ++counters_.malformed;
    if (o.event.verdict == "failed") ++counters_.failed;
  }
  if (!o.expired.empty() && cb_.on_expired) cb_.on_expired(*task, o.expired);
  if (cb_.on_query) cb_.on_query(*task, o, src);
  return std::move(o.reply);
}

void StubServer::ServeUdp(int sock) {
  std::vector<uint8_t> buf(kMaxMessage);
  for (int i = 0; i < 64; ++i) {  // drain a burst, then let TCP and expiry run
    QuerySource src;
    src.proto = IPPROTO_UDP;
    socklen_t pl = sizeof(src.peer);
    ssize_t n =
        recvfrom(sock, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&src.peer), &pl);
    if (n < 0) return;
    auto reply = Answer(src, absl::MakeSpan(buf.data(), n), kMaxUdpReply);
    if (!reply.empty()) {
      sendto(sock, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&src.peer), pl);
    }
  }
}

void StubServer::ServeTcp(int sock) {
  QuerySource src;
  src.proto = IPPROTO_TCP;
  sockaddr_storage& peer = src.peer;
  socklen_t pl = sizeof(peer);
  int fd = accept4(sock, reinterpret_cast<sockaddr*>(&peer), &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  const absl::Time deadline = absl::Now() + kTcpDeadline;
  uint8_t len[2];
  if (Io(fd, len, 2, false, deadline)) {
    std::vector<uint8_t> q(len[0] << 8 | len[1]);
    if (!q.empty() && Io(fd, q.data(), q.size(), false, deadline)) {
      auto reply = Answer(src, q, kMaxMessage);
      if (!reply.empty()) {
        uint8_t out_len[2] = {static_cast<uint8_t>(reply.size() >> 8),
                              static_cast<uint8_t>(reply.size())};
        if (Io(fd, out_len, 2, true, deadline + kTcpDeadline)) {
          Io(fd, reply.data(), reply.size(), true, deadline + kTcpDeadline);
        }
      }
    }
  }
  close(fd);
}

void StubServer::Loop() {
  while (!stop_) {
    // An unused IPv6 pair is -1: poll ignores negative descriptors.
    pollfd p[5] = {{udp_, POLLIN, 0},
                   {tcp_, POLLIN, 0},
                   {udp6_, POLLIN, 0},
                   {tcp6_, POLLIN, 0},
                   {wake_, POLLIN, 0}};
    int r = poll(p, 5, 1000);
    if (r > 0) {
      if (p[0].revents & POLLIN) ServeUdp(udp_);
      if (p[1].revents & POLLIN) ServeTcp(tcp_);
      if (p[2].revents & POLLIN) ServeUdp(udp6_);
      if (p[3].revents & POLLIN) ServeTcp(tcp6_);
    }
    std::vector<std::pair<std::string, std::vector<Pin>>> expired;
    {
      absl::MutexLock l(&mu_);
      const absl::Time now = absl::Now();
      for (auto& [task, res] : tasks_) {
        auto gone = res->pins().Expire(now);
        if (!gone.empty()) expired.emplace_back(task, std::move(gone));
      }
    }
    if (cb_.on_expired) {
      for (auto& [task, gone] : expired) cb_.on_expired(task, gone);
    }
  }
}

}  // namespace writ::dns
