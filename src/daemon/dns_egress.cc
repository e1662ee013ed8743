#include "daemon/dns_egress.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/events.h"
#include "dns/message.h"
#include "dns/resolver.h"
#include "intent/intent.h"
#include "util/util.h"

namespace writ::daemon {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("dns");
  return l;
}

const char* RcodeText(uint8_t rcode) {
  switch (rcode) {
    case dns::kNoError:
      return "NOERROR";
    case dns::kFormErr:
      return "FORMERR";
    case dns::kServFail:
      return "SERVFAIL";
    case dns::kNxDomain:
      return "NXDOMAIN";
    case dns::kNotImp:
      return "NOTIMP";
    case dns::kRefused:
      return "REFUSED";
    default:
      return "OTHER";
  }
}

std::string ServerText(int family, const uint8_t* addr, uint16_t port) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, addr, buf, sizeof(buf));
  return family == AF_INET6 ? absl::StrCat("[", buf, "]:", port) : absl::StrCat(buf, ":", port);
}

// The ports of the task's connect rules that name `name` (host: exact or wildcard): what a pin of
// its addresses allows. Empty when no connect rule names it (the name may be resolved, its
// addresses are reached only by CIDR rules).
std::vector<std::pair<uint16_t, uint16_t>> PortsFor(const identity::Task& task,
                                                    const std::string& name) {
  std::vector<std::pair<uint16_t, uint16_t>> out;
  if (!task.compiled) return out;
  for (const intent::HostRule& h : task.compiled->host_allow()) {
    if (!h.pattern.Matches(name)) continue;
    for (const auto& p : h.ports) {
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
  }
  if (out.size() > WRIT_PIN_RANGES) {  // more ranges than a pin holds: the span of them all
    uint16_t lo = 65535, hi = 0;
    for (const auto& [l, h] : out) {
      lo = std::min(lo, l);
      hi = std::max(hi, h);
    }
    out = {{lo, hi}};
  }
  return out;
}

// The names a task may resolve, as the stub enforces them: the intent's for an enforce-mode task;
// any name otherwise (a monitor-mode task's would-be refusals are reported from OnQuery).
dns::NamePolicy PolicyFor(const identity::Task& task) {
  if (task.compiled && task.compiled->dns_judged() && task.mode == identity::TaskMode::kEnforce) {
    return task.compiled->dns_policy();
  }
  dns::NamePolicy any;
  if (task.compiled) {
    for (const intent::HostRule& h : task.compiled->host_deny()) {
      if (task.mode == identity::TaskMode::kEnforce) any.Deny(h.pattern);
    }
  }
  any.Allow(dns::NamePattern::Any());
  return any;
}

// The stub's times are CLOCK_BOOTTIME (dns::StubNow), the clock of bpf_ktime_get_boot_ns().
uint64_t BootNsOf(absl::Time t) {
  const int64_t ns = absl::ToUnixNanos(t);
  return ns < 0 ? 0 : static_cast<uint64_t>(ns);
}

}  // namespace

DnsEgress::DnsEgress(const Config& cfg, Deps deps) : cfg_(cfg), d_(deps) {}

DnsEgress::~DnsEgress() {
  if (stub_) stub_->Stop();
}

