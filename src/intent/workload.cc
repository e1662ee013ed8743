#include "intent/workload.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace writ::intent {

namespace {
constexpr char kKnown[] =
    "unix:path:<exe>, unix:sha256:<hex>, unix:uid:<n>, cgroup:path:<glob>, systemd:id:<unit>";
}  // namespace

absl::StatusOr<Selector> ParseSelector(absl::string_view s) {
  // type:key:value, the value may itself contain ':' (cgroup paths rarely do, but allow it).
  std::vector<absl::string_view> parts = absl::StrSplit(s, absl::MaxSplits(':', 2));
  if (parts.size() != 3 || parts[2].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad selector \"", s, "\" (expected type:key:value, one of ", kKnown, ")"));
  }
  const std::string kind = absl::StrCat(parts[0], ":", parts[1]);
  absl::string_view v = parts[2];
  Selector sel;
  sel.value = std::string(v);
  if (kind == "unix:path") {
    sel.type = Selector::Type::kExePath;
    auto g = Glob::ParsePath(v);
    if (!g.ok() || g->kind() != Glob::Kind::kExact) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unix:path needs an absolute, normalised exe path without wildcards, got \"", v, "\""));
    }
  } else if (kind == "unix:sha256") {
    sel.type = Selector::Type::kSha256;
    sel.value = absl::AsciiStrToLower(v);
    if (v.size() != 64 || !std::all_of(v.begin(), v.end(), [](char c) {
          return absl::ascii_isxdigit(static_cast<unsigned char>(c));
        })) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix:sha256 needs 64 hex digits, got \"", v, "\" (", v.size(), " chars)"));
    }
  } else if (kind == "unix:uid") {
    sel.type = Selector::Type::kUid;
    if (!absl::SimpleAtoi(v, &sel.uid) || !absl::ascii_isdigit(static_cast<unsigned char>(v[0]))) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix:uid needs a numeric uid (0..4294967295), got \"", v, "\""));
    }
  } else if (kind == "cgroup:path") {
    sel.type = Selector::Type::kCgroupPath;
    auto g = Glob::ParsePath(v);
    if (!g.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup:path \"", v, "\": ", g.status().message()));
    }
    sel.glob = *std::move(g);
  } else if (kind == "systemd:id") {
    sel.type = Selector::Type::kSystemdId;
    if (v.find('/') != absl::string_view::npos ||
        !(absl::EndsWith(v, ".service") || absl::EndsWith(v, ".scope"))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "systemd:id needs a unit name ending in .service or .scope, got \"", v, "\""));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown selector \"", kind, "\" (expected one of ", kKnown, ")"));
  }
  return sel;
}

std::string SystemdUnitOf(absl::string_view cgroup_path) {
  std::string unit;
  for (absl::string_view c : absl::StrSplit(cgroup_path, '/', absl::SkipEmpty())) {
    if (absl::EndsWith(c, ".service") || absl::EndsWith(c, ".scope")) unit = std::string(c);
  }
  return unit;
}

absl::StatusOr<WorkloadMatcher> WorkloadMatcher::Build(
    const std::vector<writ::v1::Workload>& workloads) {
  WorkloadMatcher m;
  for (const auto& w : workloads) {
    Entry e;
    e.spec = w;
    for (const auto& s : w.selectors()) {
      auto sel = ParseSelector(s);
      if (!sel.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("workload ", w.name(), ": ", sel.status().message()));
      }
      e.selectors.push_back(*std::move(sel));
    }
    if (e.selectors.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("workload ", w.name(), ": no selectors"));
    }
    // The cheap selectors first, the exe hash last (it reads the whole file).
    std::stable_sort(
        e.selectors.begin(), e.selectors.end(), [](const Selector& a, const Selector& b) {
          return (a.type == Selector::Type::kSha256) < (b.type == Selector::Type::kSha256);
        });
    m.entries_.push_back(std::move(e));
  }
  return m;
}

const writ::v1::Workload* WorkloadMatcher::Match(const ProcessFacts& f) const {
  std::optional<std::string> sha;  // computed at most once per candidate
  for (const Entry& e : entries_) {
    bool ok = true;
    for (const Selector& s : e.selectors) {
      switch (s.type) {
        case Selector::Type::kExePath:
          ok = f.exe == s.value;
          break;
        case Selector::Type::kUid:
          ok = f.uid == s.uid;
          break;
        case Selector::Type::kCgroupPath:
          ok = s.glob->Match(f.cgroup_path);
          break;
        case Selector::Type::kSystemdId:
          ok = f.systemd_unit == s.value;
          break;
        case Selector::Type::kSha256:
          if (!sha) sha = f.sha256 ? f.sha256() : std::string();
          ok = !sha->empty() && *sha == s.value;
          break;
      }
      if (!ok) break;
    }
    if (ok) return &e.spec;
  }
  return nullptr;
}

AdoptKernelKeys WorkloadMatcher::kernel_keys() const {
  AdoptKernelKeys k;
  for (const Entry& e : entries_) {
    const Selector* exe = nullptr;
    const Selector* uid = nullptr;
    for (const Selector& s : e.selectors) {
      if (s.type == Selector::Type::kExePath && !exe) exe = &s;
      if (s.type == Selector::Type::kUid && !uid) uid = &s;
    }
    if (exe) {
      if (std::find(k.exe_paths.begin(), k.exe_paths.end(), exe->value) == k.exe_paths.end()) {
        k.exe_paths.push_back(exe->value);
      }
    } else if (uid) {
      if (std::find(k.uids.begin(), k.uids.end(), uid->uid) == k.uids.end())
        k.uids.push_back(uid->uid);
    } else {
      k.any = true;
    }
  }
  return k;
}

}  // namespace writ::intent
