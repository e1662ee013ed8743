#include "dns/resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace writ::dns {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

socklen_t Len(const sockaddr_storage& s) {
  return s.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// Waits for `events` on fd until `deadline`; false on timeout or error.
bool Wait(int fd, short events, absl::Time deadline) {
  for (;;) {
    int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 60000)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

bool ReadFull(int fd, uint8_t* buf, size_t n, absl::Time deadline) {
  size_t got = 0;
  while (got < n) {
    if (!Wait(fd, POLLIN, deadline)) return false;
    ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r <= 0) {
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return false;
    }
    got += r;
  }
  return true;
}

class NetUpstream : public Upstream {
 public:
  NetUpstream(std::vector<sockaddr_storage> s, absl::Duration t)
      : servers_(std::move(s)), timeout_(t) {}

  absl::StatusOr<std::vector<uint8_t>> Exchange(absl::Span<const uint8_t> query) override {
    if (servers_.empty()) return absl::UnavailableError("no upstream resolver configured");
    absl::Status last = absl::UnavailableError("upstream unreachable");
    for (const sockaddr_storage& s : servers_) {
      auto r = Udp(s, query);
      if (r.ok() && r->size() >= 3 && ((*r)[2] & 0x02)) r = Tcp(s, query);  // TC: retry over TCP
      if (r.ok()) return r;
      last = r.status();
    }
    return last;
  }

 private:
  absl::StatusOr<std::vector<uint8_t>> Udp(const sockaddr_storage& s, absl::Span<const uint8_t> q) {
    Fd fd(socket(s.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0 || connect(fd.get(), reinterpret_cast<const sockaddr*>(&s), Len(s)) != 0 ||
        send(fd.get(), q.data(), q.size(), 0) != static_cast<ssize_t>(q.size())) {
      return absl::UnavailableError(absl::StrCat("upstream unreachable: ", strerror(errno)));
    }
    const absl::Time deadline = absl::Now() + timeout_;
    std::vector<uint8_t> buf(kMaxMessage);
    for (;;) {  // datagrams with another id (late answers, spoofing attempts) are dropped
      if (!Wait(fd.get(), POLLIN, deadline))
        return absl::DeadlineExceededError("upstream timed out");
      ssize_t n = recv(fd.get(), buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return absl::UnavailableError(absl::StrCat("upstream unreachable: ", strerror(errno)));
      }
      if (n >= 2 && buf[0] == q[0] && buf[1] == q[1]) {
        buf.resize(n);
        return buf;
      }
    }
  }

  absl::StatusOr<std::vector<uint8_t>> Tcp(const sockaddr_storage& s, absl::Span<const uint8_t> q) {
    Fd fd(socket(s.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const absl::Time deadline = absl::Now() + timeout_;
    if (fd.get() < 0) return absl::UnavailableError("socket");
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&s), Len(s)) != 0 &&
        errno != EINPROGRESS) {
      return absl::UnavailableError(
          absl::StrCat("upstream unreachable over TCP: ", strerror(errno)));
    }
    if (!Wait(fd.get(), POLLOUT, deadline))
      return absl::DeadlineExceededError("upstream TCP timed out");
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0)
      return absl::UnavailableError(absl::StrCat("upstream unreachable over TCP: ", strerror(err)));
    std::vector<uint8_t> out{static_cast<uint8_t>(q.size() >> 8), static_cast<uint8_t>(q.size())};
    out.insert(out.end(), q.begin(), q.end());
    size_t sent = 0;
    while (sent < out.size()) {
      if (!Wait(fd.get(), POLLOUT, deadline))
        return absl::DeadlineExceededError("upstream TCP timed out");
      ssize_t n = send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EINTR && errno != EAGAIN)
        return absl::UnavailableError("upstream TCP send");
      if (n > 0) sent += n;
    }
    uint8_t len[2];
    if (!ReadFull(fd.get(), len, 2, deadline))
      return absl::UnavailableError("upstream TCP answer cut");
    std::vector<uint8_t> buf(len[0] << 8 | len[1]);
    if (!ReadFull(fd.get(), buf.data(), buf.size(), deadline)) {
      return absl::UnavailableError("upstream TCP answer cut");
    }
    return buf;
  }

  std::vector<sockaddr_storage> servers_;
  absl::Duration timeout_;
};

}  // namespace