absl::StatusOr<std::unique_ptr<DnsEgress>> DnsEgress::Start(const Config& cfg, Deps deps) {
  std::unique_ptr<DnsEgress> e(new DnsEgress(cfg, deps));
  dns::ResolverConfig rc;
  rc.upstreams = cfg.dns_upstreams;
  rc.upstream_timeout = cfg.dns_upstream_timeout;
  rc.min_ttl = cfg.dns_min_ttl;
  rc.max_ttl = cfg.dns_max_ttl;
  rc.max_pins = cfg.dns_max_pins;
  std::vector<std::string> names = rc.upstreams;
  if (names.empty()) {
    auto rs = dns::UpstreamsFromResolvConf("/etc/resolv.conf");
    if (!rs.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("dns: no upstreams in writd.yaml (dns.upstreams) and /etc/resolv.conf: ",
                       rs.status().message()));
    }
    names = *rs;
  }
  std::vector<sockaddr_storage> servers;
  for (const std::string& n : names) {
    auto ss = dns::ParseServer(n);
    if (!ss.ok())
      return absl::InvalidArgumentError(absl::StrCat("dns upstream: ", ss.status().message()));
    servers.push_back(*ss);
  }
  if (servers.empty()) {
    return absl::FailedPreconditionError(
        "dns: no upstream resolver (dns.upstreams empty and no nameserver in /etc/resolv.conf)");
  }
  DnsEgress* self = e.get();
  dns::StubCallbacks cb;
  cb.task_of = [self](const dns::QuerySource& src) { return self->TaskOf(src); };
  cb.on_query = [self](const std::string& task, const dns::Outcome& o,
                       const dns::QuerySource& src) { self->OnQuery(task, o, src); };
  cb.on_expired = [self](const std::string& task, const std::vector<dns::Pin>& pins) {
    self->OnExpired(task, pins);
  };
  // IPv6 on ::1 at the same port where the host has it; IPv4 alone otherwise.
  for (const char* v6 : {"::1", ""}) {
    auto stub =
        std::make_unique<dns::StubServer>(rc, dns::MakeUpstream(servers, rc.upstream_timeout), cb);
    absl::Status st = stub->Start(cfg.dns_listen, v6);
    if (st.ok()) {
      e->stub_ = std::move(stub);
      if (*v6) inet_pton(AF_INET6, v6, e->addr6_.data());
      break;
    }
    stub->Stop();
    if (!*v6) return st;
    Log()->warn("dns stub: no IPv6 on ::1 ({}); IPv6 DNS of tasks is judged as any connect",
                std::string(st.message()));
  }
  e->port_ = e->stub_->port();
  auto ss = dns::ParseServer(cfg.dns_listen, 53, /*any_port=*/true);
  e->addr4_ = reinterpret_cast<const sockaddr_in*>(&*ss)->sin_addr.s_addr;
  Log()->info("dns stub: {}:{} (udp, tcp){}, upstreams {}",
              cfg.dns_listen.substr(0, cfg.dns_listen.rfind(':')), e->port_,
              e->addr6_[15] ? " and [::1]" : "", absl::StrJoin(names, ", "));
  return e;
}

void DnsEgress::AddTask(const identity::Task& task, bool restored) {
  stub_->AddTask(task.id, PolicyFor(task));
  bpf::Loader* loader = loader_.load(std::memory_order_acquire);
  if (!restored || !loader) return;
  const uint64_t generation = static_cast<uint64_t>(absl::ToUnixNanos(task.start));
  const uint64_t now = static_cast<uint64_t>(absl::ToUnixNanos(dns::StubNow()));
  std::vector<dns::Pin> live;
  absl::MutexLock l(&mu_);
  auto& names = names_[task.id];
  for (const bpf::Loader::PinEntry& e : loader->ReadPins(task.slot)) {
    if (e.generation != generation || e.expires_boot_ns <= now) {
      loader->UnpinAddress(task.slot, e.family, e.addr);  // a former task's, or dead
      continue;
    }
    dns::Pin p;
    p.family = e.family;
    std::memcpy(p.addr.data(), e.addr, 16);
    p.name = e.name;
    p.expires = absl::FromUnixNanos(static_cast<int64_t>(e.expires_boot_ns));
    live.push_back(p);
    Named& n = names[{p.family, p.addr}];
    n.name = p.name;
    n.expires_boot_ns = e.expires_boot_ns;
  }
  if (!live.empty()) {
    Log()->info("dns: task {}: {} pins taken up from the previous writd", task.id, live.size());
    stub_->RestorePins(task.id, live);
  }
}

void DnsEgress::RemoveTask(const identity::Task& task) {
  stub_->RemoveTask(task.id);  // its pins are reported expired (the kernel's go with the slot)
  absl::MutexLock l(&mu_);
  names_.erase(task.id);
}

