// writ::intent — the intent policy language and the hot-path engine.
//
// Owns: loading intent files (YAML/JSON) into writ.v1.Intent with precise FILE:LINE: field: errors,
// compiling an intent + bound parameters into flat matching tables (CompiledIntent), judging events
// (Evaluate, allocation-free), explaining verdicts, running the policy files' own `tests:`, and
// suggesting a least-privilege intent from recorded events. See docs/policy.md for the language.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dns/name_policy.h"
#include "intent/glob.h"
#include "writ/event_kind.h"
#include "writ/v1/event.pb.h"
#include "writ/v1/policy.pb.h"

namespace writ::intent {

class ToolPolicy;  // intent/tools.h

// ---- loading
// --------------------------------------------------------------------------------------

// Every intent of a policy directory, validated. Immutable once loaded; a reload builds a new one
// and swaps it in, so a bad file never half-applies.
class PolicySet {
 public:
  const std::vector<writ::v1::Intent>& intents() const { return intents_; }
  // nullptr when no intent has that name.
  const writ::v1::Intent* Find(absl::string_view name) const;
  // Line of a field path (e.g. "files.deny[0]") inside intent `name`, 0 when unknown.
  int LineOf(absl::string_view name, absl::string_view field_path) const;
  // `kind: Workloads` entries (agents writ did not launch, adopted by selectors), in file order;
  // each names an intent of this set and carries valid parameters for it.
  const std::vector<writ::v1::Workload>& workloads() const { return workloads_; }

