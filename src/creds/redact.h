// Secret redaction: the credentials agents carry (model-API keys, code-host tokens, cloud keys,
// private keys, JWTs, passwords in URLs, headers, options and key=value forms) are replaced in
// every string an event carries before it is journaled, emitted to a sink, streamed to `writ tail`
// or logged.
//
// The rules are data (creds/redact_rules.h, data/redaction.yaml). Matching, per string:
//   1. prefilter: one pass over the bytes, a bit test per byte pair against the rules' keywords (a
//      string with none of them, i.e. almost every path and argument, costs nothing more);
//   2. the rules whose keywords occurred (and whose `requires` characters are present): one of them
//   is
//      searched directly; several are narrowed by one RE2::Set pass over all pattern rules;
//   3. each matching rule's own RE2 gives the secret's span (its first participating group).
// Argument vectors are also matched option by option (`--password X`, `-pX`, `--token=X`, `sshpass
// -p X`).
//
// A secret becomes [REDACTED:<rule id>:<12 hex>], the hex being the start of HMAC-SHA256(host key,
// secret): the same secret gives the same mark on this host, so a SIEM can correlate events without
// seeing it, and without the key it cannot test guesses against the mark. Overlapping matches give
// one mark (the first-listed rule names it); existing well-formed marks are never re-redacted, so
// running twice changes nothing. A Redactor is immutable once built and safe to share between
// threads; its per-rule counters are atomics. Clean strings are never copied or allocated for.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "creds/redact_rules.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "writ/v1/event.pb.h"

namespace writ::creds {

inline constexpr size_t kRedactionKeyBytes = 32;
inline constexpr size_t kMarkHashHexDigits = 12;
inline constexpr std::string_view kMarkPrefix = "[REDACTED:";

// What one call wrote.
struct RedactionReport {
  uint32_t marks = 0;                // marks written
  uint32_t argv_marks = 0;           // of which in an argument vector (process.args, task.command)
  int first_argv_index = -1;         // index of the first argument that got one
  std::string_view first_argv_rule;  // its rule id (valid as long as the Redactor)
};

struct EventRedactOptions {
  // false: ev->agent() is already redacted (the pipeline refills it only when the task changes, and
  // redacts it then), so it is not scanned again.
  bool agent = true;
};

class Redactor {
 public:
  // `key` is the HMAC key of the marks (kRedactionKeyBytes from LoadOrCreateRedactionKey; any
  // non-empty key is accepted, for tests). Compiles every rule; the set must come from
  // ParseRedactionRules, which has already checked it.
  static absl::StatusOr<std::unique_ptr<Redactor>> Create(const RedactionRuleSet& rules,
                                                          std::string_view key);
  ~Redactor();
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  // Pattern rules over one string. Returns the number of marks written.
  uint32_t RedactText(std::string* s) const;
  // An argument vector: pattern rules on each argument and option rules across them. `exe` is the
  // executable (its basename counts for `programs`), empty when unknown.
  RedactionReport RedactArgv(google::protobuf::RepeatedPtrField<std::string>* args,
                             std::string_view exe) const;
  RedactionReport RedactArgv(std::vector<std::string>* args, std::string_view exe) const;
  // Every string field of the event that can carry text from a task, an operator or a server:
  // process.{args (argv-aware), exe, comm, filename, script}, file.path, finding.reason,
  // action.{result, reason}, approval.{action, decided_by, decided_via, reason}, task.{command
  // (argv-aware), params (as key=value), cgroup, workload}, credential.{jti, detail} and the
  // agent's identity strings. FieldsNotRedacted() lists the rest (writd's own vocabulary and ids)
  // and why.
  RedactionReport RedactEvent(v1::Event* ev, EventRedactOptions opts = {}) const;

  // The mark for `secret` found by `rule_id`.
  std::string Mark(std::string_view rule_id, std::string_view secret) const;

  struct RuleCount {
    std::string_view rule;
    uint64_t redactions;
  };
  // Marks written per rule since Create, in rule order (every rule, zeros included).
  std::vector<RuleCount> Counts() const;
  size_t rule_count() const;

 private:
  struct Impl;
  explicit Redactor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Fields of writ.v1.Event (full protobuf names) RedactEvent does not touch: values writd itself
// generates or takes from its own vocabulary (ids, times, kinds, verdicts, rule ids, framework ids,
// IP addresses it formats). A test walks the schema and fails on any string field in neither set.
const std::vector<std::string_view>& FieldsNotRedacted();

// `writ_redactions_total{rule="..."}` for /metrics (Prometheus text format, HELP and TYPE
// included).
void AppendRedactionMetrics(const Redactor& r, std::string* out);

// The finding for an exec whose command line carried a credential (report.argv_marks > 0): rule
// writ/secret.argv, category secret, OWASP-NHI2 (secret leakage), severity medium, no responses.
// The reason names the argument and the rule, never the value.
void FillSecretInArgvFinding(const RedactionReport& report, v1::Finding* f);

// The per-host HMAC key: read from `path` (kRedactionKeyBytes, a regular file of this uid, mode
// 0600 or stricter), or created there (0600, from the kernel's CSPRNG) when it does not exist.
absl::StatusOr<std::string> LoadOrCreateRedactionKey(const std::string& path);

// The built-in rules with a key random per process: for callers without a configured Redactor
// (marks then correlate within one process only).
const Redactor& DefaultRedactor();
inline void RedactSecrets(std::string* s) { DefaultRedactor().RedactText(s); }

}  // namespace writ::creds
