// Loader: YAML/JSON files → validated writ.v1.Intent. Two passes: generic reflection parse (unknown
// keys, types) then semantic checks (globs, CIDRs, ports, params, durations...). Every error is
// collected; any error means nothing is returned, so a reload is all-or-nothing.
#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dns/name_policy.h"
#include "identity/spiffe_id.h"
#include "intent/glob.h"
#include "intent/intent.h"
#include "intent/parse_util.h"
#include "intent/tools.h"
#include "intent/workload.h"
#include "intent/yaml_guard.h"
#include "intent/yaml_proto.h"
#include "util/status_macros.h"
#include "util/util.h"
#include "yaml-cpp/yaml.h"

namespace writ::intent {

const writ::v1::Intent* PolicySet::Find(absl::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &intents_[it->second];
}

int PolicySet::LineOf(absl::string_view name, absl::string_view field_path) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return 0;
  const auto& lines = lines_[it->second];
  auto l = lines.find(field_path);
  return l == lines.end() ? 0 : l->second;
}

namespace {

constexpr absl::string_view kApiVersion = "writ.dev/v1";
const char* const kEventKinds[] = {"exec", "open",       "connect",  "link",     "fork",
                                   "exit", "task_start", "task_end", "tool_call"};

bool ValidName(absl::string_view n) {
  if (n.empty() || n.size() > 63 || n.front() == '-' || n.back() == '-') return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// Line of a field path, or of its closest recorded ancestor (a missing key reports its parent).
int LineFor(const absl::flat_hash_map<std::string, int>& lines, const std::string& path,
            int doc_line) {
  for (std::string p = path; !p.empty();) {
    if (auto it = lines.find(p); it != lines.end()) return it->second;
    size_t cut = p.find_last_of(".[");
    p = cut == std::string::npos ? "" : p.substr(0, cut);
  }
  return doc_line;
}

// "FILE:LINE: field.path: message", the one shape of every loader error (intents and workloads).
std::string FieldError(const std::string& file, const absl::flat_hash_map<std::string, int>& lines,
                       int doc_line, const std::string& path, const std::string& msg) {
  return absl::StrCat(file, ":", LineFor(lines, path, doc_line), ": ", path, ": ", msg);
}

// Semantic checks on one parsed intent. `lines` maps field paths to lines.
class Validator {
 public:
  Validator(const writ::v1::Intent& in, const std::string& file, int doc_line,
            const absl::flat_hash_map<std::string, int>& lines, std::vector<std::string>* errors)
      : in_(in), file_(file), doc_line_(doc_line), lines_(lines), errors_(errors) {}

  void Run() {
    if (!lines_.contains("apiVersion")) {
      Err("apiVersion", absl::StrCat("missing (expected ", kApiVersion, ")"));
    } else if (in_.api_version() != kApiVersion) {
      Err("apiVersion",
          absl::StrCat("unsupported \"", in_.api_version(), "\" (expected ", kApiVersion, ")"));
    }
    if (!lines_.contains("kind")) {
      Err("kind", "missing (expected Intent)");
    } else if (in_.kind() != "Intent") {
      Err("kind", absl::StrCat("unknown kind \"", in_.kind(), "\" (expected Intent or Workloads)"));
    }
    if (in_.name().empty()) {
      Err("name", "missing");
    } else if (!ValidName(in_.name())) {
      Err("name", absl::StrCat("bad name \"", in_.name(),
                               "\" (lowercase letters, digits and '-', at most 63)"));
    }
    for (int i = 0; i < in_.frameworks_size(); ++i) {
      if (in_.frameworks(i).empty()) Err(Idx("frameworks", i), "empty framework id");
    }
    for (const auto& [pname, spec] : in_.params()) {
      const std::string p = absl::StrCat("params.", pname);
      if (!ValidParamName(pname)) Err(p, "bad parameter name (letters, digits, '_')");
      if (spec.type().empty()) {
        Err(p + ".type", "missing (path, string, int or bool)");
      } else if (spec.type() != "path" && spec.type() != "string" && spec.type() != "int" &&
                 spec.type() != "bool") {
        Err(p + ".type", absl::StrCat("unknown type \"", spec.type(),
                                      "\" (expected path, string, int or bool)"));
      }
      if (!spec.default_().empty()) {
        if (spec.required()) Err(p + ".default", "a required parameter cannot have a default");
        if (auto st = CheckParamValue(spec.type(), spec.default_()); !st.ok()) {
          Err(p + ".default", std::string(st.message()));
        }
      }
    }
    if (in_.has_exec()) {
      Patterns("exec.allow", in_.exec().allow());
      Patterns("exec.deny", in_.exec().deny());
    }
    if (in_.has_files()) {
      Patterns("files.read", in_.files().read());
      Patterns("files.write", in_.files().write());
      Patterns("files.deny", in_.files().deny());
    }
    if (in_.has_network()) {
      NetRules("network.connect.allow", in_.network().connect().allow());
      NetRules("network.connect.deny", in_.network().connect().deny());
      const auto& dns = in_.network().dns().allow();
      for (int i = 0; i < dns.size(); ++i) {
        const std::string p = Idx("network.dns.allow", i);
        if (!Refs(p, dns.Get(i)) || dns.Get(i).find("${") != std::string::npos) continue;
        if (auto np = dns::NamePattern::Parse(dns.Get(i)); !np.ok())
          Err(p, std::string(np.status().message()));
      }
      UnixNames("network.unix.allow", in_.network().unix().allow());
      UnixNames("network.unix.deny", in_.network().unix().deny());
    }
    if (in_.has_limits()) {
      const auto& l = in_.limits();
      if (!l.ttl().empty() && Refs("limits.ttl", l.ttl())) Duration("limits.ttl", l.ttl());
      if (!l.hours().empty() && Refs("limits.hours", l.hours())) {
        if (auto h = ParseHours(l.hours()); !h.ok())
          Err("limits.hours", std::string(h.status().message()));
      }
      if (l.max_processes() < 0) Err("limits.max_processes", "must be >= 0");
    }
    for (int i = 0; i < in_.approval_size(); ++i) {
      const auto& a = in_.approval(i);
      const std::string p = Idx("approval", i);
      if (a.exec().empty()) {
        Err(p + ".exec", "missing: an approval rule names the program (glob)");
      } else {
        Pattern(p + ".exec", a.exec());
      }
      for (int j = 0; j < a.args_size(); ++j) Refs(Idx(p + ".args", j), a.args(j));
      if (const std::string& sub = a.subcommand(); !sub.empty() && Refs(p + ".subcommand", sub)) {
        if (sub == "**") {
          Err(p + ".subcommand",
              "\"**\" is not a subcommand (leave subcommand out to ask for every invocation)");
        } else if (sub[0] == '-') {
          Err(p + ".subcommand",
              absl::StrCat("\"", sub,
                           "\" starts with '-': options are skipped when looking for the "
                           "subcommand, so it would never match (use args: for an option)"));
        }
      }
      if (!a.timeout().empty()) Duration(p + ".timeout", a.timeout());
    }
    for (int i = 0; i < in_.on_violation_size(); ++i) {
      const auto& r = in_.on_violation(i);
      if (r != "alert" && r != "kill" && r != "freeze" && r != "revoke") {
        Err(Idx("on_violation", i),
            absl::StrCat("unknown response \"", r, "\" (expected alert, kill, freeze or revoke)"));
      }
    }
    Credentials();
    if (in_.has_tools()) {
      ValidateToolRules(in_.tools(),
                        [this](const std::string& f, const std::string& m) { Err(f, m); });
      for (int i = 0; i < in_.tools().during_size(); ++i) {
        const auto& d = in_.tools().during(i);
        const std::string p = Idx("tools.during", i);
        Patterns(p + ".exec.allow", d.exec().allow());
        Patterns(p + ".exec.deny", d.exec().deny());
        Patterns(p + ".files.read", d.files().read());
        Patterns(p + ".files.write", d.files().write());
        Patterns(p + ".files.deny", d.files().deny());
        NetRules(p + ".network.connect.allow", d.network().connect().allow());
        NetRules(p + ".network.connect.deny", d.network().connect().deny());
      }
    }
    if (!in_.mode().empty() && in_.mode() != "monitor" && in_.mode() != "enforce") {
      Err("mode", absl::StrCat("unknown mode \"", in_.mode(), "\" (expected monitor or enforce)"));
    }
    const auto& sev = in_.severity();
    if (!sev.empty() && sev != "low" && sev != "medium" && sev != "high" && sev != "critical") {
      Err("severity",
          absl::StrCat("unknown severity \"", sev, "\" (expected low, medium, high or critical)"));
    }
    for (int i = 0; i < in_.tests_size(); ++i) Test(i);
  }

 private:
  static std::string Idx(absl::string_view p, int i) { return absl::StrCat(p, "[", i, "]"); }

  void Err(const std::string& path, const std::string& msg) {
    errors_->push_back(FieldError(file_, lines_, doc_line_, path, msg));
  }

  // Checks ${...} references; false when there was an error.
  bool Refs(const std::string& path, const std::string& s) {
    auto refs = ParamRefs(s);
    if (!refs.ok()) {
      Err(path, std::string(refs.status().message()));
      return false;
    }
    bool ok = true;
    for (const auto& r : *refs) {
      if (!in_.params().contains(r)) {
        std::vector<std::string> names;
        for (const auto& [n, spec] : in_.params()) names.push_back(n);
        std::sort(names.begin(), names.end());
        Err(path, absl::StrCat("unknown parameter ${", r, "} (declared: ",
                               names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
        ok = false;
      }
    }
    return ok;
  }

  void Pattern(const std::string& path, const std::string& s) {
    if (!Refs(path, s)) return;
    // Validate the shape with stand-in values: a reference at the start stands for an absolute
    // path.
    absl::flat_hash_map<std::string, std::string> stand_in;
    for (const auto& [n, spec] : in_.params()) stand_in[n] = spec.type() == "path" ? "/p" : "p";
    bool unset = false;
    std::string sub = SubstituteParams(s, stand_in, &unset);
    if (absl::StartsWith(s, "${") && !sub.empty() && sub[0] != '/') sub.insert(0, "/");
    if (auto g = Glob::ParsePath(sub); !g.ok()) {
      // Report in terms of what the user wrote.
      Err(path, s == sub ? std::string(g.status().message())
                         : absl::StrCat(g.status().message(), " (after ${...} stand-ins, from \"",
                                        s, "\")"));
    }
  }

  void Patterns(const std::string& path,
                const google::protobuf::RepeatedPtrField<std::string>& list) {
    for (int i = 0; i < list.size(); ++i) Pattern(Idx(path, i), list.Get(i));
  }

  // Socket paths are path globs; "@name" an abstract name (argument glob after the '@').
  void UnixNames(const std::string& path,
                 const google::protobuf::RepeatedPtrField<std::string>& list) {
    for (int i = 0; i < list.size(); ++i) {
      const std::string p = Idx(path, i);
      const std::string& s = list.Get(i);
      if (!s.empty() && s[0] == '@') {
        if (Refs(p, s) && s.size() == 1) {
          Err(p, "empty abstract socket name: write @NAME (the name after the leading NUL)");
        }
      } else if (!s.empty() && s[0] != '/' && !absl::StartsWith(s, "${")) {
        Err(p,
            absl::StrCat(
                "\"", s,
                "\" is neither an absolute socket path (/run/...) nor an abstract name (@name)"));
      } else {
        Pattern(p, s);
      }
    }
  }

  void Duration(const std::string& path, const std::string& s) {
    if (!Refs(path, s)) return;
    if (s.find("${") != std::string::npos) return;  // checked when compiled
    if (auto d = ParseDurationStrict(s); !d.ok()) Err(path, std::string(d.status().message()));
  }

  void NetRules(const std::string& path,
                const google::protobuf::RepeatedPtrField<writ::v1::NetRule>& l) {
    for (int i = 0; i < l.size(); ++i) {
      const auto& r = l.Get(i);
      const std::string p = Idx(path, i);
      if (r.cidr().empty() == r.host().empty()) {
        Err(p, "exactly one of cidr or host is required");
      }
      if (!r.cidr().empty() && Refs(p + ".cidr", r.cidr()) &&
          r.cidr().find("${") == std::string::npos) {
        if (auto c = ParseCidr(r.cidr()); !c.ok())
          Err(p + ".cidr", std::string(c.status().message()));
      }
      if (!r.host().empty() && Refs(p + ".host", r.host()) &&
          r.host().find("${") == std::string::npos && r.host().find('*') != std::string::npos) {
        if (auto np = dns::NamePattern::Parse(r.host()); !np.ok()) {
          Err(p + ".host", std::string(np.status().message()));
        }
      } else if (!r.host().empty() && r.host().find("${") == std::string::npos) {
        const bool ok = std::all_of(r.host().begin(), r.host().end(), [](char c) {
          return absl::ascii_isalnum(c) || c == '.' || c == '-' || c == ':' || c == '_';
        });
        if (!ok) {
          Err(p + ".host", absl::StrCat("bad host name \"", r.host(), "\""));
        } else if (!ParseCidr(r.host()).ok()) {
          if (auto np = dns::NamePattern::Parse(r.host()); !np.ok()) {
            Err(p + ".host", std::string(np.status().message()));
          }
        }
      }
      for (int j = 0; j < r.ports_size(); ++j) {
        const std::string pp = Idx(p + ".ports", j);
        if (Refs(pp, r.ports(j)) && r.ports(j).find("${") == std::string::npos) {
          if (auto pr = ParsePortRange(r.ports(j)); !pr.ok())
            Err(pp, std::string(pr.status().message()));
        }
      }
    }
  }

  // Shape only: whether the provider exists is the daemon's config (CheckCredentialProviders).
  void Credentials() {
    absl::flat_hash_map<std::string, int> seen;
    for (int i = 0; i < in_.credentials_size(); ++i) {
      const auto& c = in_.credentials(i);
      const std::string p = Idx("credentials", i);
      if (c.provider().empty()) {
        Err(p + ".provider", "missing: the name of a provider in writd's credentials.providers");
        continue;
      }
      const bool name_ok =
          c.provider().size() <= 63 &&
          std::all_of(c.provider().begin(), c.provider().end(), [](char ch) {
            return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
          });
      if (!name_ok) {
        Err(p + ".provider",
            absl::StrCat("bad provider name \"", c.provider(),
                         "\" (lowercase letters, digits, '-' and '_', at most 63)"));
      }
      if (auto [it, fresh] = seen.try_emplace(c.provider(), i); !fresh) {
        Err(p + ".provider",
            absl::StrCat("provider \"", c.provider(), "\" is already requested by credentials[",
                         it->second, "]"));
      }
      for (int j = 0; j < c.grants_size(); ++j) {
        if (c.grants(j).empty()) Err(Idx(p + ".grants", j), "empty grant");
      }
    }
  }

  void Test(int i) {
    const auto& t = in_.tests(i);
    const std::string p = Idx("tests", i);
    if (!t.has_event()) {
      Err(p + ".event", "missing");
    } else if (t.event().kind().empty()) {
      Err(p + ".event.kind", "missing");
    } else if (std::find(std::begin(kEventKinds), std::end(kEventKinds), t.event().kind()) ==
               std::end(kEventKinds)) {
      Err(p + ".event.kind", absl::StrCat("unknown event kind \"", t.event().kind(),
                                          "\" (expected exec, open, connect, fork, exit, ...)"));
    }
    if (t.expect().empty()) {
      Err(p + ".expect", "missing (allow, violation, needs_approval or not_judged)");
    } else if (t.expect() != "allow" && t.expect() != "violation" &&
               t.expect() != "needs_approval" && t.expect() != "not_judged") {
      Err(p + ".expect",
          absl::StrCat("unknown verdict \"", t.expect(),
                       "\" (expected allow, violation, needs_approval or not_judged)"));
    }
    for (const auto& [k, v] : t.params()) {
      auto it = in_.params().find(k);
      if (it == in_.params().end()) {
        Err(absl::StrCat(p, ".params.", k), absl::StrCat("unknown parameter \"", k, "\""));
      } else if (auto st = CheckParamValue(it->second.type(), v); !st.ok()) {
        Err(absl::StrCat(p, ".params.", k), std::string(st.message()));
      }
    }
    if (t.has_event() && !t.event().time().empty()) {
      absl::Time at;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, t.event().time(), &at, &err)) {
        Err(p + ".event.time", absl::StrCat("bad RFC 3339 time \"", t.event().time(), "\""));
      }
    }
  }

  const writ::v1::Intent& in_;
  const std::string& file_;
  int doc_line_;
  const absl::flat_hash_map<std::string, int>& lines_;
  std::vector<std::string>* errors_;
};

}  // namespace

class Loader {
 public:
  void AddText(absl::string_view text, const std::string& file) {
    // Hostile nesting or alias chains are refused before yaml-cpp recurses into them.
    if (std::optional<std::string> bad = CheckYamlBounds(text, file)) {
      errors_.push_back(*std::move(bad));
      return;
    }
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(std::string(text));
    } catch (const YAML::Exception& e) {  // yaml-cpp throws; keep it at this edge
      errors_.push_back(absl::StrCat(file, ":", e.mark.line + 1, ": yaml: ", e.msg));
      return;
    }
    for (const YAML::Node& doc : docs) {
      if (doc.IsNull()) continue;  // empty document ("---" at the end)
      if (doc.IsMap() && doc["kind"] && doc["kind"].IsScalar() &&
          doc["kind"].Scalar() == "Workloads") {
        AddWorkloads(doc, file);
        continue;
      }
      writ::v1::Intent in;
      absl::flat_hash_map<std::string, int> lines;
      const size_t first_error = errors_.size();
      if (!ParseDocument(doc, &in, file, &lines)) continue;
      const int doc_line = YamlLine(doc);
      in.mutable_source()->set_file(file);
      in.mutable_source()->set_line(doc_line);
      in.mutable_source()->set_sha256(Sha256Hex(text));
      // Semantic checks only make sense on a well-typed intent, but unknown keys should not hide
      // the rest: run them unless the document itself was not a mapping.
      if (doc.IsMap()) Validator(in, file, doc_line, lines, &errors_).Run();
      // Syntax and semantic passes interleave lines; report in file order like a compiler.
      auto line_of = [&file](const std::string& e) {
        int line = 0;
        (void)absl::SimpleAtoi(
            e.substr(file.size() + 1, e.find(':', file.size() + 1) - file.size() - 1), &line);
        return line;
      };
      std::stable_sort(
          errors_.begin() + first_error, errors_.end(),
          [&](const std::string& a, const std::string& b) { return line_of(a) < line_of(b); });
      if (!in.name().empty()) {
        auto [it, fresh] = names_.try_emplace(in.name(), absl::StrCat(file, ":", lines["name"]));
        if (!fresh) {
          errors_.push_back(absl::StrCat(file, ":", lines["name"],
                                         ": name: duplicate intent name \"", in.name(),
                                         "\" (first defined at ", it->second, ")"));
          continue;
        }
      }
      set_.by_name_[in.name()] = set_.intents_.size();
      set_.intents_.push_back(std::move(in));
      set_.lines_.push_back(std::move(lines));
    }
  }