 private:
  friend class Loader;
  std::vector<writ::v1::Intent> intents_;
  absl::flat_hash_map<std::string, size_t> by_name_;
  std::vector<absl::flat_hash_map<std::string, int>> lines_;  // parallel to intents_
  std::vector<writ::v1::Workload> workloads_;
};

// Loads every *.yaml, *.yml and *.json file of `dir` (not recursive). Any error = nothing loaded:
// the status (InvalidArgument) message lists ALL errors, one per line and nothing else, each
// exactly "FILE:LINE: field.path: message" (yaml syntax errors use the field "yaml"). writd.yaml
// (the daemon's own config, not an intent file) is skipped.
absl::StatusOr<PolicySet> LoadPolicyDir(const std::string& dir);
// The same for an explicit list of files (e.g. `writ policy check f.yaml`).
absl::StatusOr<PolicySet> LoadPolicyFiles(const std::vector<std::string>& files);
// Parses `text` as if it were file `filename` (tests, stdin, the API). Several documents allowed.
absl::StatusOr<PolicySet> LoadPolicyText(absl::string_view text, const std::string& filename);

// The intents' `credentials:` against the providers writd is configured with (name -> type): an
// unknown provider, or grants for a provider that takes none, is an error in the same "FILE:LINE:
// field: message" form, all errors one per line. `check_grant(type, grant)` validates a grant's
// shape (may be empty). The loader cannot do this itself: providers are the daemon's config, not
// the policy directory's.
absl::Status CheckCredentialProviders(
    const PolicySet& set, const absl::flat_hash_map<std::string, std::string>& providers,
    const std::function<absl::Status(const std::string& type, const std::string& grant)>&
        check_grant);

// Rules that load without error but can never take effect, or that an agent steps around by how it
// spells a command, one line each: "FILE:LINE: field: warning: message" (`writ policy check` prints
// them; they fail nothing). An approval rule no exec reaches (exec.deny takes the program first, an
// earlier approval asks for every invocation of it, a duplicate), `args: []` (asks only for a bare
// invocation), a literal first argument that options before it skip (use `subcommand:`), duplicate
// list entries, allow rules a deny rule always wins over, and exec or approval paths that are
// symlinks on this host (exec rules match the resolved program). Patterns with ${param} are skipped
// where their value matters.
std::vector<std::string> PolicyWarnings(const PolicySet& set);

// ---- compiled form
// --------------------------------------------------------------------------------

enum class Category : uint8_t { kExec, kFile, kNetwork, kLimits, kApproval };
const char* CategoryName(Category c);  // exec, file, network, limits, approval

// One rule of a compiled intent. Lives inside CompiledIntent; verdicts point at it.
struct Rule {
  std::string id;  // stable: "<intent>/files.deny[0]", "<intent>/exec.default", ...
  Category category;
  std::string reason;    // human text without the event's own path/address (caller adds those)
  std::string pattern;   // the pattern after parameter substitution ("" for defaults/limits)
  std::string severity;  // low | medium | high | critical
  std::vector<std::string> frameworks;
  std::vector<std::string> responses;  // on_violation: alert, kill, freeze, revoke
};

// What the in-kernel tables can decide on their own (the bpf module builds maps from this).
struct KernelNetRule {
  int family = 0;         // AF_INET or AF_INET6
  uint8_t addr[16] = {};  // network byte order; v4 uses the first 4 bytes
  uint8_t prefix_len = 0;
  uint16_t port_lo = 0;
  uint16_t port_hi = 65535;
  bool deny = false;
};
struct KernelTables {
  std::vector<std::string> exec_allow_exact;
  std::vector<std::string> exec_deny_exact;
  std::vector<std::string> exec_approval_exact;  // exe paths that have an approval rule
  bool exec_judged = false;                      // exec category or approval rules present
  bool exec_default_deny = false;                // exec.allow present: unknown exes are violations
  bool exec_has_globs = false;  // an exec/approval rule is a glob or judges argv: userspace decides
  bool exec_script_judged =
      false;  // exec.deny or approval rules: a script's own path is judged too
  // Exec or approval rules exist: what the kernel cannot name whole (an exe path cut short, the
  // program a dynamic loader was asked to run) is judged in userspace (exec.unresolved,
  // process.loaded).
  bool exec_any_judged = false;
  std::vector<KernelNetRule> net_rules;
  bool net_judged = false;        // network category present
  bool net_default_deny = false;  // network.connect.allow present
  std::vector<std::string> file_deny_exact;
  std::vector<std::string> file_deny_prefix;  // "/dir/" (everything below dir)
  // Path-component denies the kernel applies at open exit (one hash lookup per component): NAMEs
  // from
  // "**/NAME" (the opened file's own name) and from "**/NAME/**" (any component, the file's own
  // name included: that glob also matches the directory NAME itself).
  std::vector<std::string> file_deny_leaf;
  std::vector<std::string> file_deny_any_component;
  bool file_deny_has_globs = false;  // other deny patterns exist only in userspace
  bool file_deny_any = false;        // files.deny has rules: renames and links are judged
  // Identities (kernel device, inode) of the files the exact and directory denies named when the
  // intent was compiled: the kernel matches them at open exit too (WRIT_PK_INODE), so a hard link
  // or bind mount of a denied file is denied under any name.
  std::vector<std::pair<uint32_t, uint64_t>> file_deny_ids;
  // Unix sockets (network.unix, or its default): names as written, exact ("/run/x.sock", "@name")
  // and directories whose every name below is matched ("/run/app" for "/run/app/**").
  bool unix_judged = false;
  bool unix_default_deny = false;  // an allow list (or the default that follows connect.allow)
  bool unix_has_globs = false;     // globs the kernel cannot hold: userspace decides the rest
  std::vector<std::string> unix_allow_exact, unix_deny_exact, unix_allow_prefix, unix_deny_prefix;
};

// A connect rule by name (`host:`), kept as written for the stub resolver and the kernel pins of
// #17 phase 2. An exact name is also resolved at compile time into NetEntry addresses (today's
// enforcement); a wildcard has no address until a pin gives it one.
struct HostRule {
  dns::NamePattern pattern;
  std::vector<std::pair<uint16_t, uint16_t>> ports;  // inclusive ranges; all ports when not given
  int rule = -1;
};

// Unix-socket name patterns: path globs ("/run/user/*/bus") over absolute names, or "@" followed by
// an argument glob for abstract names ("@/tmp/.X11-unix/X*"). First match in the order added.
class UnixMatcher {
 public:
  // Parses `pattern`: an error names what is wrong (relative path, empty abstract name, bad glob).
  static absl::StatusOr<Glob> Parse(absl::string_view pattern, bool* abstract);
  void Add(const Glob& g, bool abstract, int rule);
  void set_present(bool p) { present_ = p; }
  bool present() const { return present_; }
  // `name` as an event carries it: "/..." or "@...". Rule index or -1.
  int Match(absl::string_view name) const;
  bool empty() const { return paths_.size() == 0 && abstract_.empty(); }
  const PathMatcher& paths() const { return paths_; }
  const std::vector<std::pair<Glob, int>>& abstract() const { return abstract_; }

