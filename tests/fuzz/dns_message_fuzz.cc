// Fuzzes the DNS wire format and the stub resolver's handling of hostile bytes, from both sides:
// the input parsed as a message (as a task's query and as an upstream answer), and fed to a
// TaskResolver as the upstream's answer to a real query (its id patched to match, so the fuzzer
// reaches the CNAME walk, the TTL clamp and the pinning). Checked besides crashes, hangs and leaks:
// a parsed message rebuilt by BuildResponse parses again with the same question; a reply is never
// larger than the size asked for; pins exist only for an "allowed" verdict and never beyond the
// table's bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "dns/resolver.h"
#include "fuzz/fuzz_common.h"

namespace {

class BytesUpstream : public writ::dns::Upstream {
 public:
  absl::StatusOr<std::vector<uint8_t>> Exchange(absl::Span<const uint8_t> query) override {
    std::vector<uint8_t> a = answer;
    if (a.size() >= 2 && query.size() >= 2) {
      a[0] = query[0];
      a[1] = query[1];
    }
    return a;
  }
  std::vector<uint8_t> answer;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  writ::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace writ::dns;
  const absl::Span<const uint8_t> in(data, size);
  auto m = Parse(in, {4, 64});
  if (m.ok()) {
    auto rebuilt = BuildResponse(*m, kNoError, m->answers, kMaxUdpReply);
    if (rebuilt.size() > kMaxUdpReply && !m->questions.empty() && rebuilt.size() > 12 + 4 * 259)
      abort();
    auto again = Parse(rebuilt, {4, 64});
    if (!again.ok() || again->questions.size() != m->questions.size()) abort();
    for (size_t i = 0; i < m->questions.size(); ++i) {
      if (again->questions[i].name != m->questions[i].name) abort();
    }
  }

  static ResolverConfig config = [] {
    ResolverConfig c;
    c.max_pins = 8;
    return c;
  }();
  BytesUpstream up;
  up.answer.assign(data, data + size);
  NamePolicy policy;
  policy.Allow(*NamePattern::Parse("*.example.com"));
  TaskResolver res(config, std::move(policy), &up);
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  for (uint16_t type : {kTypeA, kTypeAaaa}) {
    Outcome o = res.Handle(*BuildQuery(7, "a.example.com", type), kMaxUdpReply, now);
    if (o.reply.size() > kMaxUdpReply) abort();
    if (o.event.verdict != "allowed" && !o.pins.empty()) abort();
    if (res.pins().size() > config.max_pins) abort();
  }
  // The same bytes as a task's query.
  Outcome q = res.Handle(in, kMaxUdpReply, now);
  if (q.reply.size() > kMaxUdpReply) abort();
  return 0;
}