absl::StatusOr<sockaddr_storage> ParseServer(const std::string& text, uint16_t default_port,
                                             bool any_port) {
  sockaddr_storage ss{};
  std::string host = text;
  uint32_t port = default_port;
  if (absl::StartsWith(text, "[")) {
    size_t close = text.find(']');
    if (close == std::string::npos)
      return absl::InvalidArgumentError("bad server \"" + text + "\"");
    host = text.substr(1, close - 1);
    absl::string_view rest = absl::string_view(text).substr(close + 1);
    if (!rest.empty() && (!absl::ConsumePrefix(&rest, ":") || !absl::SimpleAtoi(rest, &port))) {
      return absl::InvalidArgumentError("bad server \"" + text + "\"");
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    size_t c = text.find(':');
    host = text.substr(0, c);
    if (!absl::SimpleAtoi(text.substr(c + 1), &port)) {
      return absl::InvalidArgumentError("bad server \"" + text + "\"");
    }
  }
  if ((port == 0 && !any_port) || port > 65535)
    return absl::InvalidArgumentError("bad port in \"" + text + "\"");
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
  } else {
    return absl::InvalidArgumentError("server \"" + text + "\" is not an IP address");
  }
  return ss;
}

absl::StatusOr<std::vector<std::string>> UpstreamsFromResolvConf(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> w = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (w.size() >= 2 && w[0] == "nameserver") out.push_back(w[1]);
  }
  if (out.empty()) return absl::NotFoundError(absl::StrCat(path, " has no nameserver line"));
  return out;
}

std::unique_ptr<Upstream> MakeUpstream(std::vector<sockaddr_storage> servers,
                                       absl::Duration timeout) {
  return std::make_unique<NetUpstream>(std::move(servers), timeout);
}

std::string PinAddrText(const Pin& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(p.family, p.addr.data(), buf, sizeof(buf));
  return buf;
}

bool PinTable::Add(const Pin& p) {
  auto key = std::make_pair(p.family, p.addr);
  auto it = pins_.find(key);
  if (it != pins_.end()) {
    it->second.expires = std::max(it->second.expires, p.expires);
    return true;
  }
  if (pins_.size() >= max_) return false;
  pins_.emplace(key, p);
  return true;
}