 private:
  bool present_ = false;
  PathMatcher paths_;
  std::vector<std::pair<Glob, int>> abstract_;  // ArgGlob over the name after '@'
};

// The program `ld.so [OPTIONS] PROGRAM [ARGS]` runs, from the loader's argv (glibc's rtld grammar:
// --list, --verify, --inhibit-cache, --list-tunables, --list-diagnostics, --help, --version take no
// argument; --library-path, --inhibit-rpath, --audit, --preload, --argv0, --glibc-hwcaps-prepend,
// --glibc-hwcaps-mask take the next one; "--" ends them). index: PROGRAM's place in argv, 0 when
// the loader runs none (--help, an empty command line); -1 when it cannot be told (an unknown
// option, argv cut short before PROGRAM). bare: PROGRAM has no '/', so the loader searches library
// paths for it.
struct LoadedProgram {
  int index = 0;
  bool bare = false;
};
LoadedProgram DynamicLoaderProgram(const google::protobuf::RepeatedPtrField<std::string>& argv,
                                   bool argv_truncated);

struct NetEntry {
  int family = 0;
  uint8_t addr[16] = {};
  uint8_t prefix_len = 0;
  uint16_t port_lo = 0;
  uint16_t port_hi = 65535;
  int rule = -1;  // index into CompiledIntent rules
};

// Hours window in minutes of the day [start, end) in `tz`; wraps midnight when end <= start.
struct HoursWindow {
  bool present = false;
  int start_min = 0;
  int end_min = 1440;
  bool utc = true;
  absl::TimeZone tz;
};

class CompiledIntent {
 public:
  const std::string& name() const { return name_; }
  const std::string& mode() const { return mode_; }  // "" | monitor | enforce
  bool run_as_root() const { return run_as_root_; }  // the task may run as root (with --allow-root)
  const std::string& severity() const { return severity_; }
  const std::vector<std::string>& responses() const { return responses_; }
  const std::vector<std::string>& frameworks() const { return frameworks_; }
  // Credentials the task gets at start (`credentials:`), as written.
  const std::vector<writ::v1::CredentialRequest>& credentials() const { return credentials_; }
  const absl::flat_hash_map<std::string, std::string>& params() const { return params_; }
  // Limits. ttl() is InfiniteDuration when not set; the task registry applies it as the deadline.
  absl::Duration ttl() const { return ttl_; }
  int max_processes() const { return max_processes_; }
  const HoursWindow& hours() const { return hours_; }
  // Files.deny'd files found by identity at compile time (see KernelTables::file_deny_ids), and
  // whether the bound on how many a compile lists was reached.
  size_t file_deny_id_count() const { return file_deny_ids_.size(); }
  bool file_deny_ids_truncated() const { return file_deny_ids_truncated_; }
  // files.deny.renamed: a name the kernel denies because a denied file was renamed or linked to it
  // in this task (no pattern names it); nullptr when the intent has no files.deny rules.
  const Rule* renamed_rule() const {
    return files_renamed_rule_ < 0 ? nullptr : &rules_[files_renamed_rule_];
  }
  // Timeout of an approval rule (default 5m); ZeroDuration for a rule that is not an approval.
  absl::Duration approval_timeout(const Rule* r) const;
  const std::vector<Rule>& rules() const { return rules_; }
  const Rule* FindRule(absl::string_view id) const;

  KernelTables kernel_tables() const;
  // `tools:` (MCP tool calls through the launcher's gateway); nullptr when the intent has none.
  const ToolPolicy* tools() const { return tools_.get(); }

  // Names the task may resolve (network.dns.allow, or the host names of network.connect.allow when
  // it is absent; connect.deny hosts are denied). dns_judged() is false when neither list is
  // present: any name. Not yet enforced on the task's own DNS traffic (docs/threat-model.md, #17
  // phase 2).
  bool dns_judged() const { return dns_judged_; }
  const dns::NamePolicy& dns_policy() const { return dns_policy_; }
  const std::vector<HostRule>& host_allow() const { return host_allow_; }
  const std::vector<HostRule>& host_deny() const { return host_deny_; }

