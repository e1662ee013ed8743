#include "creds/redact.h"

#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "re2/re2.h"
#include "re2/set.h"
#include "util/fd.h"
#include "util/status_macros.h"

namespace writ::creds {
namespace {

// Up to kMaxRedactionRules bits: which rules a string may match.
struct RuleMask {
  uint64_t w[kMaxRedactionRules / 64] = {};
  void Set(size_t i) { w[i >> 6] |= uint64_t{1} << (i & 63); }
  bool Test(size_t i) const { return (w[i >> 6] >> (i & 63)) & 1; }
  void Clear(size_t i) { w[i >> 6] &= ~(uint64_t{1} << (i & 63)); }
  bool Any() const {
    uint64_t a = 0;
    for (uint64_t x : w) a |= x;
    return a != 0;
  }
  int Count() const {
    int n = 0;
    for (uint64_t x : w) n += __builtin_popcountll(x);
    return n;
  }
  RuleMask& operator|=(const RuleMask& o) {
    for (size_t i = 0; i < std::size(w); ++i) w[i] |= o.w[i];
    return *this;
  }
  RuleMask& operator&=(const RuleMask& o) {
    for (size_t i = 0; i < std::size(w); ++i) w[i] &= o.w[i];
    return *this;
  }
  template <typename F>
  void ForEach(F f) const {
    for (size_t k = 0; k < std::size(w); ++k) {
      for (uint64_t x = w[k]; x != 0; x &= x - 1)
        f(k * 64 + static_cast<size_t>(__builtin_ctzll(x)));
    }
  }
};

// Debian's Abseil has its own string_view: absl::StrCat and the hash maps take that one.
absl::string_view A(std::string_view s) { return {s.data(), s.size()}; }

struct LowerTable {
  unsigned char t[256];
  constexpr LowerTable() : t() {
    for (int c = 0; c < 256; ++c)
      t[c] = static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
};
constexpr LowerTable kLower;

constexpr size_t kTriHashes = 1 << 16;
// Three lower-cased bytes (24 bits) -> 16 bits.
inline uint32_t TriHash(uint32_t tri) { return (tri * 0x9E3779B1u) >> 16; }

struct Span {
  uint32_t b, e;  // [b, e) in the string
  uint16_t rule;
};
using Spans = absl::InlinedVector<Span, 4>;

struct ArgSpan {
  uint32_t arg;
  Span s;
};

std::string_view Basename(std::string_view p) {
  const size_t slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsIdChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

// A well-formed mark starting at s[i] ("[REDACTED:" known to be there): its length, or 0.
size_t MarkLengthAt(std::string_view s, size_t i) {
  size_t p = i + kMarkPrefix.size();
  const size_t id_start = p;
  while (p < s.size() && IsIdChar(s[p]) && p - id_start <= 48) ++p;
  if (p == id_start || p >= s.size() || s[p] != ':') return 0;
  ++p;
  for (size_t k = 0; k < kMarkHashHexDigits; ++k, ++p) {
    if (p >= s.size() || !IsHex(s[p])) return 0;
  }
  if (p >= s.size() || s[p] != ']') return 0;
  return p + 1 - i;
}

}  // namespace

struct Redactor::Impl {
  struct Rule {
    RedactionRule src;
    std::unique_ptr<RE2> re;         // pattern rules
    std::unique_ptr<RE2> option_re;  // option_pattern
    std::unique_ptr<RE2> exclude_re;
    std::unique_ptr<RE2> value_re;
    uint32_t requires_bits = 0;  // bit per character class of RequiresClass
    int groups = 0;
  };
  struct Keyword {
    std::string rest;  // lower case, after the first three bytes
    RuleMask rules;
  };

  std::vector<Rule> rules;
  RuleMask pattern_rules;
  std::unique_ptr<RE2::Set> set;
  std::vector<uint16_t> set_rule;  // RE2::Set index -> rule index

  // Prefilter: a bit per hash of the lower-cased three bytes that start a keyword (8 KiB: stays in
  // L1), then that hash's bucket of keywords (their first three bytes are compared again: hashes
  // collide).
  uint64_t tri_bits[kTriHashes / 64] = {};
  std::vector<uint16_t> tri_bucket;  // hash -> index into buckets
  struct Bucket {
    uint32_t tri;  // the three lower-cased bytes, b0 << 16 | b1 << 8 | b2
    std::vector<Keyword> keywords;
  };
  std::vector<std::vector<Bucket>> buckets;
  uint32_t char_bits[256] = {};  // the `requires` characters, one bit each (at most 32 distinct)

