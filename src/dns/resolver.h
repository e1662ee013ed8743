// The stub resolver's per-task logic, independent of sockets: a task's query is checked against its
// NamePolicy, an allowed name is asked of the upstream resolvers (a fresh query with our own id,
// never the task's bytes), the CNAME chain from the query name is followed (bounded, loops
// refused), and only the A/AAAA records at the end of that chain are returned to the task, each one
// pinned first (address, query name, expiry = TTL clamped to [min_ttl, max_ttl]). Anything that
// does not parse, match or fit is a refusal with a reason and a counter, never a pin. Not
// thread-safe: one thread owns a resolver.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "dns/exfil.h"
#include "dns/message.h"
#include "dns/name_policy.h"

namespace writ::dns {

struct ResolverConfig {
  std::vector<std::string> upstreams;  // "ip" or "ip:port" / "[v6]:port"; empty: from resolv.conf
  absl::Duration upstream_timeout = absl::Seconds(2);  // per upstream server and transport
  uint32_t min_ttl = 5;                                // seconds: pins live at least this long
  uint32_t max_ttl = 3600;             // and at most this long (the task is told no more)
  size_t max_pins = 1024;              // live pins per task
  int max_cname_chain = 8;             // CNAME hops followed, within an answer and by re-query
  ParseLimits upstream_limits{1, 64};  // an answer with more records is refused, not cut
  ExfilConfig exfil;
};

// nameserver lines of a resolv.conf (loopback stubs such as 127.0.0.53 included: the host's
// choice).
absl::StatusOr<std::vector<std::string>> UpstreamsFromResolvConf(const std::string& path);
// Port 0 is refused unless `any_port` (a listener asking for a free port).
absl::StatusOr<sockaddr_storage> ParseServer(const std::string& text, uint16_t default_port = 53,
                                             bool any_port = false);

// One exchange with the upstream resolvers: tries each in turn, UDP first, TCP when the UDP answer
// is truncated. Returns the raw answer (parsed and checked by the caller).
class Upstream {
 public:
  virtual ~Upstream() = default;
  virtual absl::StatusOr<std::vector<uint8_t>> Exchange(absl::Span<const uint8_t> query) = 0;
};
std::unique_ptr<Upstream> MakeUpstream(std::vector<sockaddr_storage> servers,
                                       absl::Duration timeout);

struct Pin {
  int family = 0;  // AF_INET / AF_INET6
  std::array<uint8_t, 16> addr{};
  std::string name;  // the name the task asked for
  std::string rule;  // the allow pattern that admitted it
  absl::Time expires;
};
std::string PinAddrText(const Pin& p);

// Live pins of one task, keyed by address (a second name resolving to the same address refreshes
// the expiry to the later of the two and keeps the first name).
class PinTable {
 public:
  explicit PinTable(size_t max) : max_(max) {}
  // False when the table is full and the address is not already pinned.
  bool Add(const Pin& p);
  std::vector<Pin> Expire(absl::Time now);  // removes and returns the pins expired at `now`
  const Pin* Find(int family, const std::array<uint8_t, 16>& addr) const;
  size_t size() const { return pins_.size(); }

 private:
  size_t max_;
  std::map<std::pair<int, std::array<uint8_t, 16>>, Pin> pins_;
};

// What the stub reports for one query (docs/events.md "dns").
struct DnsEvent {
  std::string qname;
  std::string qtype;
  std::string verdict;  // allowed | refused | malformed | failed
  std::string reason;   // why, when not allowed
  std::string rule;     // the allow pattern, when allowed
  uint8_t rcode = 0;
  std::vector<std::string> answers;  // addresses returned (and pinned)
  std::vector<std::string> cnames;   // the chain followed
  uint32_t ttl = 0;                  // seconds the pins live (clamped)
};

struct Outcome {
  std::vector<uint8_t> reply;  // empty: nothing to send (input too short to answer)
  DnsEvent event;
  std::vector<Pin> pins;  // new or refreshed pins, already in the table
  std::vector<ExfilFinding> findings;
};

class TaskResolver {
 public:
  TaskResolver(const ResolverConfig& config, NamePolicy policy, Upstream* upstream);
  // `max_reply`: kMaxUdpReply over UDP, kMaxMessage over TCP.
  Outcome Handle(absl::Span<const uint8_t> query, size_t max_reply, absl::Time now);
  PinTable& pins() { return pins_; }
  // Refusals and failures by reason ("not allowed", "malformed query", "upstream unreachable",
  // ...).
  const absl::flat_hash_map<std::string, uint64_t>& counters() const { return counters_; }

 private:
  Outcome Refuse(Outcome o, const Message* q, uint8_t rcode, std::string verdict,
                 std::string reason, size_t max_reply);
  const ResolverConfig& c_;
  NamePolicy policy_;
  Upstream* upstream_;
  PinTable pins_;
  ExfilDetector exfil_;
  uint16_t next_id_;
  absl::flat_hash_map<std::string, uint64_t> counters_;
};

}  // namespace writ::dns