 private:
  friend class Compiler;
  friend struct Engine;
  friend class SubsetChecker;

  struct Approval {
    Glob exe;
    // Neither `args:` nor `subcommand:`: every invocation of the program needs approval.
    bool args_present = false;  // `args:` given (`args: []` = only an invocation with no arguments)
    std::vector<Glob> args;     // argument globs (glob.h); after the subcommand when there is one
    bool has_subcommand = false;
    Glob subcommand;  // an argument glob (MatchSubcommand)
    absl::Duration timeout;
    int rule;
    // Does this rule ask for every invocation of the programs `exe` matches?
    bool any_invocation() const { return !args_present && !has_subcommand; }
  };

  std::string name_, mode_, severity_;
  bool run_as_root_ = false;
  std::vector<std::string> responses_, frameworks_;
  std::vector<writ::v1::CredentialRequest> credentials_;
  absl::flat_hash_map<std::string, std::string> params_;
  std::vector<Rule> rules_;  // never resized after compile: verdicts hold pointers

  bool exec_judged_ = false;
  PathMatcher exec_allow_, exec_deny_;  // exec_allow_.present() = allow list present
  std::vector<Approval> approvals_;
  int exec_default_rule_ = -1;
  int exec_unresolved_rule_ = -1;  // exec or approval rules exist

  bool files_judged_ = false;
  PathMatcher file_read_, file_write_, file_deny_;
  // (kernel device, inode) -> files.deny rule; see KernelTables::file_deny_ids.
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, int> file_deny_ids_;
  bool file_deny_ids_truncated_ = false;
  int read_default_rule_ = -1, write_default_rule_ = -1;
  int files_renamed_rule_ = -1;

  bool net_judged_ = false;
  bool net_allow_present_ = false;
  std::vector<NetEntry> net_allow_, net_deny_;
  int net_default_rule_ = -1;
  std::vector<HostRule> host_allow_, host_deny_;
  bool dns_judged_ = false;
  dns::NamePolicy dns_policy_;
  bool unix_judged_ = false;
  UnixMatcher unix_allow_, unix_deny_;  // unix_allow_.present(): an allow list (or the default)
  int unix_default_rule_ = -1;