  // Option rules: exact spellings (case-folded for ignore_case rules), and the option_pattern
  // rules.
  absl::flat_hash_map<std::string, std::vector<uint16_t>> options_exact;
  absl::flat_hash_map<std::string, std::vector<uint16_t>> options_folded;
  std::vector<uint16_t> option_pattern_rules;
  size_t max_option_bytes = 0;

  std::string key;
  std::unique_ptr<std::atomic<uint64_t>[]> counts;

  RuleMask Prefilter(std::string_view s) const;
  void FindPatternSpans(std::string_view s, RuleMask candidates, Spans* out) const;
  void SearchRule(std::string_view s, uint16_t r, Spans* out) const;
  uint32_t Apply(std::string* s, Spans* spans, uint16_t* first_rule) const;
  // Argv runs ArgvOnce until a pass makes no mark (as Text does, and for the same reason).
  template <typename Args>
  RedactionReport Argv(Args* args, std::string_view exe) const;
  template <typename Args>
  RedactionReport ArgvOnce(Args* args, std::string_view exe) const;
  template <typename Args>
  void OptionSpans(const Args& args, size_t i, std::string_view exe, const RuleMask& mask,
                   absl::InlinedVector<ArgSpan, 8>* out) const;
  template <typename Args>
  bool RuleApplies(const Rule& r, const Args& args, size_t i, std::string_view exe) const;
  template <typename Args>
  void ValueSpan(const Args& args, uint16_t r, size_t arg, size_t offset,
                 absl::InlinedVector<ArgSpan, 8>* out) const;
  // Redacts until nothing more matches (at most kMaxPasses): of two overlapping matches one is
  // applied, and the text the other covered can then read as a new match next to the mark (the
  // redact fuzzer found `"api-key:", "apikey:"<secret>` redacted again by a second pass). The
  // common case costs one pass: a second runs only when the first made marks.
  uint32_t Text(std::string* s) const {
    static constexpr int kMaxPasses = 8;
    uint32_t total = 0;
    for (int pass = 0; pass < kMaxPasses; ++pass) {
      const RuleMask m = Prefilter(*s);
      if (!m.Any()) break;
      Spans spans;
      FindPatternSpans(*s, m, &spans);
      if (spans.empty()) break;
      uint16_t first;
      const uint32_t n = Apply(s, &spans, &first);
      total += n;
      if (n == 0) break;
    }
    return total;
  }
  std::string Mark(std::string_view id, std::string_view secret) const;
};

RuleMask Redactor::Impl::Prefilter(std::string_view s) const {
  RuleMask m;
  const size_t n = s.size();
  if (n < 3) return m;  // keywords have at least three bytes
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  uint32_t tri = static_cast<uint32_t>(kLower.t[p[0]]) << 8 | kLower.t[p[1]];
  for (size_t i = 2; i < n; ++i) {
    tri = (tri << 8 | kLower.t[p[i]]) & 0xFFFFFF;  // bytes i-2, i-1, i
    const uint32_t h = TriHash(tri);
    if ((tri_bits[h >> 6] >> (h & 63)) & 1) [[unlikely]] {
      for (const Bucket& b : buckets[tri_bucket[h]]) {
        if (b.tri != tri) continue;
        for (const Keyword& k : b.keywords) {
          if (k.rest.size() > n - i - 1) continue;
          size_t j = 0;
          while (j < k.rest.size() &&
                 kLower.t[p[i + 1 + j]] == static_cast<unsigned char>(k.rest[j]))
            ++j;
          if (j == k.rest.size()) m |= k.rules;
        }
      }
    }
  }
  return m;
}

void Redactor::Impl::SearchRule(std::string_view s, uint16_t r, Spans* out) const {
  const Rule& rule = rules[r];
  re2::StringPiece g[10];
  const int ng = std::min(rule.groups, 9) + 1;
  size_t pos = 0;
  while (pos <= s.size() && rule.re->Match(s, pos, s.size(), RE2::UNANCHORED, g, ng)) {
    // The secret: the first group that took part, or the whole match.
    re2::StringPiece secret = g[0];
    for (int k = 1; k < ng; ++k) {
      if (g[k].data() != nullptr) {
        secret = g[k];
        break;
      }
    }
    if (!secret.empty()) {
      const auto b = static_cast<uint32_t>(secret.data() - s.data());
      out->push_back({b, static_cast<uint32_t>(b + secret.size()), r});
    }
    const size_t end = static_cast<size_t>(g[0].data() - s.data()) + g[0].size();
    pos = end > pos ? end : pos + 1;
  }
}

void Redactor::Impl::FindPatternSpans(std::string_view s, RuleMask candidates, Spans* out) const {
  candidates &= pattern_rules;
  if (!candidates.Any()) return;
  // `requires`: characters the string must hold for the rule to match at all.
  uint32_t present = 0;
  for (unsigned char c : s) present |= char_bits[c];
  candidates.ForEach([&](size_t r) {
    if (rules[r].requires_bits != 0 && (rules[r].requires_bits & present) == 0) candidates.Clear(r);
  });
  const int n = candidates.Count();
  if (n == 0) return;
  if (n > 1) {
    // One pass over every pattern rule says which of the candidates match at all.
    std::vector<int> hit;
    RE2::Set::ErrorInfo err;
    if (set->Match(s, &hit, &err)) {
      RuleMask matched;
      for (int i : hit) matched.Set(set_rule[static_cast<size_t>(i)]);
      candidates &= matched;
    } else if (err.kind != RE2::Set::kNoError) {
      // Out of DFA memory on a huge input: search each candidate instead, never skip one.
    } else {
      return;
    }
  }
  candidates.ForEach([&](size_t r) { SearchRule(s, static_cast<uint16_t>(r), out); });
}

std::string Redactor::Impl::Mark(std::string_view id, std::string_view secret) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), md, &md_len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(kMarkPrefix.size() + id.size() + 2 + kMarkHashHexDigits);
  out.append(kMarkPrefix);
  out.append(id);
  out.push_back(':');
  for (size_t i = 0; i < kMarkHashHexDigits / 2; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  out.push_back(']');
  return out;
}

// Replaces the spans (merged where they overlap or touch) with marks. Spans touching a well-formed
// mark already in the string are dropped: redaction is idempotent, and a mark is never nested.
uint32_t Redactor::Impl::Apply(std::string* s, Spans* spans, uint16_t* first_rule) const {
  std::string_view v(*s);
  absl::InlinedVector<std::pair<size_t, size_t>, 2> marks;
  for (size_t i = v.find(kMarkPrefix); i != std::string_view::npos;
       i = v.find(kMarkPrefix, i + 1)) {
    if (size_t len = MarkLengthAt(v, i); len > 0) marks.emplace_back(i, i + len);
  }
  if (!marks.empty()) {
    spans->erase(std::remove_if(spans->begin(), spans->end(),
                                [&](const Span& sp) {
                                  for (const auto& [mb, me] : marks) {
                                    if (sp.b < me && mb < sp.e) return true;
                                  }
                                  return false;
                                }),
                 spans->end());
  }
  if (spans->empty()) return 0;
  std::sort(spans->begin(), spans->end(), [](const Span& a, const Span& b) {
    return a.b != b.b ? a.b < b.b : a.e != b.e ? a.e > b.e : a.rule < b.rule;
  });
  std::string out;
  out.reserve(v.size() + 32 * spans->size());
  size_t pos = 0;
  uint32_t written = 0;
  for (size_t i = 0; i < spans->size();) {
    size_t b = (*spans)[i].b;
    size_t e = (*spans)[i].e;
    uint16_t rule = (*spans)[i].rule;
    // One mark for overlapping matches, named by the rule listed first among them.
    for (++i; i < spans->size() && (*spans)[i].b <= e; ++i) {
      e = std::max<size_t>(e, (*spans)[i].e);
      rule = std::min(rule, (*spans)[i].rule);
    }
    out.append(v.substr(pos, b - pos));
    out.append(Mark(rules[rule].src.id, v.substr(b, e - b)));
    counts[rule].fetch_add(1, std::memory_order_relaxed);
    if (written == 0) *first_rule = rule;
    ++written;
    pos = e;
  }
  out.append(v.substr(pos));
  *s = std::move(out);
  return written;
}

namespace {

// Uniform access to the two argument containers.
const std::string& At(const google::protobuf::RepeatedPtrField<std::string>& a, size_t i) {
  return a.Get(static_cast<int>(i));
}
std::string* MutableAt(google::protobuf::RepeatedPtrField<std::string>* a, size_t i) {
  return a->Mutable(static_cast<int>(i));
}
const std::string& At(const std::vector<std::string>& a, size_t i) { return a[i]; }
std::string* MutableAt(std::vector<std::string>* a, size_t i) { return &(*a)[i]; }

}  // namespace

template <typename Args>
bool Redactor::Impl::RuleApplies(const Rule& r, const Args& args, size_t i,
                                 std::string_view exe) const {
  if (!r.src.programs.empty()) {
    auto named = [&](std::string_view p) {
      return std::find(r.src.programs.begin(), r.src.programs.end(), Basename(p)) !=
             r.src.programs.end();
    };
    bool ok = !exe.empty() && named(exe);
    for (size_t j = 0; !ok && j < i; ++j) ok = named(At(args, j));
    if (!ok) return false;
  }
  if (!r.src.after.empty()) {
    bool ok = false;
    for (size_t j = 0; !ok && j < i; ++j) {
      ok = std::find(r.src.after.begin(), r.src.after.end(), At(args, j)) != r.src.after.end();
    }
    if (!ok) return false;
  }
  return true;
}

template <typename Args>
void Redactor::Impl::ValueSpan(const Args& args, uint16_t r, size_t arg, size_t offset,
                               absl::InlinedVector<ArgSpan, 8>* out) const {
  const std::string_view value = std::string_view(At(args, arg)).substr(offset);
  if (value.empty()) return;
  size_t b = 0, e = value.size();
  if (const RE2* vre = rules[r].value_re.get()) {
    re2::StringPiece g[2];
    if (!vre->Match(value, 0, value.size(), RE2::UNANCHORED, g, 2) || g[1].empty()) return;
    b = static_cast<size_t>(g[1].data() - value.data());
    e = b + g[1].size();
  }
  out->push_back({static_cast<uint32_t>(arg),
                  {static_cast<uint32_t>(offset + b), static_cast<uint32_t>(offset + e), r}});
}

template <typename Args>
void Redactor::Impl::OptionSpans(const Args& args, size_t i, std::string_view exe,
                                 const RuleMask& mask, absl::InlinedVector<ArgSpan, 8>* out) const {
  const std::string_view a = At(args, i);
  const size_t n = static_cast<size_t>(args.size());
  // The next argument is this option's value unless it looks like an option itself.
  const bool next_is_value =
      i + 1 < n && !(At(args, i + 1).size() > 1 && At(args, i + 1)[0] == '-');
  const size_t eq = a.find('=');
  auto exact = [&](std::string_view name, auto&& each) {
    if (name.empty() || name.size() > max_option_bytes) return;
    if (auto it = options_exact.find(A(name)); it != options_exact.end()) {
      for (uint16_t r : it->second) each(r);
    }
    if (!options_folded.empty()) {
      char buf[64];
      if (name.size() > sizeof(buf)) return;
      for (size_t k = 0; k < name.size(); ++k)
        buf[k] = static_cast<char>(kLower.t[static_cast<unsigned char>(name[k])]);
      if (auto it = options_folded.find(absl::string_view(buf, name.size()));
          it != options_folded.end()) {
        for (uint16_t r : it->second) each(r);
      }
    }
  };
  // --opt VALUE, VALUE being the next argument
  exact(a, [&](uint16_t r) {
    if (rules[r].src.form_separate && next_is_value && RuleApplies(rules[r], args, i, exe)) {
      ValueSpan(args, r, i + 1, 0, out);
    }
  });
  // --opt=VALUE
  if (eq != std::string_view::npos && eq > 0) {
    exact(a.substr(0, eq), [&](uint16_t r) {
      if (rules[r].src.form_equals && RuleApplies(rules[r], args, i, exe))
        ValueSpan(args, r, i, eq + 1, out);
    });
  }
  // -pVALUE
  if (a.size() > 2 && a[0] == '-' && a[1] != '-') {
    exact(a.substr(0, 2), [&](uint16_t r) {
      if (rules[r].src.form_attached && RuleApplies(rules[r], args, i, exe))
        ValueSpan(args, r, i, 2, out);
    });
  }
  // Options named like secrets: only arguments starting with '-' whose keywords occurred.
  if (a.size() > 1 && a[0] == '-') {
    for (uint16_t r : option_pattern_rules) {
      if (!mask.Test(r)) continue;
      const Rule& rule = rules[r];
      const std::string_view name = eq != std::string_view::npos ? a.substr(0, eq) : a;
      if (!RE2::FullMatch(name, *rule.option_re)) continue;
      if (rule.exclude_re && RE2::PartialMatch(name, *rule.exclude_re)) continue;
      if (!RuleApplies(rule, args, i, exe)) continue;
      if (eq != std::string_view::npos) {
        if (rule.src.form_equals) ValueSpan(args, r, i, eq + 1, out);
      } else if (rule.src.form_separate && next_is_value) {
        ValueSpan(args, r, i + 1, 0, out);
      }
    }
  }
}

template <typename Args>
RedactionReport Redactor::Impl::Argv(Args* args, std::string_view exe) const {
  static constexpr int kMaxPasses = 8;
  RedactionReport rep;
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    const RedactionReport r = ArgvOnce(args, exe);
    if (r.argv_marks == 0) break;
    if (rep.first_argv_index < 0) {
      rep.first_argv_index = r.first_argv_index;
      rep.first_argv_rule = r.first_argv_rule;
    }
    rep.argv_marks += r.argv_marks;
  }
  rep.marks = rep.argv_marks;
  return rep;
}

template <typename Args>
RedactionReport Redactor::Impl::ArgvOnce(Args* args, std::string_view exe) const {
  RedactionReport rep;
  const size_t n = static_cast<size_t>(args->size());
  absl::InlinedVector<ArgSpan, 8> found;
  for (size_t i = 0; i < n; ++i) {
    const std::string_view a = At(*args, i);
    const RuleMask m = Prefilter(a);
    if (m.Any()) {
      Spans spans;
      FindPatternSpans(a, m, &spans);
      for (const Span& s : spans) found.push_back({static_cast<uint32_t>(i), s});
    }
    if (!a.empty()) OptionSpans(*args, i, exe, m, &found);
  }
  if (found.empty()) return rep;
  std::sort(found.begin(), found.end(),
            [](const ArgSpan& x, const ArgSpan& y) { return x.arg < y.arg; });
  for (size_t k = 0; k < found.size();) {
    const uint32_t arg = found[k].arg;
    Spans spans;
    for (; k < found.size() && found[k].arg == arg; ++k) spans.push_back(found[k].s);
    uint16_t first = 0;
    const uint32_t w = Apply(MutableAt(args, arg), &spans, &first);
    if (w > 0 && rep.first_argv_index < 0) {
      rep.first_argv_index = static_cast<int>(arg);
      rep.first_argv_rule = rules[first].src.id;
    }
    rep.argv_marks += w;
  }
  rep.marks = rep.argv_marks;
  return rep;
}

Redactor::Redactor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Redactor::~Redactor() = default;

absl::StatusOr<std::unique_ptr<Redactor>> Redactor::Create(const RedactionRuleSet& set,
                                                           std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("redaction: empty HMAC key");
  if (set.rules.size() > kMaxRedactionRules) {
    return absl::InvalidArgumentError(
        absl::StrCat("redaction: ", set.rules.size(), " rules, at most ", kMaxRedactionRules));
  }
  auto impl = std::make_unique<Impl>();
  impl->key = std::string(key);
  RE2::Options o;
  o.set_log_errors(false);
  // Event strings are bytes (paths need not be UTF-8); every pattern is ASCII, so Latin-1 matches
  // the same and never stumbles on invalid UTF-8.
  o.set_encoding(RE2::Options::EncodingLatin1);
  impl->set = std::make_unique<RE2::Set>(o, RE2::UNANCHORED);
  std::string required_chars;  // the distinct `requires` characters, bit i = required_chars[i]
  absl::flat_hash_map<std::string, RuleMask> keywords;
  for (size_t r = 0; r < set.rules.size(); ++r) {
    const RedactionRule& src = set.rules[r];
    Impl::Rule rule;
    rule.src = src;
    auto compile = [&](const std::string& re, const char* field,
                       std::unique_ptr<RE2>* out) -> absl::Status {
      if (re.empty()) return absl::OkStatus();
      *out = std::make_unique<RE2>(re, o);
      if (!(*out)->ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(src.file, ":", src.line, ": ", src.id, ".", field, ": ", (*out)->error()));
      }
      return absl::OkStatus();
    };
    for (auto [re, field, out] :
         {std::tuple{&src.pattern, "pattern", &rule.re},
          std::tuple{&src.option_pattern, "option_pattern", &rule.option_re},
          std::tuple{&src.option_exclude, "option_exclude", &rule.exclude_re},
          std::tuple{&src.value, "value", &rule.value_re}}) {
      if (absl::Status st = compile(*re, field, out); !st.ok()) return st;
    }
    if (rule.re) {
      rule.groups = rule.re->NumberOfCapturingGroups();
      std::string err;
      if (impl->set->Add(src.pattern, &err) < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(src.file, ":", src.line, ": ", src.id, ".pattern: ", err));
      }
      impl->set_rule.push_back(static_cast<uint16_t>(r));
      impl->pattern_rules.Set(r);
    }
    for (char c : src.requires_any) {
      size_t bit = required_chars.find(c);
      if (bit == std::string::npos) {
        if (required_chars.size() == 32) {
          return absl::InvalidArgumentError(
              absl::StrCat(src.file, ":", src.line, ": ", src.id,
                           ".requires: more than 32 distinct characters in the set"));
        }
        bit = required_chars.size();
        required_chars.push_back(c);
      }
      rule.requires_bits |= uint32_t{1} << bit;
    }
    for (const std::string& k : src.keywords) keywords[absl::AsciiStrToLower(k)].Set(r);
    for (const std::string& opt : src.options) {
      const std::string spelled = src.ignore_case ? absl::AsciiStrToLower(opt) : opt;
      (src.ignore_case ? impl->options_folded : impl->options_exact)[spelled].push_back(
          static_cast<uint16_t>(r));
      impl->max_option_bytes = std::max(impl->max_option_bytes, opt.size());
    }
    if (!src.option_pattern.empty()) impl->option_pattern_rules.push_back(static_cast<uint16_t>(r));
    impl->rules.push_back(std::move(rule));
  }
  if (!impl->set_rule.empty() && !impl->set->Compile()) {
    return absl::ResourceExhaustedError(
        "redaction: RE2::Set::Compile failed (out of memory for the rule set)");
  }
  for (size_t i = 0; i < required_chars.size(); ++i) {
    impl->char_bits[static_cast<unsigned char>(required_chars[i])] |= uint32_t{1} << i;
  }
  impl->tri_bucket.assign(kTriHashes, 0);
  impl->buckets.emplace_back();  // bucket 0: none
  for (auto& [k, mask] : keywords) {
    const uint32_t tri = static_cast<uint32_t>(kLower.t[static_cast<unsigned char>(k[0])]) << 16 |
                         static_cast<uint32_t>(kLower.t[static_cast<unsigned char>(k[1])]) << 8 |
                         kLower.t[static_cast<unsigned char>(k[2])];
    const uint32_t h = TriHash(tri);
    impl->tri_bits[h >> 6] |= uint64_t{1} << (h & 63);
    if (impl->tri_bucket[h] == 0) {
      impl->tri_bucket[h] = static_cast<uint16_t>(impl->buckets.size());
      impl->buckets.emplace_back();
    }
    std::vector<Impl::Bucket>& bucket = impl->buckets[impl->tri_bucket[h]];
    auto same = std::find_if(bucket.begin(), bucket.end(),
                             [&](const Impl::Bucket& b) { return b.tri == tri; });
    if (same == bucket.end()) {
      bucket.push_back({tri, {}});
      same = bucket.end() - 1;
    }
    same->keywords.push_back({k.substr(3), mask});
  }
  impl->counts = std::make_unique<std::atomic<uint64_t>[]>(impl->rules.size());
  for (size_t i = 0; i < impl->rules.size(); ++i)
    impl->counts[i].store(0, std::memory_order_relaxed);
  return std::unique_ptr<Redactor>(new Redactor(std::move(impl)));
}