  void AddFile(const std::string& path) {
    std::ifstream f(path);
    if (!f) {
      errors_.push_back(absl::StrCat(path, ":0: (file): cannot read: ", std::strerror(errno)));
      return;
    }
    // A policy file is a few kilobytes; a huge one is a mistake or an attack on the parser, refused
    // before yaml-cpp sees it.
    constexpr std::streamoff kMaxPolicyFileBytes = 1 << 20;
    f.seekg(0, std::ios::end);
    std::streamoff size = f.tellg();
    f.seekg(0, std::ios::beg);
    if (size > kMaxPolicyFileBytes) {
      errors_.push_back(
          absl::StrCat(path, ":1: (file): ", size, " bytes; policy files are limited to 1 MiB"));
      return;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    AddText(ss.str(), path);
  }

  // A `kind: Workloads` document. Everything but the intent references is checked here; those are
  // checked in Finish, when every file's intents are known.
  void AddWorkloads(const YAML::Node& doc, const std::string& file) {
    writ::v1::WorkloadSet ws;
    auto lines = std::make_shared<absl::flat_hash_map<std::string, int>>();
    if (!ParseDocument(doc, &ws, file, lines.get())) return;
    const int doc_line = YamlLine(doc);
    auto err = [&](const std::string& path, const std::string& msg) {
      errors_.push_back(FieldError(file, *lines, doc_line, path, msg));
    };
    if (!lines->contains("apiVersion")) {
      err("apiVersion", absl::StrCat("missing (expected ", kApiVersion, ")"));
    } else if (ws.api_version() != kApiVersion) {
      err("apiVersion",
          absl::StrCat("unsupported \"", ws.api_version(), "\" (expected ", kApiVersion, ")"));
    }
    if (!lines->contains("workloads")) err("workloads", "missing (a list of workload entries)");
    for (int i = 0; i < ws.workloads_size(); ++i) {
      writ::v1::Workload* w = ws.mutable_workloads(i);
      const std::string p = absl::StrCat("workloads[", i, "]");
      if (w->name().empty()) {
        err(p + ".name", "missing");
      } else if (!ValidName(w->name())) {
        err(p + ".name", absl::StrCat("bad name \"", w->name(),
                                      "\" (lowercase letters, digits and '-', at most 63)"));
      } else if (auto [it, fresh] = workload_names_.try_emplace(
                     w->name(), absl::StrCat(file, ":", LineFor(*lines, p + ".name", doc_line)));
                 !fresh) {
        err(p + ".name", absl::StrCat("duplicate workload name \"", w->name(),
                                      "\" (first defined at ", it->second, ")"));
      }
      if (w->spiffe_id().empty()) {
        err(p + ".spiffe_id", "missing: the identity the adopted task gets");
      } else if (auto id = identity::ParseSpiffeId(w->spiffe_id()); !id.ok()) {
        err(p + ".spiffe_id", std::string(id.status().message()));
      }
      if (w->intent().empty())
        err(p + ".intent", "missing: the intent the adopted task runs under");
      if (w->selectors().empty()) {
        err(p + ".selectors", "missing or empty: a workload needs at least one selector");
      }
      for (int j = 0; j < w->selectors_size(); ++j) {
        if (auto sel = ParseSelector(w->selectors(j)); !sel.ok()) {
          err(absl::StrCat(p, ".selectors[", j, "]"), std::string(sel.status().message()));
        }
      }
      w->mutable_source()->set_file(file);
      w->mutable_source()->set_line(LineFor(*lines, p, doc_line));
      pending_workloads_.push_back({*w, file, p, doc_line, lines});
    }
  }

  absl::StatusOr<PolicySet> Finish() {
    // Workload → intent references and parameters, now that every intent is known.
    for (const PendingWorkload& pw : pending_workloads_) {
      auto err = [&](const std::string& path, const std::string& msg) {
        errors_.push_back(FieldError(pw.file, *pw.lines, pw.doc_line, path, msg));
      };
      const writ::v1::Workload& w = pw.w;
      if (w.intent().empty()) continue;  // reported already
      const writ::v1::Intent* in = set_.Find(w.intent());
      if (in == nullptr) {
        std::vector<std::string> names;
        for (const auto& i : set_.intents_) names.push_back(i.name());
        std::sort(names.begin(), names.end());
        err(pw.path + ".intent",
            absl::StrCat("unknown intent \"", w.intent(),
                         "\" (loaded: ", names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
        continue;
      }
      for (const auto& [k, v] : w.params()) {
        auto it = in->params().find(k);
        if (it == in->params().end()) {
          err(absl::StrCat(pw.path, ".params.", k),
              absl::StrCat("intent ", in->name(), " has no parameter \"", k, "\""));
        } else if (auto st = CheckParamValue(it->second.type(), v); !st.ok()) {
          err(absl::StrCat(pw.path, ".params.", k), std::string(st.message()));
        }
      }
      for (const auto& [k, spec] : in->params()) {
        if (spec.required() && !w.params().contains(k)) {
          err(pw.path + ".params",
              absl::StrCat("missing required parameter \"", k, "\" of intent ", in->name()));
        }
      }
      set_.workloads_.push_back(w);
    }
    if (!errors_.empty()) {
      // One error per line, nothing else, so tools can parse FILE:LINE: like compiler output.
      return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
    }
    return std::move(set_);
  }

 private:
  // One document into `msg` (intent or workload set), recording each field's line in `lines`.
  // Schema errors are collected; false when yaml-cpp threw and the document is abandoned.
  bool ParseDocument(const YAML::Node& doc, google::protobuf::Message* msg, const std::string& file,
                     absl::flat_hash_map<std::string, int>* lines) {
    YamlParseState st{file, &errors_, lines};
    try {
      ParseYamlMessage(doc, msg, "", st);
    } catch (const YAML::Exception& e) {  // yaml-cpp throws; keep it at this edge
      errors_.push_back(absl::StrCat(file, ":", e.mark.line + 1, ": yaml: ", e.msg));
      return false;
    }
    return true;
  }

  struct PendingWorkload {
    writ::v1::Workload w;
    std::string file;
    std::string path;  // "workloads[i]"
    int doc_line;
    std::shared_ptr<absl::flat_hash_map<std::string, int>> lines;
  };
  PolicySet set_;
  std::vector<std::string> errors_;
  absl::flat_hash_map<std::string, std::string> names_;
  absl::flat_hash_map<std::string, std::string> workload_names_;
  std::vector<PendingWorkload> pending_workloads_;
};

absl::StatusOr<PolicySet> LoadPolicyText(absl::string_view text, const std::string& filename) {
  Loader l;
  l.AddText(text, filename);
  return l.Finish();
}

absl::StatusOr<PolicySet> LoadPolicyFiles(const std::vector<std::string>& files) {
  Loader l;
  for (const auto& f : files) l.AddFile(f);
  return l.Finish();
}

absl::StatusOr<PolicySet> LoadPolicyDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return writ::ErrnoStatus(errno, absl::StrCat("open policy dir ", dir));
  std::vector<std::string> files;
  while (dirent* e = readdir(d)) {
    absl::string_view n = e->d_name;
    // writd.yaml is the daemon's own config (another module's loader), not an intent file.
    if (n.empty() || n[0] == '.' || n == "writd.yaml") continue;
    if (absl::EndsWith(n, ".yaml") || absl::EndsWith(n, ".yml") || absl::EndsWith(n, ".json")) {
      files.push_back(absl::StrCat(dir, "/", n));
    }
  }
  closedir(d);
  std::sort(files.begin(), files.end());  // deterministic "first defined at"
  return LoadPolicyFiles(files);
}

absl::Status CheckCredentialProviders(
    const PolicySet& set, const absl::flat_hash_map<std::string, std::string>& providers,
    const std::function<absl::Status(const std::string& type, const std::string& grant)>&
        check_grant) {
  std::vector<std::string> names;
  for (const auto& [n, t] : providers) names.push_back(n);
  std::sort(names.begin(), names.end());
  std::vector<std::string> errors;
  for (const auto& in : set.intents()) {
    auto where = [&](const std::string& field) {
      int line = set.LineOf(in.name(), field);
      return absl::StrCat(in.source().file(), ":", line ? line : in.source().line(), ": ", field,
                          ": ");
    };
    for (int i = 0; i < in.credentials_size(); ++i) {
      const auto& c = in.credentials(i);
      const std::string p = absl::StrCat("credentials[", i, "]");
      auto it = providers.find(c.provider());
      if (it == providers.end()) {
        errors.push_back(absl::StrCat(where(p + ".provider"), "unknown provider \"", c.provider(),
                                      "\" (configured in writd's credentials.providers: ",
                                      names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
        continue;
      }
      for (int j = 0; j < c.grants_size(); ++j) {
        const std::string g = absl::StrCat(p, ".grants[", j, "]");
        if (it->second != "postgres") {
          errors.push_back(absl::StrCat(where(g), "grants apply to postgres providers; \"",
                                        c.provider(), "\" is ", it->second));
        } else if (check_grant) {
          if (absl::Status st = check_grant(it->second, c.grants(j)); !st.ok()) {
            errors.push_back(absl::StrCat(where(g), st.message()));
          }
        }
      }
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

}  // namespace writ::intent