  absl::Duration ttl_ = absl::InfiniteDuration();
  int max_processes_ = 0;
  HoursWindow hours_;
  int hours_rule_ = -1, max_processes_rule_ = -1;
  std::shared_ptr<const ToolPolicy> tools_;
};

struct CompileOptions {
  // Take the identities of the files files.deny names (stat, a bounded directory listing), which is
  // what a task's compile needs. Policy tests and the fuzzer judge events without identities: off.
  bool bind_file_ids = true;
};

// Binds and type-checks `params` (missing required, unknown, ill-typed = error), substitutes
// ${name} everywhere, resolves hosts (getaddrinfo), takes denied files' identities and builds the
// tables. Errors name the field.
absl::StatusOr<std::shared_ptr<const CompiledIntent>> Compile(
    const writ::v1::Intent& intent, const absl::flat_hash_map<std::string, std::string>& params,
    const CompileOptions& options = {});

// ---- sub-agents
// -----------------------------------------------------------------------------------

// OK when `child` allows nothing `parent` does not (exec, files, network, approvals, limits, mode,
// on_violation). Conservative: what cannot be proven covered is refused. PermissionDenied
// otherwise, naming the child permission that would escalate, e.g. "exec.allow /usr/bin/curl is not
// allowed by parent intent coding-agent".
absl::Status CheckSubset(const CompiledIntent& child, const CompiledIntent& parent);

// ---- evaluation
// -----------------------------------------------------------------------------------

struct EvalContext {
  absl::Time now;
  int live_processes = 0;  // processes of the task, including the one this event creates
};

struct Verdict {
  enum Kind : uint8_t { kAllow, kViolation, kNeedsApproval, kNotJudged };
  Kind kind = kNotJudged;
  // The deciding rule: for kViolation/kNeedsApproval always set; for kAllow the allow rule that
  // matched (nullptr when the category has no list that judged it); nullptr for kNotJudged.
  const Rule* rule = nullptr;
  // The open was denied by the file's identity, not its path: the same file as one a files.deny
  // rule names, opened through another name (a hard link or a bind mount).
  bool by_file_id = false;
  // The exec was decided by the script an interpreter runs (process.script), not by the
  // interpreter.
  bool by_script = false;
  // The exec was decided by the program a dynamic loader was asked to run (process.loaded).
  bool by_loaded = false;
  // A link: decided by the new name (file.new_path), not the existing one; a unix connect: decided
  // by the socket file reached (network.peer_path), not the name given.
  bool by_second = false;
};
const char* VerdictName(Verdict::Kind k);  // allow, violation, needs_approval, not_judged

// Judges one event. Allocates nothing, takes no lock: safe to call from the hot path, concurrently.
// Kinds: exec (process.exe, process.args, process.script, process.loaded), open (file.path,
// file.flags), connect (network.*; unix: network.path, network.peer_path), link (file.path,
// file.new_path: files.deny), fork (limits only). Every judged kind is checked against
// limits.hours. Other kinds: kNotJudged.
Verdict Evaluate(const CompiledIntent& ci, const writ::v1::Event& ev, const EvalContext& ctx);
// The same with the event's kind already known (the pipeline's hot path: no string comparison).
Verdict Evaluate(const CompiledIntent& ci, EventKind kind, const writ::v1::Event& ev,
                 const EvalContext& ctx);

// Multi-line human explanation of the verdict: which rule decided and why, with the event's values.
std::string Explain(const CompiledIntent& ci, const writ::v1::Event& ev, const EvalContext& ctx);

// ---- policy tests
// ---------------------------------------------------------------------------------

struct TestSummary {
  int passed = 0;
  int failed = 0;
};
// Runs every intent's `tests:`. Prints one line per failure and, last, exactly "N passed, M
// failed". Params: the test's own `params:`; otherwise defaults, and "/tmp/writ-test-<name>" for
// required paths.
TestSummary RunPolicyTests(const PolicySet& set, std::ostream& out);

// ---- suggestion
// -----------------------------------------------------------------------------------

// A least-privilege intent from one task's recorded events (`writ policy suggest`), written as a
// person would: package and runtime trees as their root with ** (`.../node_modules/**`), system
// reads as their usual locations (`/usr/lib/**`), per-process and per-boot names as globs,
// directories and files the task's command line or params named as `params:` with ${name} in the
// rules, writes narrow. Well-known secret locations are always in files.deny and never allowed; a
// recording that touched one says so. The intent carries `tests:` drawn from the recording and
// loads back without errors.
struct Suggestion {
  std::string yaml;
  // The parameters' values in the recorded task (the intent requires them; --check binds these).
  absl::flat_hash_map<std::string, std::string> params;
  // "PATH (PATTERN)" for every secret location the recording touched: denied, never allowed.
  std::vector<std::string> secrets;
  int rule_lines = 0;  // lines of the document before `tests:` (what a reviewer reads)
};
Suggestion Suggest(const std::string& name, const std::vector<writ::v1::Event>& events,
                   const std::string& task_id);

// Recorded events judged again against `ci` as writd judges them (every kind Evaluate judges; a
// failed open that only an allow-list default would deny accessed nothing and is allowed).
struct Replay {
  int judged = 0;
  int violations = 0;
  // One line per distinct violation: "open /etc/x (read): violation by i/files.read.default (...)",
  // with "(N events)" when it happened more than once; in recording order.
  std::vector<std::string> lines;
  // Rule ids of `ci` that allowed at least one event.
  std::set<std::string> used_rules;
};
Replay ReplayEvents(const CompiledIntent& ci, const std::vector<writ::v1::Event>& events);

// What `existing` lacks (recorded events it would deny) and allows beyond what was observed (its
// allow rules no recorded event used), and whether `suggested` is a subset of it (CheckSubset).
// Human text, one finding a line; `*subset` set accordingly.
std::string DiffIntent(const CompiledIntent& suggested, const CompiledIntent& existing,
                       const std::vector<writ::v1::Event>& events, bool* subset);

}  // namespace writ::intent