uint32_t Redactor::RedactText(std::string* s) const { return s == nullptr ? 0 : impl_->Text(s); }

RedactionReport Redactor::RedactArgv(google::protobuf::RepeatedPtrField<std::string>* args,
                                     std::string_view exe) const {
  return impl_->Argv(args, exe);
}
RedactionReport Redactor::RedactArgv(std::vector<std::string>* args, std::string_view exe) const {
  return impl_->Argv(args, exe);
}

std::string Redactor::Mark(std::string_view rule_id, std::string_view secret) const {
  return impl_->Mark(rule_id, secret);
}

std::vector<Redactor::RuleCount> Redactor::Counts() const {
  std::vector<RuleCount> out;
  out.reserve(impl_->rules.size());
  for (size_t i = 0; i < impl_->rules.size(); ++i) {
    out.push_back({impl_->rules[i].src.id, impl_->counts[i].load(std::memory_order_relaxed)});
  }
  return out;
}

size_t Redactor::rule_count() const { return impl_->rules.size(); }

// ---- events
// -----------------------------------------------------------------------------------------

RedactionReport Redactor::RedactEvent(v1::Event* ev, EventRedactOptions opts) const {
  RedactionReport rep;
  auto text = [&](std::string* s) {
    if (!s->empty()) rep.marks += impl_->Text(s);
  };
  if (opts.agent && ev->has_agent()) {
    v1::Agent* a = ev->mutable_agent();
    text(a->mutable_spiffe_id());
    text(a->mutable_principal());
    text(a->mutable_intent());
    text(a->mutable_parent_task());
    for (std::string& c : *a->mutable_chain()) text(&c);
  }
  if (ev->has_process()) {
    v1::Process* p = ev->mutable_process();
    if (p->args_size() > 0) {
      // Before exe is redacted: the option rules name programs by the executable's basename.
      rep = impl_->Argv(p->mutable_args(), p->exe());
    }
    text(p->mutable_exe());
    text(p->mutable_comm());
    text(p->mutable_filename());
    text(p->mutable_script());
    text(p->mutable_loaded());
  }
  if (ev->has_file()) {
    text(ev->mutable_file()->mutable_path());
    text(ev->mutable_file()->mutable_new_path());
  }
  if (ev->has_network()) {
    text(ev->mutable_network()->mutable_path());
    text(ev->mutable_network()->mutable_peer_path());
    text(ev->mutable_network()->mutable_host());  // a name the task asked for, as dns.query
  }
  if (ev->has_finding()) text(ev->mutable_finding()->mutable_reason());
  if (ev->has_action()) {
    text(ev->mutable_action()->mutable_result());
    text(ev->mutable_action()->mutable_reason());
  }
  if (ev->has_approval()) {
    v1::Approval* a = ev->mutable_approval();
    text(a->mutable_action());
    text(a->mutable_decided_by());
    text(a->mutable_decided_via());
    text(a->mutable_reason());
  }
  if (ev->has_task()) {
    v1::TaskInfo* t = ev->mutable_task();
    text(t->mutable_cgroup());
    text(t->mutable_workload());
    if (t->command_size() > 0) {
      RedactionReport c = impl_->Argv(t->mutable_command(), "");
      rep.marks += c.marks;
      rep.argv_marks += c.argv_marks;
      if (rep.first_argv_index < 0) {
        rep.first_argv_index = c.first_argv_index;
        rep.first_argv_rule = c.first_argv_rule;
      }
    }
    // A parameter is judged as "name=value": `--param token=X` is a secret whatever X looks like.
    for (auto& [name, value] : *t->mutable_params()) {
      if (value.empty()) continue;
      std::string kv = absl::StrCat(name, "=", value);
      if (impl_->Text(&kv) > 0) {
        rep.marks += 1;
        value = kv.substr(name.size() + 1);
      }
    }
  }
  if (ev->has_credential()) {
    text(ev->mutable_credential()->mutable_jti());
    text(ev->mutable_credential()->mutable_detail());
  }
  if (ev->has_tool()) {
    // What the MCP client and server said: a tool call's arguments carry whatever the model wrote.
    v1::Tool* t = ev->mutable_tool();
    text(t->mutable_name());
    text(t->mutable_call_id());
    text(t->mutable_arguments());
    text(t->mutable_error());
    for (std::string& c : *t->mutable_call_ids()) text(&c);
    for (std::string& c : *t->mutable_offered()) text(&c);
    for (std::string& c : *t->mutable_hidden()) text(&c);
  }
  if (ev->has_dns()) {
    // The names are the task's (and the upstream's): a secret smuggled out in a DNS label is what
    // exfiltration looks like. The reason can quote the name.
    v1::Dns* d = ev->mutable_dns();
    text(d->mutable_query());
    text(d->mutable_reason());
    for (std::string& c : *d->mutable_cnames()) text(&c);
  }
  return rep;
}