std::vector<Pin> PinTable::Expire(absl::Time now) {
  std::vector<Pin> out;
  for (auto it = pins_.begin(); it != pins_.end();) {
    if (it->second.expires <= now) {
      out.push_back(std::move(it->second));
      it = pins_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

const Pin* PinTable::Find(int family, const std::array<uint8_t, 16>& addr) const {
  auto it = pins_.find(std::make_pair(family, addr));
  return it == pins_.end() ? nullptr : &it->second;
}

TaskResolver::TaskResolver(const ResolverConfig& config, NamePolicy policy, Upstream* upstream)
    : c_(config),
      policy_(std::move(policy)),
      upstream_(upstream),
      pins_(config.max_pins),
      exfil_(config.exfil),
      next_id_(static_cast<uint16_t>(std::random_device{}())) {}

Outcome TaskResolver::Refuse(Outcome o, const Message* q, uint8_t rcode, std::string verdict,
                             std::string reason, size_t max_reply) {
  ++counters_[reason];
  o.event.verdict = std::move(verdict);
  o.event.reason = std::move(reason);
  o.event.rcode = rcode;
  o.event.answers.clear();
  o.pins.clear();
  if (q != nullptr) o.reply = BuildResponse(*q, rcode, {}, max_reply);
  return o;
}

Outcome TaskResolver::Handle(absl::Span<const uint8_t> query, size_t max_reply, absl::Time now) {
  Outcome o;
  auto parsed = Parse(query);
  if (!parsed.ok()) {
    if (query.size() < 12)
      return Refuse(std::move(o), nullptr, kFormErr, "malformed", "malformed query", 0);
    Message bare;  // answer FORMERR with the task's id and no question
    bare.header.id = static_cast<uint16_t>(query[0] << 8 | query[1]);
    return Refuse(std::move(o), &bare, kFormErr, "malformed",
                  absl::StrCat("malformed query: ", parsed.status().message()), max_reply);
  }
  const Message& q = *parsed;
  if (q.header.qr || q.header.opcode != 0 || q.questions.size() != 1 ||
      q.questions[0].klass != kClassIn) {
    Message bare = q;
    bare.questions.clear();
    return Refuse(std::move(o), &bare, q.header.opcode != 0 ? kNotImp : kFormErr, "malformed",
                  "malformed query: not one IN question", max_reply);
  }
  const Question& question = q.questions[0];
  o.event.qname = question.name;
  o.event.qtype = TypeName(question.type);
  o.findings = exfil_.Observe(question.name, now);
  const NamePattern* rule = policy_.Match(question.name);
  if (rule == nullptr)
    return Refuse(std::move(o), &q, kRefused, "refused", "not allowed", max_reply);
  o.event.rule = rule->text();

  // Follow the chain from the query name: within each answer, then by asking for the target again.
  std::string want = question.name;
  std::vector<std::string> seen{want};
  std::vector<Record> chain;  // CNAMEs followed, returned to the task in order
  std::vector<Record> addrs;
  uint32_t ttl = UINT32_MAX;
  uint8_t rcode = kNoError;
  for (int asks = 0; asks <= c_.max_cname_chain; ++asks) {
    auto wire = BuildQuery(next_id_++, want, question.type);
    if (!wire.ok())
      return Refuse(std::move(o), &q, kServFail, "failed", "bad CNAME target", max_reply);
    auto raw = upstream_->Exchange(*wire);
    if (!raw.ok()) {
      return Refuse(std::move(o), &q, kServFail, "failed",
                    raw.status().code() == absl::StatusCode::kDeadlineExceeded
                        ? "upstream timed out"
                        : "upstream unreachable",
                    max_reply);
    }
    auto a = Parse(*raw, c_.upstream_limits);
    if (!a.ok()) {
      return Refuse(std::move(o), &q, kServFail, "failed",
                    absl::StrCat("malformed upstream answer: ", a.status().message()), max_reply);
    }
    if (!a->header.qr || a->header.id != static_cast<uint16_t>((*wire)[0] << 8 | (*wire)[1]) ||
        a->questions.size() != 1 || a->questions[0].name != want ||
        a->questions[0].type != question.type) {
      return Refuse(std::move(o), &q, kServFail, "failed",
                    "upstream answer does not match the query", max_reply);
    }
    if (a->header.tc) {
      return Refuse(std::move(o), &q, kServFail, "failed", "truncated upstream answer", max_reply);
    }
    rcode = a->header.rcode;
    if (rcode != kNoError) break;  // NXDOMAIN and friends pass through, with nothing pinned
    const size_t chain_before = chain.size();
    bool moved = true;
    while (moved) {  // walk the CNAMEs present in this answer
      moved = false;
      for (const Record& r : a->answers) {
        if (r.type == kTypeCname && r.name == want) {
          if (std::find(seen.begin(), seen.end(), r.target) != seen.end()) {
            return Refuse(std::move(o), &q, kServFail, "failed", "CNAME loop", max_reply);
          }
          if (static_cast<int>(chain.size()) >= c_.max_cname_chain) {
            return Refuse(std::move(o), &q, kServFail, "failed", "CNAME chain too long", max_reply);
          }
          chain.push_back(r);
          ttl = std::min(ttl, r.ttl);
          want = r.target;
          seen.push_back(want);
          moved = true;
          break;
        }
      }
    }
    for (const Record& r : a->answers) {  // only the chain's end: other owners are ignored
      if (r.type == question.type && r.name == want) addrs.push_back(r);
    }
    if (!addrs.empty() || chain.empty() || a->answers.empty()) break;
    if (asks > 0 && chain.size() == chain_before) break;  // the target answered, with no data
    bool chain_end_in_answer = std::any_of(a->answers.begin(), a->answers.end(),
                                           [&](const Record& r) { return r.name == want; });
    if (chain_end_in_answer) break;  // the target exists with no record of this type: no data
  }
  if (!chain.empty() && addrs.empty() && rcode == kNoError &&
      static_cast<int>(chain.size()) >= c_.max_cname_chain) {
    return Refuse(std::move(o), &q, kServFail, "failed", "CNAME chain too long", max_reply);
  }
  for (const Record& r : addrs) ttl = std::min(ttl, r.ttl);
  if (addrs.empty() && ttl == UINT32_MAX) ttl = 0;
  const uint32_t pin_ttl = std::clamp(ttl, c_.min_ttl, c_.max_ttl);
  const uint32_t told_ttl = std::min(ttl, c_.max_ttl);
  pins_.Expire(now);
  for (const Record& r : addrs) {
    Pin p;
    p.family = r.type == kTypeA ? AF_INET : AF_INET6;
    p.addr = r.addr;
    p.name = question.name;
    p.rule = rule->text();
    p.expires = now + absl::Seconds(pin_ttl);
    if (!pins_.Add(p)) {
      // What was pinned of this answer stays until it expires; the task gets no address.
      return Refuse(std::move(o), &q, kServFail, "failed", "pin table full", max_reply);
    }
    o.pins.push_back(p);
  }
  std::vector<Record> reply = chain;
  for (Record& r : reply) r.ttl = std::min(r.ttl, told_ttl);
  for (Record r : addrs) {
    r.ttl = std::min(r.ttl, told_ttl);
    reply.push_back(r);
    o.event.answers.push_back(AddrText(r));
  }
  for (const Record& r : chain) o.event.cnames.push_back(r.target);
  o.event.verdict = "allowed";
  o.event.rcode = rcode;
  o.event.ttl = addrs.empty() ? 0 : pin_ttl;
  o.reply = BuildResponse(q, rcode, reply, max_reply);
  return o;
}

}  // namespace writ::dns