DnsCounters DnsEgress::counters() {
  const dns::StubCounters sc = stub_->counters();
  absl::MutexLock l(&mu_);
  DnsCounters c = counters_;
  c.dropped = sc.dropped;
  c.tcp_timeouts = sc.tcp_timeouts;
  return c;
}

std::optional<std::string> DnsEgress::TaskOf(const dns::QuerySource& src) {
  bpf::Loader* loader = loader_.load(std::memory_order_acquire);
  std::optional<bpf::DnsPeer> peer;
  if (loader) peer = loader->LookupDnsPeer(src.proto, src.peer);
  std::shared_ptr<identity::Task> t = peer ? d_.registry.FindByCgroup(peer->cgroup_id) : nullptr;
  if (!t || t->state.load() == identity::TaskState::kEnded) {
    absl::MutexLock l(&mu_);
    ++counters_.unattributed;
    return std::nullopt;
  }
  return t->id;
}

void DnsEgress::OnQuery(const std::string& task_id, const dns::Outcome& o,
                        const dns::QuerySource& src) {
  std::shared_ptr<identity::Task> task = d_.registry.Find(task_id);
  bpf::Loader* loader = loader_.load(std::memory_order_acquire);
  // Pins first: the reply leaves when this returns.
  uint64_t written = 0, errors = 0;
  if (task && loader) {
    const uint64_t generation = static_cast<uint64_t>(absl::ToUnixNanos(task->start));
    for (const dns::Pin& p : o.pins) {
      auto ports = PortsFor(*task, p.name);
      if (ports.empty()) continue;
      absl::Status st = loader->PinAddress(task->slot, generation, p.family, p.addr.data(),
                                           BootNsOf(p.expires), ports, p.name);
      if (st.ok()) {
        ++written;
      } else {
        ++errors;
        Log()->warn("dns: task {}: pin {} ({}): {}", task_id, dns::PinAddrText(p), p.name,
                    std::string(st.message()));
      }
    }
  }
  {
    absl::MutexLock l(&mu_);
    auto& names = names_[task_id];
    const uint64_t now = static_cast<uint64_t>(NowBootNs());
    if (names.size() + o.pins.size() > 4 * static_cast<size_t>(cfg_.dns_max_pins)) {
      for (auto it = names.begin(); it != names.end();) {
        it = it->second.expires_boot_ns < now ? names.erase(it) : std::next(it);
      }
    }
    for (const dns::Pin& p : o.pins) {
      if (names.size() >= 4 * static_cast<size_t>(cfg_.dns_max_pins)) break;
      Named& n = names[{p.family, p.addr}];
      if (n.name != p.name) {
        if (!n.name.empty()) {  // another name pinned it before: kept as prev
          n.prev_name = n.name;
          n.prev_pinned_boot_ns = n.pinned_boot_ns;
          n.prev_expires_boot_ns = n.expires_boot_ns;
        }
        n.name = p.name;
        n.pinned_boot_ns = now;  // before the reply leaves: no connect of its answer is earlier
      }
      n.expires_boot_ns = BootNsOf(p.expires);
    }
    ++counters_.queries;
    counters_.pins_written += written;
    counters_.pin_errors += errors;
    const std::string& v = o.event.verdict;
    if (v == "allowed") ++counters_.allowed;
    if (v == "refused") ++counters_.refused;
    if (v == "malformed") ++counters_.malformed;
    if (v == "failed") ++counters_.failed;
  }

  v1::Event ev = d_.output.NewEvent("dns");
  if (task) FillAgent(*task, &ev);
  v1::Dns* dn = ev.mutable_dns();
  dn->set_query(o.event.qname);
  dn->set_qtype(o.event.qtype);
  dn->set_verdict(o.event.verdict);
  dn->set_reason(o.event.reason);
  dn->set_rule(o.event.rule);
  dn->set_rcode(RcodeText(o.event.rcode));
  for (const std::string& a : o.event.answers) dn->add_answers(a);
  for (const std::string& c : o.event.cnames) dn->add_cnames(c);
  dn->set_ttl(o.event.ttl);
  dn->set_transport(src.proto == IPPROTO_TCP ? "tcp" : "udp");
  if (auto peer = loader ? loader->LookupDnsPeer(src.proto, src.peer) : std::nullopt;
      peer && peer->orig_family != 0) {
    dn->set_server(ServerText(peer->orig_family, peer->orig_addr, peer->orig_port));
  } else {  // the task asked the stub itself
    dn->set_server(ServerText(AF_INET, reinterpret_cast<const uint8_t*>(&addr4_), port_));
  }

  // The verdict: a name the intent does not allow (refused by the stub in an enforce-mode task;
  // answered, and reported as would_deny, otherwise), or an exfiltration-shaped query.
  std::string rule, reason;
  bool would_deny = false;
  if (task && task->compiled && task->compiled->dns_judged() && !o.event.qname.empty()) {
    const bool enforce = task->mode == identity::TaskMode::kEnforce;
    const bool allowed = task->compiled->dns_policy().Match(o.event.qname) != nullptr;
    if (!allowed && (!enforce || o.event.verdict == "refused")) {
      rule = absl::StrCat(task->intent, "/network.dns");
      reason = absl::StrCat("name not allowed by the intent: ", o.event.qname);
      would_deny = !enforce;
    }
  }
  if (rule.empty() && !o.findings.empty()) {
    const dns::ExfilFinding& f = o.findings.front();
    rule = absl::StrCat(task ? task->intent : "", "/network.dns.exfiltration");
    reason = absl::StrCat("exfiltration-shaped DNS query (", f.kind, ") under ", f.domain, ": ",
                          f.detail);
  }
  if (o.event.verdict == "allowed" && rule.empty()) {
    ev.set_verdict("allow");
    ev.set_outcome("allowed");
  } else if (!rule.empty()) {
    ev.set_verdict("violation");
    ev.set_outcome(would_deny                     ? "would_deny"
                   : o.event.verdict == "allowed" ? "allowed"
                                                  : "prevented");
    ev.set_enforcement("dns");
    v1::Finding* f = ev.mutable_finding();
    f->set_rule(rule);
    f->set_category("network");
    f->set_reason(reason);
    f->set_severity(task && task->compiled ? task->compiled->severity() : "medium");
    if (task && task->compiled) {
      for (const auto& fw : task->compiled->frameworks()) f->add_frameworks(fw);
    }
    absl::MutexLock l(&mu_);
    ++counters_.findings;
  }
  d_.output.Emit(ev);
}