const std::vector<std::string_view>& FieldsNotRedacted() {
  static const std::vector<std::string_view> kFields = {
      // writd's own: ids it generates, RFC 3339 times, its vocabularies, the host name it runs on
      "writ.v1.Event.id",
      "writ.v1.Event.time",
      "writ.v1.Event.kind",
      "writ.v1.Event.verdict",
      "writ.v1.Event.outcome",
      "writ.v1.Event.enforcement",
      "writ.v1.Event.host",
      "writ.v1.Agent.task_id",         // t-<random hex>, generated by writd
      "writ.v1.Agent.charter",         // the operator's intent file
      "writ.v1.Agent.charter_sha256",  // a digest
      "writ.v1.File.flags",
      "writ.v1.File.syscall",
      "writ.v1.Network.family",
      "writ.v1.Network.dst_ip",
      "writ.v1.Network.hook",  // an address writd formats
      // from the intent file (the operator's), not from the task
      "writ.v1.Finding.rule",
      "writ.v1.Finding.category",
      "writ.v1.Finding.frameworks",
      "writ.v1.Finding.responses",
      "writ.v1.Finding.severity",
      "writ.v1.Action.type",
      "writ.v1.Action.target",  // a task id or a pid
      "writ.v1.Approval.id",
      "writ.v1.Approval.action_hash",
      "writ.v1.Approval.expires",
      "writ.v1.Approval.scope",
      "writ.v1.TaskInfo.reason",
      "writ.v1.Tool.status",            // writd's vocabulary
      "writ.v1.Tool.rule",              // from the intent file
      "writ.v1.Tool.arguments_sha256",  // a digest
      "writ.v1.Tool.violation_ids",     // event ids writd generated
      "writ.v1.TaskInfo.run_user",      // a name from the host's passwd, looked up by writd
      "writ.v1.TaskInfo.deadline",
      "writ.v1.TaskInfo.rung",  // writd's vocabulary: lsm or tracepoint
      "writ.v1.Credential.type",
      "writ.v1.Credential.provider",
      "writ.v1.Credential.operation",
      "writ.v1.Credential.expires",
      "writ.v1.Syscall.name",
      "writ.v1.Syscall.target",
      // DNS: writd's vocabulary (type names, verdicts, rcodes, udp/tcp), the intent's allow
      // pattern, and addresses writd formats (the answers it pinned, the resolver addressed)
      "writ.v1.Dns.qtype",
      "writ.v1.Dns.verdict",
      "writ.v1.Dns.rule",
      "writ.v1.Dns.rcode",
      "writ.v1.Dns.answers",
      "writ.v1.Dns.server",
      "writ.v1.Dns.transport",
  };
  return kFields;
}

