#include "daemon/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "api/server.h"
#include "creds/creds.h"
#include "creds/redact.h"
#include "daemon/adopt.h"
#include "daemon/approvals.h"
#include "daemon/bundles.h"
#include "daemon/console.h"
#include "daemon/control.h"
#include "daemon/dns_egress.h"
#include "daemon/output.h"
#include "daemon/pipeline.h"
#include "daemon/policies.h"
#include "daemon/task_lifecycle.h"
#include "daemon/tool_calls.h"
#include "decode/decoder.h"
#include "fleet/bundle_feed.h"
#include "fleet/link.h"
#include "identity/task.h"
#include "util/util.h"

namespace writ::daemon {

namespace {

// "# HELP" and "# TYPE" of one metric family.
void Head(std::string* o, const char* name, const char* type, const char* help) {
  absl::StrAppend(o, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

// One family with one sample per event kind.
void PerKind(std::string* o, const char* name, const char* type, const char* help,
             const uint64_t (&by_kind)[WRIT_EV_KIND_MAX]) {
  Head(o, name, type, help);
  for (int k = 1; k < kEventKinds; k++) {
    absl::StrAppend(o, name, "{kind=\"", EventKindName(static_cast<EventKind>(k)), "\"} ",
                    by_kind[k], "\n");
  }
}

// One family with one sample per sink (and label `extra` when given).
template <typename Fn>
void PerSink(std::string* o, const std::vector<Output::SinkRow>& rows, const char* name,
             const char* type, const char* help, Fn value) {
  Head(o, name, type, help);
  for (const auto& r : rows)
    absl::StrAppend(o, name, "{sink=\"", r.name, "\"} ", value(r.stats), "\n");
}

}  // namespace

void FillStatus(const MetricsSources& m, v1::StatusResponse* s) {
  s->set_version(m.version);
  s->set_mode(m.mode);
  for (const auto& h : m.loader->hooks()) {
    v1::HookState* hs = s->add_hooks();
    hs->set_name(h.name);
    hs->set_active(h.active);
    hs->set_detail(h.detail);
  }
  for (const bpf::Rung& r : m.loader->Rungs()) {
    v1::HookState* hs = s->add_enforcement();
    hs->set_name(r.name);
    hs->set_active(r.active);
    if (!r.active) hs->set_detail(r.detail);
  }
  const PipelineCounters& pc = m.pipeline->counters();
  bpf::Counters c = m.loader->ReadCounters();
  for (int k = 1; k < kEventKinds; k++) {
    const char* kind = EventKindName(static_cast<EventKind>(k));
    (*s->mutable_events_by_kind())[kind] = pc.events_by_kind[k].load();
    (*s->mutable_drops_by_kind())[kind] = c.dropped[k];
  }
  auto& counters = *s->mutable_counters();
  s->set_userspace_drops(pc.decode_errors.load() + m.output->tail_drops());
  counters["unattributed"] = pc.unattributed.load();
  counters["kernel_sends_suppressed"] = c.suppressed[WRIT_EV_CONNECT];
  counters["decode_errors"] = pc.decode_errors.load();
  counters["tail_drops"] = m.output->tail_drops();
  counters["violations"] = pc.violations.load();
  counters["actions"] = m.lifecycle->actions();
  if (m.control) {
    counters["control_refused"] = m.control->refused();
    counters["control_refused_from_tasks"] = m.control->refused_from_tasks();
  }
  if (m.server) counters["control_unidentified_peers"] = m.server->unidentified();
  if (m.tool_calls) {
    const ToolCalls::Counters& tc = m.tool_calls->counters();
    counters["tool_calls"] = tc.calls.load();
    counters["tool_calls_denied"] = tc.denied.load();
    counters["tool_calls_held"] = tc.held.load();
    counters["tool_reports_refused"] = tc.reports_refused.load();
  }
  if (m.dns) {
    const DnsCounters dc = m.dns->counters();
    counters["dns_queries"] = dc.queries;
    counters["dns_allowed"] = dc.allowed;
    counters["dns_refused"] = dc.refused;
    counters["dns_malformed"] = dc.malformed;
    counters["dns_failed"] = dc.failed;
    counters["dns_unattributed"] = dc.unattributed;
    counters["dns_pins_written"] = dc.pins_written;
    counters["dns_pin_errors"] = dc.pin_errors;
    counters["dns_findings"] = dc.findings;
    counters["dns_dropped"] = dc.dropped;
    counters["dns_tcp_timeouts"] = dc.tcp_timeouts;
  }
  if (m.console) {
    const Console::Stats cs = m.console->stats();
    counters["console_logins"] = cs.logins;
    counters["console_login_refused"] = cs.login_refused;
    counters["console_unauthenticated"] = cs.unauthenticated;
    counters["console_csrf_refused"] = cs.csrf_refused;
    counters["console_task_refused"] = cs.task_refused;
    counters["console_decisions"] = cs.decisions;
    counters["console_decisions_refused"] = cs.decisions_refused;
    counters["console_task_actions"] = cs.task_actions;
    counters["console_notify_sent"] = cs.notify_sent;
    counters["console_notify_failed"] = cs.notify_failed;
    counters["console_notify_dropped"] = cs.notify_dropped;
  }
  if (m.adoption) m.adoption->AddCounters(s);
  if (m.creds) {
    auto depth = m.creds->OutboxDepth();
    counters["revocation_outbox_depth"] = depth.ok() ? *depth : ~0ull;
    if (auto failing = m.creds->FailingRevocations(); failing.ok()) {
      for (const auto& f : *failing) {
        counters["revocations_failing_" + f.provider] = f.failing;
        counters["revocations_failing_" + f.provider + "_oldest_s"] =
            absl::ToInt64Seconds(f.oldest_age);
      }
    }
    const creds::WorkloadApiStats w = m.creds->workload_stats();
    counters["workload_streams_open"] = w.streams_open;
    counters["workload_streams_refused"] = w.streams_refused;
  }
  if (const journal::Journal* j = m.output->journal()) {
    journal::JournalStats js = j->stats();
    counters["journal_records"] = js.records;
    counters["journal_fsyncs"] = js.fsyncs;
    counters["journal_errors"] = js.write_errors + js.fsync_errors;
  }
  // What ended tasks must not leave behind (the load test checks these return to their idle
  // values).
  counters["process_table_entries"] = m.procs->published_size();
  for (const auto& me : m.loader->CountMapEntries()) {
    counters[absl::StrCat("map_", me.name, "_entries")] = me.entries;
  }
  if (m.fleet) {
    const fleet::LinkState fs = m.fleet->state();
    counters["fleet_connected"] = fs.connected ? 1 : 0;
    counters["fleet_connects"] = fs.connects;
    counters["fleet_disconnects"] = fs.disconnects;
    counters["fleet_errors"] = fs.errors;
  }
  for (const auto& r : m.output->SinkRows()) {
    counters["sink_" + r.name + "_delivered"] = r.stats.delivered;
    counters["sink_" + r.name + "_dropped"] = r.stats.dropped();
  }
  for (const auto& t : m.registry->All()) {
    v1::TaskSummary* ts = s->add_tasks();
    ts->set_task_id(t->id);
    ts->set_spiffe_id(t->spiffe_id);
    ts->set_principal(t->principal);
    ts->set_intent(t->intent);
    ts->set_state(t->frozen ? "frozen" : identity::TaskStateName(t->state.load()));
    ts->set_mode(identity::TaskModeName(t->mode));
    if (t->deadline != absl::InfiniteFuture()) ts->set_deadline(Rfc3339(t->deadline));
    ts->set_processes(std::max(0, t->live_processes.load()));
    ts->set_run_uid(t->run_uid);
    ts->set_root(t->root);
  }
  s->set_policy_error(m.policies->error());
  s->set_intents_loaded(m.policies->Get()->intents().size());
  if (m.bundles) *s->mutable_policy_bundle() = m.bundles->State();
  if (m.bundle_feed) {
    const fleet::BundleFeedStats fs = m.bundle_feed->stats();
    s->mutable_policy_bundle()->set_fleet(true);
    s->mutable_policy_bundle()->set_fleet_revision(fs.revision);
    s->mutable_policy_bundle()->set_fleet_error(fs.last_error);
  }
  s->set_approvals_pending(m.approvals->size());
}

std::string RenderMetrics(const MetricsSources& m) {
  std::string o;
  const PipelineCounters& pc = m.pipeline->counters();
  uint64_t by_kind[WRIT_EV_KIND_MAX] = {};
  for (int k = 0; k < kEventKinds; k++) by_kind[k] = pc.events_by_kind[k].load();
  PerKind(&o, "writ_events_total", "counter", "Events attributed to tasks, by kind.", by_kind);
  Head(&o, "writ_verdicts_total", "counter", "Judged events by verdict.");
  const char* vn[4] = {"allow", "violation", "needs_approval", "not_judged"};
  for (int i = 0; i < 4; i++) {
    absl::StrAppend(&o, "writ_verdicts_total{verdict=\"", vn[i], "\"} ", pc.verdicts[i].load(),
                    "\n");
  }
  Head(&o, "writ_actions_total", "counter", "Enforcement actions taken (kill, freeze, thaw).");
  absl::StrAppend(&o, "writ_actions_total ", m.lifecycle->actions(), "\n");

  const bpf::Counters c = m.loader->ReadCounters();
  PerKind(&o, "writ_kernel_records_total", "counter",
          "Ring-buffer records emitted by the kernel, by kind.", c.emitted);
  PerKind(&o, "writ_kernel_drops_total", "counter",
          "Ring-buffer reserve failures in the kernel, by kind.", c.dropped);
  PerKind(
      &o, "writ_kernel_fail_closed_kills_total", "counter",
      "Processes of enforce-mode tasks the kernel killed because the record writd had to judge was "
      "dropped (fail closed), by kind.",
      c.fail_closed);
  PerKind(&o, "writ_kernel_suppressed_total", "counter",
          "Records the kernel did not emit on purpose, by kind: refused datagram sends past their "
          "rate limit (one record per task and destination per second, 64 per task per second).",
          c.suppressed);
  // Only with metrics.bpf_program_stats: without writd's stats switch the kernel's counters stand
  // still (or count someone else's accounting window), and a still counter would read as "no cost".
  if (m.loader->program_stats()) {
    auto stats = m.loader->ReadProgramStats();
    Head(&o, "writ_bpf_program_runs_total", "counter", "BPF program invocations (bpf_stats).");
    for (const auto& p : stats) {
      absl::StrAppend(&o, "writ_bpf_program_runs_total{program=\"", p.name, "\"} ", p.run_cnt,
                      "\n");
    }
    Head(&o, "writ_bpf_program_run_seconds_total", "counter", "BPF program run time (bpf_stats).");
    for (const auto& p : stats) {
      absl::StrAppend(&o, "writ_bpf_program_run_seconds_total{program=\"", p.name, "\"} ",
                      absl::StrFormat("%.9f", p.run_time_ns / 1e9), "\n");
    }
  }
  Head(&o, "writ_userspace_drops_total", "counter", "Records lost in userspace, by reason.");
  absl::StrAppend(&o, "writ_userspace_drops_total{reason=\"decode\"} ", pc.decode_errors.load(),
                  "\n");
  absl::StrAppend(&o, "writ_userspace_drops_total{reason=\"tail\"} ", m.output->tail_drops(), "\n");
  absl::StrAppend(&o, "writ_userspace_drops_total{reason=\"unattributed\"} ",
                  pc.unattributed.load(), "\n");

  const std::vector<Output::SinkRow> rows = m.output->SinkRows();
  PerSink(&o, rows, "writ_sink_delivered_total", "counter", "Lines delivered per sink.",
          [](const sinks::SinkStats& s) { return s.delivered; });
  Head(&o, "writ_sink_dropped_total", "counter",
       "Lines dropped per sink, by reason (queue_full, spool_full, on_stop).");
  for (const auto& r : rows) {
    const std::pair<const char*, uint64_t> by[] = {{"queue_full", r.stats.dropped_queue_full},
                                                   {"spool_full", r.stats.dropped_spool_full},
                                                   {"on_stop", r.stats.dropped_on_stop}};
    for (const auto& [reason, n] : by) {
      absl::StrAppend(&o, "writ_sink_dropped_total{sink=\"", r.name, "\",reason=\"", reason, "\"} ",
                      n, "\n");
    }
  }
  PerSink(&o, rows, "writ_sink_retries_total", "counter",
          "Failed send attempts per sink (retried).",
          [](const sinks::SinkStats& s) { return s.retries; });
  Head(
      &o, "writ_sink_errors_total", "counter",
      "Failed send attempts per sink by cause (connect, tls_verify, tls, timeout, io, http_status, "
      "other).");
  for (const auto& r : rows) {
    for (size_t k = 0; k < sinks::kSinkErrorKinds; k++) {
      absl::StrAppend(&o, "writ_sink_errors_total{sink=\"", r.name, "\",reason=\"",
                      sinks::SinkErrorName(static_cast<sinks::SinkError>(k)), "\"} ",
                      r.stats.errors[k], "\n");
    }
  }
  PerSink(&o, rows, "writ_sink_spooled_total", "counter",
          "Lines written to the on-disk spool per sink.",
          [](const sinks::SinkStats& s) { return s.spooled; });
  PerSink(&o, rows, "writ_sink_replayed_total", "counter",
          "Lines replayed from the spool per sink.",
          [](const sinks::SinkStats& s) { return s.replayed; });
  PerSink(&o, rows, "writ_sink_resent_total", "counter",
          "Lines re-sent after a broken connection per sink (possible duplicates, same event id).",
          [](const sinks::SinkStats& s) { return s.resent; });
  PerSink(&o, rows, "writ_sink_queue_depth", "gauge", "Lines waiting in memory per sink.",
          [](const sinks::SinkStats& s) { return s.queue_depth; });
  PerSink(&o, rows, "writ_sink_spool_bytes", "gauge", "Bytes spooled on disk per sink.",
          [](const sinks::SinkStats& s) { return s.spool_bytes; });

  if (const journal::Journal* j = m.output->journal()) {
    journal::JournalStats js = j->stats();
    Head(&o, "writ_journal_records_total", "counter", "Records appended to the journal.");
    absl::StrAppend(&o, "writ_journal_records_total ", js.records, "\n");
    Head(&o, "writ_journal_fsyncs_total", "counter",
         "fdatasync calls on the journal (journal_fsync).");
    absl::StrAppend(&o, "writ_journal_fsyncs_total ", js.fsyncs, "\n");
    Head(&o, "writ_journal_errors_total", "counter", "Journal appends or fsyncs that failed.");
    absl::StrAppend(&o, "writ_journal_errors_total ", js.write_errors + js.fsync_errors, "\n");
    Head(&o, "writ_journal_corrupt_tail", "gauge", "1 when start found a damaged journal tail.");
    absl::StrAppend(&o, "writ_journal_corrupt_tail ", int{js.new_segment_after_corruption}, "\n");
  }
  if (m.adoption) m.adoption->AppendMetrics(&o);
  if (m.control) {
    Head(&o, "writ_control_refused_total", "counter",
         "Control requests refused on authorization, by where the caller was.");
    absl::StrAppend(&o, "writ_control_refused_total{caller=\"task\"} ",
                    m.control->refused_from_tasks(), "\n",
                    "writ_control_refused_total{caller=\"host\"} ",
                    m.control->refused() - m.control->refused_from_tasks(), "\n");
  }
  if (m.server) {
    Head(
        &o, "writ_control_unidentified_peers_total", "counter",
        "Control connections refused because their peer could not be identified (it exited, or its "
        "pid no longer named it).");
    absl::StrAppend(&o, "writ_control_unidentified_peers_total ", m.server->unidentified(), "\n");
  }
  if (m.tool_calls) {
    const ToolCalls::Counters& tc = m.tool_calls->counters();
    Head(&o, "writ_tool_calls_total", "counter",
         "MCP tools/call requests judged for a gateway (writ run --mcp), by outcome.");
    absl::StrAppend(&o, "writ_tool_calls_total{outcome=\"judged\"} ", tc.calls.load(), "\n",
                    "writ_tool_calls_total{outcome=\"denied\"} ", tc.denied.load(), "\n",
                    "writ_tool_calls_total{outcome=\"held\"} ", tc.held.load(), "\n");
    Head(&o, "writ_tool_reports_refused_total", "counter",
         "Tool-call reports refused: not from the connection that created the task, or from inside "
         "a "
         "task.");
    absl::StrAppend(&o, "writ_tool_reports_refused_total ", tc.reports_refused.load(), "\n");
  }
  Head(&o, "writ_tasks_active", "gauge", "Tasks registered.");
  absl::StrAppend(&o, "writ_tasks_active ", m.registry->size(), "\n");
  Head(&o, "writ_approvals_pending", "gauge", "Approval requests waiting for a human.");
  absl::StrAppend(&o, "writ_approvals_pending ", m.approvals->size(), "\n");
  if (m.fleet) {
    const fleet::LinkState fs = m.fleet->state();
    Head(&o, "writ_fleet_connected", "gauge",
         "1 while the fleet link (NATS) is connected, 0 while it is down and retrying.");
    absl::StrAppend(&o, "writ_fleet_connected ", fs.connected ? 1 : 0, "\n");
    Head(&o, "writ_fleet_connects_total", "counter", "Fleet link connects (first and reconnects).");
    absl::StrAppend(&o, "writ_fleet_connects_total ", fs.connects, "\n");
    Head(&o, "writ_fleet_disconnects_total", "counter", "Fleet link disconnects.");
    absl::StrAppend(&o, "writ_fleet_disconnects_total ", fs.disconnects, "\n");
    Head(&o, "writ_fleet_errors_total", "counter",
         "Errors NATS reported on the fleet link (refused credentials, permissions).");
    absl::StrAppend(&o, "writ_fleet_errors_total ", fs.errors, "\n");
  }
  if (m.dns) {
    const DnsCounters dc = m.dns->counters();
    Head(&o, "writ_dns_queries_total", "counter",
         "DNS queries of tasks at writd's stub, by outcome (unattributed and dropped: refused or "
         "not answered without a task's verdict).");
    const std::pair<const char*, uint64_t> by[] = {
        {"allowed", dc.allowed}, {"refused", dc.refused},           {"malformed", dc.malformed},
        {"failed", dc.failed},   {"unattributed", dc.unattributed}, {"dropped", dc.dropped}};
    for (const auto& [outcome, n] : by) {
      absl::StrAppend(&o, "writ_dns_queries_total{outcome=\"", outcome, "\"} ", n, "\n");
    }
    Head(&o, "writ_dns_pin_errors_total", "counter",
         "Kernel pins that could not be written (the address stays refused).");
    absl::StrAppend(&o, "writ_dns_pin_errors_total ", dc.pin_errors, "\n");
    Head(&o, "writ_dns_pins", "gauge",
         "Live DNS pins per task: addresses its own answers named, bounded by dns.max_pins.");
    for (const auto& t : m.registry->All()) {
      absl::StrAppend(&o, "writ_dns_pins{task=\"", t->id, "\"} ", m.dns->PinCount(t->id), "\n");
    }
  }
  if (m.console) o += m.console->MetricsText();
  if (m.bundles) {
    const v1::PolicyBundleState b = m.bundles->State();
    Head(&o, "writ_policy_bundle_version", "gauge",
         "Version of the signed policy bundle in force (0: the policies directory's files).");
    absl::StrAppend(&o, "writ_policy_bundle_version ", b.version(), "\n");
    Head(&o, "writ_policy_bundles_refused_total", "counter",
         "Policy bundles refused since start (signature, version, intents that do not load).");
    absl::StrAppend(&o, "writ_policy_bundles_refused_total ", b.refused(), "\n");
  }
  if (m.bundle_feed) {
    const fleet::BundleFeedStats fs = m.bundle_feed->stats();
    Head(&o, "writ_fleet_bundle_revision", "gauge",
         "Revision of the fleet's policy bundle key this host last handled (applied or refused).");
    absl::StrAppend(&o, "writ_fleet_bundle_revision ", fs.revision, "\n");
    Head(&o, "writ_fleet_bundle_read_errors_total", "counter",
         "Reads of the fleet's policy bundle bucket that failed (a timeout, a bucket it may not "
         "create).");
    absl::StrAppend(&o, "writ_fleet_bundle_read_errors_total ", fs.read_errors, "\n");
  }
  if (m.creds) {
    auto depth = m.creds->OutboxDepth();
    Head(&o, "writ_revocation_outbox_depth", "gauge", "External revocations not yet acknowledged.");
    absl::StrAppend(&o, "writ_revocation_outbox_depth ", depth.ok() ? *depth : -1, "\n");
    if (auto failing = m.creds->FailingRevocations(); failing.ok()) {
      Head(&o, "writ_revocations_failing", "gauge",
           "External revocations that failed and are not acknowledged yet, per provider.");
      for (const auto& f : *failing) {
        absl::StrAppend(&o, "writ_revocations_failing{provider=\"", f.provider, "\"} ", f.failing,
                        "\n");
      }
      Head(&o, "writ_revocation_failing_oldest_seconds", "gauge",
           "Age of the oldest failing external revocation per provider (0 when none).");
      for (const auto& f : *failing) {
        absl::StrAppend(&o, "writ_revocation_failing_oldest_seconds{provider=\"", f.provider,
                        "\"} ", absl::ToInt64Seconds(f.oldest_age), "\n");
      }
    }
    const creds::WorkloadApiStats w = m.creds->workload_stats();
    Head(&o, "writ_workload_api_streams_open", "gauge",
         "Workload API FetchJWTBundles streams open.");
    absl::StrAppend(&o, "writ_workload_api_streams_open ", w.streams_open, "\n");
    Head(&o, "writ_workload_api_streams_refused_total", "counter",
         "Workload API streams refused: a task's or all tasks' stream cap reached.");
    absl::StrAppend(&o, "writ_workload_api_streams_refused_total ", w.streams_refused, "\n");
  }
  const LatencyHistogram& lat = pc.latency;
  Head(&o, "writ_verdict_latency_microseconds", "histogram",
       "Kernel timestamp of the syscall to the engine's verdict.");
  uint64_t cum = 0;
  for (int b = 0; b + 1 < LatencyHistogram::kBuckets; b++) {
    cum += lat.bucket(b);
    absl::StrAppend(&o, "writ_verdict_latency_microseconds_bucket{le=\"",
                    LatencyHistogram::kBoundsUs[b], "\"} ", cum, "\n");
  }
  absl::StrAppend(&o, "writ_verdict_latency_microseconds_bucket{le=\"+Inf\"} ", lat.count(), "\n");
  absl::StrAppend(&o, "writ_verdict_latency_microseconds_sum ", lat.sum_us(), "\n");
  absl::StrAppend(&o, "writ_verdict_latency_microseconds_count ", lat.count(), "\n");
  if (m.redactor) creds::AppendRedactionMetrics(*m.redactor, &o);  // writ_redactions_total{rule}
  if (m.creds && m.creds->http_server()) o += m.creds->http_server()->MetricsText();  // writ_http_*
  return o;
}

}  // namespace writ::daemon