void DnsEgress::OnExpired(const std::string& task_id, const std::vector<dns::Pin>& pins) {
  bpf::Loader* loader = loader_.load(std::memory_order_acquire);
  std::shared_ptr<identity::Task> task = d_.registry.Find(task_id);
  if (!loader || !task) return;  // an ended task's pins went with its slot's tables
  for (const dns::Pin& p : pins) loader->UnpinAddress(task->slot, p.family, p.addr.data());
}

std::string DnsEgress::NameFor(const std::string& task_id, int family, const uint8_t* addr,
                               uint64_t ktime_ns) {
  AddrKey k{family, {}};
  std::memcpy(k.second.data(), addr, family == AF_INET ? 4 : 16);
  absl::MutexLock l(&mu_);
  auto t = names_.find(task_id);
  if (t == names_.end()) return "";
  auto it = t->second.find(k);
  if (it == t->second.end()) return "";
  const Named& n = it->second;
  if (ktime_ns >= n.pinned_boot_ns && ktime_ns < n.expires_boot_ns) return n.name;
  if (!n.prev_name.empty() && ktime_ns >= n.prev_pinned_boot_ns &&
      ktime_ns < n.prev_expires_boot_ns) {
    return n.prev_name;  // the connect came before the later name's pin
  }
  return "";
}

}  // namespace writ::daemon
