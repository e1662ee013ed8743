// writd configuration: policies/writd.yaml, overridden by command-line flags.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "creds/provider.h"
#include "fleet/config.h"
#include "yaml-cpp/yaml.h"

namespace writ::daemon {

struct Config {
  std::string config_file;                // where it came from ("" = defaults)
  std::string mode = "monitor";           // record | monitor | enforce
  std::string policies_dir = "policies";  // relative paths resolve against the config file's dir
  std::string state_dir = "/var/lib/writ";
  std::string run_dir = "/run/writ";
  std::string events = "";  // JSONL file, "-" for stdout, "" for none
  std::string trust_domain = "example.org";
  std::string cgroup_subtree = "writ";
  std::string bpf_pin_dir;  // default /sys/fs/bpf/<cgroup_subtree>; "none" disables
  std::string http;         // http.listen (or `http: ADDR:PORT`) of the HTTP listener, "" = off
  // Host header names the HTTP listener answers to besides its address and localhost (421 else).
  std::vector<std::string> http_hosts;
  // http: {listen, issuer, tls: {cert, key, client_ca}, client_auth: [introspect, revoke],
  // client_ids: [...]}: serving relying parties on other hosts (docs/credentials.md). Loopback is
  // the only listen address without tls. issuer: https://HOST[:PORT], the JWT-SVIDs' `iss` and the
  // base of the discovery document's URLs ("" = spiffe://<trust_domain>, URLs from the listen
  // address). client_auth: paths (stored "/introspect") that need a client certificate the
  // client_ca verified; client_ids: the identities (URI SAN, else CN) allowed there, "" = any.
  std::string http_issuer;
  std::string http_tls_cert, http_tls_key, http_tls_client_ca;
  std::vector<std::string> http_client_auth;
  std::vector<std::string> http_client_ids;
  std::string journal;  // hash-chained journal; "" = <state_dir>/journal.jsonl, "off"
  std::string journal_fsync = "10ms";  // always | never | DURATION (at most that long unsynced)
  std::string on_daemon_loss = "continue";  // freeze | continue
  uint32_t ring_buffer_bytes = 4u << 20;
  absl::Duration drain_interval = absl::Milliseconds(10);
  absl::Duration housekeeping_interval = absl::Milliseconds(50);
  // While an enforce-mode task exists, the pipeline polls the ring buffer this long for the next
  // record before it sleeps: records that follow each other closer than this are read without a
  // wakeup (docs/performance.md: with the sleep flag alone 4.9 us per enforce-mode open, with the
  // spin 0.66). 0 .. 1ms.
  absl::Duration drain_spin = absl::Microseconds(20);
  // Nice value of the pipeline thread (drain, judge, kill, encode): above the watched workloads, so
  // an event storm slows its producer instead of overflowing the ring buffer, and a verdict is not
  // queued behind the workload for the CPU. -20 .. 19; 0 leaves the default.
  int pipeline_nice = -10;
  // metrics.bpf_program_stats: kernel run-time accounting of BPF programs (BPF_ENABLE_STATS) and
  // the writ_bpf_program_* metrics. Off by default: while enabled, EVERY BPF program on the host
  // pays two clock reads per run, not only writ's.
  bool bpf_program_stats = false;
  // bpf_lsm: auto (the BPF-LSM rung wherever the kernel loads it) | off (tracepoint and cgroup
  // rungs only, docs/architecture.md "Kernel matrix").
  std::string bpf_lsm = "auto";
  // redaction.rules: a rules file merged with the built-in set (data/redaction.yaml); "" = built-in
  // only. redaction.key: the HMAC key of the marks; "" = <state_dir>/redaction.key (created 0600 at
  // start). control.group: the control socket is 0660 root:<group>; its members launch tasks (-1:
  // 0600, root only). control.admin_group: its members may also kill, freeze, thaw, revoke, approve
  // and reload
  // (-1: root only). Never a process inside a task, whatever its uid or groups.
  int control_gid = -1;
  int admin_gid = -1;
  std::string redaction_rules;
  std::string redaction_key;
  YAML::Node sinks;  // handed to the sinks module as written
  // credentials.providers: external credential providers intents may name (docs/credentials.md).
  std::vector<creds::ProviderConfig> credential_providers;
  // credentials.revocation_alert_after: an external revocation failing this long becomes a finding.
  absl::Duration revocation_alert_after = absl::Minutes(5);
  // dns: egress by name (#17, docs/architecture.md "DNS and names"). Absent: no stub, a task's DNS
  // goes where it sends it. Present: every task's TCP and UDP to port 53 goes to the stub at
  // dns.listen (a loopback address and port; IPv6 on ::1 at the same port), which answers the
  // names the task's intent allows, from dns.upstreams (default: /etc/resolv.conf's nameservers),
  // and pins their addresses in the kernel for the TTL clamped to [min_ttl, max_ttl].
  bool dns = false;
  std::string dns_listen = "127.0.0.1:0";
  std::vector<std::string> dns_upstreams;
  uint32_t dns_min_ttl = 5;
  uint32_t dns_max_ttl = 3600;
  uint32_t dns_max_pins = 1024;
  absl::Duration dns_upstream_timeout = absl::Seconds(2);
  // console: the approvals console (#20, docs/console.md). Absent (and no --console): off.
  // console.listen: ADDR:PORT, a loopback address. console.url: how approvers' browsers reach it
  // (login links, notification links; default http://<listen>). console.session_ttl: a login's
  // lifetime; console.login_ttl: a login link's. console.notify.webhook: an http(s) URL that gets a
  // Slack-compatible message for every approval request (and with notify.violations, every
  // violation); notify.ca_file: its CA.
  std::string console;  // listen ADDR:PORT, "" = off
  std::string console_url;
  absl::Duration console_session_ttl = absl::Hours(8);
  absl::Duration console_login_ttl = absl::Minutes(5);
  // console.tls: {cert, key}: HTTPS, and then console.listen may be any address (approvers on other
  // hosts reach it directly; tasks on this host are refused as on loopback).
  std::string console_tls_cert;
  std::string console_tls_key;
  std::string console_webhook;
  std::string console_webhook_ca;
  bool console_notify_violations = false;
  // policy_bundles.public_keys: Ed25519 public keys (PEM) whose signed policy bundles may be put
  // in force (writ policy apply; docs/policy.md "Signed policy bundles"). Empty: none may.
  std::vector<std::string> bundle_keys;
  // fleet: the NATS cluster this host belongs to (docs/fleet.md). Absent: a single host.
  fleet::FleetConfig fleet;
};

// Parses a writd.yaml. Errors: "FILE:LINE: field: message". Unknown keys are errors.
absl::StatusOr<Config> LoadConfig(const std::string& path);
absl::Status ValidateMode(const std::string& mode);
// console.listen / --console: a loopback ADDR:PORT.
absl::Status ValidateConsoleListen(const std::string& listen);

}  // namespace writ::daemon
