#include "dns/stub_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace writ::dns {
namespace {

constexpr absl::Duration kTcpDeadline = absl::Seconds(2);

socklen_t Len(const sockaddr_storage& s) {
  return s.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// Writes all of buf to a non-blocking socket before the deadline.
bool WriteAll(int fd, const uint8_t* buf, size_t n, absl::Time deadline) {
  size_t done = 0;
  while (done < n) {
    int64_t ms = absl::ToInt64Milliseconds(deadline - StubNow());
    if (ms <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    int r = poll(&p, 1, static_cast<int>(ms));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    ssize_t k = send(fd, buf + done, n - done, MSG_NOSIGNAL);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (k <= 0) return false;
    done += k;
  }
  return true;
}

}  // namespace

absl::Time StubNow() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return absl::FromUnixNanos(static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
}

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
  // Every task's queries share the UDP socket's receive buffer: a task that floods it makes the
  // kernel drop the others' datagrams before the loop reads them (they retry). A large buffer
  // (root may exceed rmem_max) keeps a burst in the queue, where the per-task bound applies.
  int rcvbuf = 4 << 20;
  if (setsockopt(udp_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    setsockopt(udp_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
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
    if (setsockopt(udp6_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
      setsockopt(udp6_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    if (bind(tcp6_, reinterpret_cast<const sockaddr*>(&*s6), Len(*s6)) != 0 ||
        listen(tcp6_, 64) != 0 ||
        bind(udp6_, reinterpret_cast<const sockaddr*>(&*s6), Len(*s6)) != 0) {
      return absl::UnavailableError(
          absl::StrCat("dns stub: bind [", addr6, "]:", port_, ": ", strerror(errno)));
    }
  }
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { Worker(); });
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
  {
    absl::MutexLock l(&q_mu_);
    q_stop_ = true;
  }
  for (std::thread& w : workers_) w.join();
  workers_.clear();
  {
    absl::MutexLock l(&q_mu_);
    for (Job& j : queue_) {
      if (j.tcp >= 0) close(j.tcp);
    }
    queue_.clear();
  }
  for (Conn& c : conns_) close(c.fd);
  conns_.clear();
  for (int* fd : {&udp_, &tcp_, &udp6_, &tcp6_, &wake_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void StubServer::AddTask(const std::string& task, NamePolicy policy) {
  auto e = std::make_shared<Entry>();
  {
    absl::MutexLock el(&e->mu);
    e->resolver = std::make_unique<TaskResolver>(config_, std::move(policy), upstream_.get());
  }
  std::shared_ptr<Entry> old;
  {
    absl::MutexLock l(&mu_);
    old = std::exchange(tasks_[task], e);
  }
  if (old) DropEntry(task, old, false);  // a task added again (its policy reloaded): no pins
}

void StubServer::RemoveTask(const std::string& task) {
  std::shared_ptr<Entry> e;
  {
    absl::MutexLock l(&mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return;
    e = std::move(it->second);
    tasks_.erase(it);
  }
  DropEntry(task, e, false);
}

void StubServer::DropEntry(const std::string& task, const std::shared_ptr<Entry>& e, bool wait) {
  e->removed.store(true);
  std::vector<Pin> gone;
  if (wait) {
    e->mu.Lock();
  } else if (!e->mu.TryLock()) {
    return;  // a query is in service: Answer drops the pins when it is done (it sees `removed`)
  }
  gone = e->resolver->pins().Expire(absl::InfiniteFuture());
  e->pins.store(0);
  e->mu.Unlock();
  if (!gone.empty() && cb_.on_expired) cb_.on_expired(task, gone);
}

void StubServer::RestorePins(const std::string& task, const std::vector<Pin>& pins) {
  std::shared_ptr<Entry> e;
  {
    absl::MutexLock l(&mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return;
    e = it->second;
  }
  absl::MutexLock el(&e->mu);
  for (const Pin& p : pins) e->resolver->pins().Add(p);
  e->pins.store(e->resolver->pins().size());
}

size_t StubServer::PinCount(const std::string& task) {
  std::shared_ptr<Entry> e;
  {
    absl::MutexLock l(&mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return 0;
    e = it->second;
  }
  return e->pins.load();  // never waits for a query in service (its upstream may be slow)
}

StubCounters StubServer::counters() {
  absl::MutexLock l(&mu_);
  return counters_;
}

std::vector<uint8_t> StubServer::Answer(const Job& job, size_t max) {
  std::shared_ptr<Entry> e;
  {
    absl::MutexLock l(&mu_);
    ++counters_.queries;
    auto it = job.task ? tasks_.find(*job.task) : tasks_.end();
    if (it == tasks_.end()) {
      ++counters_.refused;
    } else {
      e = it->second;
    }
  }
  if (!e) {
    auto m = Parse(job.query);
    if (!m.ok()) return {};
    return BuildResponse(*m, kRefused, {}, max);
  }
  Outcome o;
  {
    absl::MutexLock el(&e->mu);  // one query of a task at a time; other tasks go on
    o = e->resolver->Handle(job.query, max, StubNow());
    e->pins.store(e->resolver->pins().size());
    if (!o.expired.empty() && cb_.on_expired) cb_.on_expired(*job.task, o.expired);
    if (cb_.on_query) cb_.on_query(*job.task, o, job.src);
  }
  // The task ended (or was added again) while this query was in service: its pins, these
  // included, go now. RemoveTask set `removed` before it tried the lock, so either it got the lock
  // after this query and dropped them, or this sees the flag.
  if (e->removed.load()) DropEntry(*job.task, e, true);
  {
    absl::MutexLock l(&mu_);
    if (o.event.verdict == "refused") ++counters_.refused;
    if (o.event.verdict == "malformed") ++counters_.malformed;
    if (o.event.verdict == "failed") ++counters_.failed;
  }
  return std::move(o.reply);
}

void StubServer::Enqueue(Job job) {
  // Attributed now, on the loop thread: the kernel's record of who sent from this peer address is
  // freshest before another socket reuses the port.
  job.task = cb_.task_of ? cb_.task_of(job.src) : std::nullopt;
  const std::string key = job.task.value_or("");
  {
    absl::MutexLock l(&q_mu_);
    size_t& n = in_flight_[key];
    if (queue_.size() < kQueueMax && n < kPerTaskInFlight) {
      ++n;
      queue_.push_back(std::move(job));
      return;
    }
    if (n == 0) in_flight_.erase(key);
  }
  if (job.tcp >= 0) close(job.tcp);
  absl::MutexLock l(&mu_);
  ++counters_.dropped;
}

std::deque<StubServer::Job>::iterator StubServer::NextJob() {
  return std::find_if(queue_.begin(), queue_.end(),
                      [this](const Job& j) { return !busy_.contains(j.task.value_or("")); });
}

bool StubServer::QueueReady() const {
  return q_stop_ || const_cast<StubServer*>(this)->NextJob() != queue_.end();
}

void StubServer::Worker() {
  for (;;) {
    Job job;
    {
      absl::MutexLock l(&q_mu_);
      q_mu_.Await(absl::Condition(this, &StubServer::QueueReady));
      if (q_stop_) return;  // Stop closes what is still queued
      auto it = NextJob();
      job = std::move(*it);
      queue_.erase(it);
      busy_.insert(job.task.value_or(""));
    }
    if (job.tcp >= 0) {
      auto reply = Answer(job, kMaxMessage);
      if (!reply.empty()) {
        const absl::Time deadline = StubNow() + kTcpDeadline;
        uint8_t out_len[2] = {static_cast<uint8_t>(reply.size() >> 8),
                              static_cast<uint8_t>(reply.size())};
        if (WriteAll(job.tcp, out_len, 2, deadline)) {
          WriteAll(job.tcp, reply.data(), reply.size(), deadline);
        }
      }
      close(job.tcp);
    } else {
      auto reply = Answer(job, kMaxUdpReply);
      if (!reply.empty()) {
        sendto(job.udp, reply.data(), reply.size(), 0,
               reinterpret_cast<const sockaddr*>(&job.src.peer), Len(job.src.peer));
      }
    }
    absl::MutexLock l(&q_mu_);
    const std::string key = job.task.value_or("");
    busy_.erase(key);
    if (auto it = in_flight_.find(key); it != in_flight_.end() && --it->second == 0) {
      in_flight_.erase(it);
    }
  }
}

void StubServer::ReadUdp(int sock) {
  std::vector<uint8_t> buf(kMaxMessage);
  for (int i = 0; i < 64; ++i) {  // a burst, then the connections and expiry get their turn
    Job job;
    job.src.proto = IPPROTO_UDP;
    job.udp = sock;
    socklen_t pl = sizeof(job.src.peer);
    ssize_t n =
        recvfrom(sock, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&job.src.peer), &pl);
    if (n < 0) return;
    job.query.assign(buf.begin(), buf.begin() + n);
    Enqueue(std::move(job));
  }
}

void StubServer::Accept(int sock) {
  for (int i = 0; i < 16; ++i) {
    Conn c;
    c.src.proto = IPPROTO_TCP;
    socklen_t pl = sizeof(c.src.peer);
    c.fd =
        accept4(sock, reinterpret_cast<sockaddr*>(&c.src.peer), &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c.fd < 0) return;
    c.deadline = StubNow() + kTcpDeadline;
    if (conns_.size() >= kMaxConnections) {  // the oldest gives way: it has had the longest
      close(conns_.front().fd);
      conns_.erase(conns_.begin());
      absl::MutexLock l(&mu_);
      ++counters_.tcp_timeouts;
    }
    conns_.push_back(std::move(c));
  }
}

bool StubServer::ReadConn(Conn& c) {
  for (;;) {
    size_t want = 2;
    if (c.buf.size() >= 2) want = 2 + (c.buf[0] << 8 | c.buf[1]);
    if (c.buf.size() == want && want > 2) {
      Job job;
      job.src = c.src;
      job.tcp = c.fd;
      job.query.assign(c.buf.begin() + 2, c.buf.end());
      c.fd = -1;  // the job owns it now
      Enqueue(std::move(job));
      return false;
    }
    if (want == 2 && c.buf.size() == 2) {  // a zero-length query: nothing to answer
      close(c.fd);
      c.fd = -1;
      return false;
    }
    uint8_t tmp[4096];
    const size_t room = std::min(sizeof(tmp), want - c.buf.size());
    ssize_t k = recv(c.fd, tmp, room, 0);
    if (k < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (k <= 0) {
      close(c.fd);
      c.fd = -1;
      return false;
    }
    c.buf.insert(c.buf.end(), tmp, tmp + k);
  }
}

void StubServer::ExpirePins() {
  std::vector<std::pair<std::string, std::shared_ptr<Entry>>> all;
  {
    absl::MutexLock l(&mu_);
    all.assign(tasks_.begin(), tasks_.end());
  }
  const absl::Time now = StubNow();
  for (auto& [task, e] : all) {
    std::vector<Pin> gone;
    // A task with a query in service is skipped until the next tick: the loop thread must never
    // wait for an upstream (it would stop reading every task's queries), and the kernel refuses an
    // expired pin by its own clock whatever userspace has not deleted yet.
    if (!e->mu.TryLock()) continue;
    gone = e->resolver->pins().Expire(now);
    e->pins.store(e->resolver->pins().size());
    e->mu.Unlock();
    if (!gone.empty() && cb_.on_expired) cb_.on_expired(task, gone);
  }
}

void StubServer::Loop() {
  absl::Time next_expiry = StubNow();
  std::vector<pollfd> p;
  while (!stop_) {
    // An unused IPv6 pair is -1: poll ignores negative descriptors.
    p.assign({{udp_, POLLIN, 0},
              {tcp_, POLLIN, 0},
              {udp6_, POLLIN, 0},
              {tcp6_, POLLIN, 0},
              {wake_, POLLIN, 0}});
    for (const Conn& c : conns_) p.push_back({c.fd, POLLIN, 0});
    int r = poll(p.data(), p.size(), 200);
    if (r > 0) {
      if (p[0].revents & POLLIN) ReadUdp(udp_);
      if (p[1].revents & POLLIN) Accept(tcp_);
      if (p[2].revents & POLLIN) ReadUdp(udp6_);
      if (p[3].revents & POLLIN) Accept(tcp6_);
      // The connections polled are conns_' first entries (Accept appends).
      const size_t polled = p.size() - 5;
      for (size_t i = 0; i < polled && i < conns_.size(); ++i) {
        if (p[5 + i].revents & (POLLIN | POLLHUP | POLLERR)) ReadConn(conns_[i]);
      }
    }
    const absl::Time now = StubNow();
    uint64_t timeouts = 0;
    for (Conn& c : conns_) {
      if (c.fd >= 0 && now >= c.deadline) {
        close(c.fd);
        c.fd = -1;
        ++timeouts;
      }
    }
    conns_.erase(
        std::remove_if(conns_.begin(), conns_.end(), [](const Conn& c) { return c.fd < 0; }),
        conns_.end());
    if (timeouts > 0) {
      absl::MutexLock l(&mu_);
      counters_.tcp_timeouts += timeouts;
    }
    if (now >= next_expiry) {
      ExpirePins();
      next_expiry = now + absl::Seconds(1);
    }
  }
}

}  // namespace writ::dns