void AppendRedactionMetrics(const Redactor& r, std::string* out) {
  absl::StrAppend(
      out,
      "# HELP writ_redactions_total Secrets replaced by a mark in events, by redaction rule.\n"
      "# TYPE writ_redactions_total counter\n");
  for (const auto& c : r.Counts()) {
    absl::StrAppend(out, "writ_redactions_total{rule=\"", A(c.rule), "\"} ", c.redactions, "\n");
  }
}

void FillSecretInArgvFinding(const RedactionReport& report, v1::Finding* f) {
  f->set_rule("writ/secret.argv");
  f->set_category("secret");
  f->set_reason(absl::StrCat(
      "a credential was passed on the command line (argument ", report.first_argv_index, ", ",
      A(report.first_argv_rule),
      report.argv_marks > 1 ? absl::StrCat(", ", report.argv_marks, " in all") : "",
      "): any process on the host can read it in /proc/<pid>/cmdline; redacted in this event"));
  f->clear_frameworks();
  f->add_frameworks("OWASP-NHI2");
  f->add_frameworks("MAESTRO-L6");
  f->clear_responses();
  f->set_severity("medium");
}

// ---- the host key
// -----------------------------------------------------------------------------------

absl::StatusOr<std::string> LoadOrCreateRedactionKey(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid() && errno == ENOENT) {
    // Created whole under a temporary name, then linked into place: a crash leaves no short key
    // file, and of two writds racing the second reads the first one's key.
    std::string key(kRedactionKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) !=
        1) {
      return absl::InternalError("redaction key: RAND_bytes failed");
    }
    const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
    ::unlink(tmp.c_str());
    Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return ErrnoStatus(errno, absl::StrCat("redaction key: create ", tmp));
    const bool written =
        ::write(out.get(), key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
        ::fsync(out.get()) == 0;
    const int werr = errno;
    out = Fd();
    if (!written) {
      ::unlink(tmp.c_str());
      return ErrnoStatus(werr, absl::StrCat("redaction key: write ", tmp));
    }
    const int rc = ::link(tmp.c_str(), path.c_str());
    const int lerr = errno;
    ::unlink(tmp.c_str());
    if (rc == 0) return key;
    if (lerr != EEXIST) return ErrnoStatus(lerr, absl::StrCat("redaction key: link ", path));
    fd = Fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  }
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("redaction key: open ", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return ErrnoStatus(errno, absl::StrCat("redaction key: stat ", path));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("redaction key ", path, ": not a regular file"));
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "redaction key ", path, ": must be owned by uid ", ::geteuid(),
        " and not readable by group or others (mode ", absl::StrFormat("%04o", st.st_mode & 07777),
        "); fix with chown/chmod 0600 or remove it to make a new key"));
  }
  if (st.st_size != static_cast<off_t>(kRedactionKeyBytes)) {
    return absl::FailedPreconditionError(absl::StrCat("redaction key ", path, ": ", st.st_size,
                                                      " bytes, expected ", kRedactionKeyBytes,
                                                      " (remove it to make a new key)"));
  }
  std::string key(kRedactionKeyBytes, '\0');
  if (::pread(fd.get(), key.data(), key.size(), 0) != static_cast<ssize_t>(key.size())) {
    return ErrnoStatus(errno, absl::StrCat("redaction key: read ", path));
  }
  return key;
}

const Redactor& DefaultRedactor() {
  static const Redactor* r = [] {
    std::string key(kRedactionKeyBytes, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size()));
    auto made = Redactor::Create(BuiltinRedactionRules(), key);
    if (!made.ok()) std::abort();  // the built-in set is checked by the unit tests
    return made->release();
  }();
  return *r;
}

}  // namespace writ::creds
