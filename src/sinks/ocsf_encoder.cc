#include "sinks/ocsf_encoder.h"

#include <charconv>
#include <chrono>
#include <string_view>
#include <system_error>

#include "sinks/json_encoder.h"
#include "sinks/json_writer.h"

namespace writ::sinks {
namespace {

struct ClassInfo {
  int class_uid;
  int category_uid;
  int activity_id;
  std::string_view class_name;
  std::string_view category_name;
  std::string_view activity_name;
};

constexpr ClassInfo kProcessLaunch{1007, 1, 1, "Process Activity", "System Activity", "Launch"};
constexpr ClassInfo kProcessTerminate{1007,       1, 2, "Process Activity", "System Activity",
                                      "Terminate"};
constexpr ClassInfo kFileOpen{1001, 1, 14, "File System Activity", "System Activity", "Open"};
constexpr ClassInfo kFileRename{1001, 1, 5, "File System Activity", "System Activity", "Rename"};
constexpr ClassInfo kFileCreate{1001, 1, 1, "File System Activity", "System Activity", "Create"};
constexpr ClassInfo kNetworkOpen{4001, 4, 1, "Network Activity", "Network Activity", "Open"};
// A task's query to writd's stub resolver, with writd's answer (rcode, answers) on the same record.
constexpr ClassInfo kDnsQuery{4003, 4, 1, "DNS Activity", "Network Activity", "Query"};
constexpr ClassInfo kDetection{2004, 2, 1, "Detection Finding", "Findings", "Create"};
constexpr ClassInfo kBase{0, 0, 99, "Base Event", "Uncategorized", "Other"};
// MCP tool calls through the launcher's gateway: an API call of the tool server (tools/call has no
// fitting create/read/update/delete activity; tools/list reads the server's catalogue).
constexpr ClassInfo kToolCall{6003, 6, 99, "API Activity", "Application Activity", "Other"};
constexpr ClassInfo kToolList{6003, 6, 2, "API Activity", "Application Activity", "Read"};

const ClassInfo& Classify(const writ::v1::Event& ev) {
  const std::string& k = ev.kind();
  // A violation, or writ's own finding that is not one (a credential on a command line).
  if (ev.verdict() == "violation" || k == "secret") return kDetection;
  if (k == "exec" || k == "fork") return kProcessLaunch;
  if (k == "exit") return kProcessTerminate;
  if (k == "open") return kFileOpen;
  if (k == "link") return ev.file().syscall().rfind("rename", 0) == 0 ? kFileRename : kFileCreate;
  if (k == "connect") return kNetworkOpen;
  if (k == "dns") return kDnsQuery;
  if (k == "tool_call") return kToolCall;
  if (k == "tool_list") return kToolList;
  return kBase;
}

// OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
int SeverityId(const writ::v1::Event& ev) {
  const std::string& s = ev.finding().severity();
  if (s == "low") return 2;
  if (s == "medium") return 3;
  if (s == "high") return 4;
  if (s == "critical") return 5;
  if (ev.verdict() == "violation") return 3;  // a violation without a stated severity
  return 1;
}
std::string_view SeverityName(int id) {
  switch (id) {
    case 2:
      return "Low";
    case 3:
      return "Medium";
    case 4:
      return "High";
    case 5:
      return "Critical";
    default:
      return "Informational";
  }
}

// Security-control disposition from writ's outcome. "killed_after": the access happened and the
// process was killed afterwards, so it is not "Blocked"; reported as Other with a caption saying
// so.
struct Disposition {
  int id;
  std::string_view name;
  int action_id;  // 1 Allowed, 2 Denied, 99 Other
  std::string_view action;
};
bool OutcomeDisposition(std::string_view outcome, Disposition* d) {
  if (outcome == "prevented" || outcome == "killed") {
    *d = {2, "Blocked", 2, "Denied"};
  } else if (outcome == "stopped") {
    *d = {3, "Quarantined", 2, "Denied"};
  } else if (outcome == "killed_after") {
    *d = {99, "Killed After Access", 99, "Killed After Access"};
  } else if (outcome == "would_deny" || outcome == "allowed") {
    *d = {1, "Allowed", 1, "Allowed"};
  } else {
    return false;
  }
  return true;
}

std::string_view Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}
std::string_view Dirname(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {};
  return slash == 0 ? path.substr(0, 1) : path.substr(0, slash);
}

void WriteUintAsString(JsonWriter& w, std::string_view key, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  w.Key(key);
  w.String(std::string_view(buf, static_cast<size_t>(end - buf)));
}

// OCSF process object. cmd_line is the args joined with spaces (escaped in place, no temporary).
void WriteProcess(const writ::v1::Process& p, JsonWriter& w) {
  w.BeginObject();
  w.Key("pid");
  w.Uint(p.pid());
  if (p.tid() != 0) {
    w.Key("tid");
    w.Uint(p.tid());
  }
  const std::string_view name = !p.comm().empty() ? std::string_view(p.comm()) : Basename(p.exe());
  w.StrField("name", name);
  if (!p.args().empty()) {
    w.Key("cmd_line");
    w.Raw("\"");
    for (int i = 0; i < p.args_size(); ++i) {
      if (i > 0) w.RawChars(" ");
      w.StringBody(p.args(i));
    }
    w.RawChars("\"");
  }
  if (!p.exe().empty()) {
    w.Key("file");
    w.BeginObject();
    w.StrField("name", Basename(p.exe()));
    w.StrField("path", p.exe());
    w.StrField("parent_folder", Dirname(p.exe()));
    w.Key("type_id");
    w.Uint(1);  // Regular File
    w.Key("type");
    w.String("Regular File");
    w.EndObject();
  }
  if (p.uid() != 0 || p.pid() != 0) {
    w.Key("user");
    w.BeginObject();
    WriteUintAsString(w, "uid", p.uid());
    w.EndObject();
  }
  if (p.ppid() != 0) {
    w.Key("parent_process");
    w.BeginObject();
    w.Key("pid");
    w.Uint(p.ppid());
    w.EndObject();
  }
  if (p.start_time_ns() != 0) {
    // (pid, boot-time start) names a process uniquely across pid reuse.
    char buf[48];
    auto r1 = std::to_chars(buf, buf + 16, p.pid());  // a uint32 needs at most 10 bytes
    *r1.ptr = ':';
    auto r2 = std::to_chars(r1.ptr + 1, buf + sizeof(buf), p.start_time_ns());
    w.Key("uid");
    w.String(std::string_view(buf, static_cast<size_t>(r2.ptr - buf)));
  }
  if ((!p.filename().empty() && p.filename() != p.exe()) || !p.script().empty()) {
    w.Key("xattributes");  // OCSF custom attribute bag on the process object
    w.BeginObject();
    if (p.filename() != p.exe()) w.StrField("execve_filename", p.filename());
    w.StrField("script", p.script());
    w.EndObject();
  }
  w.EndObject();
}

void WriteFile(const writ::v1::File& f, JsonWriter& w) {
  w.BeginObject();
  w.Key("name");
  w.String(Basename(f.path()));
  w.StrField("path", f.path());
  w.StrField("parent_folder", Dirname(f.path()));
  w.Key("type_id");
  w.Uint(f.unresolved() ? 0 : 1);  // 0 Unknown: the open failed before a file was resolved
  w.Key("type");
  w.String(f.unresolved() ? "Unknown" : "Regular File");
  w.EndObject();
}

void WriteDstEndpoint(const writ::v1::Network& n, JsonWriter& w) {
  w.BeginObject();
  w.StrField("name", n.path());  // a unix socket: its name (no address or port)
  w.StrField("ip", n.dst_ip());
  w.StrField("hostname", n.host());  // the name whose DNS answer pinned the address
  w.Key("port");
  w.Uint(n.dst_port());
  w.EndObject();
}

// dns.server, "192.0.2.53:53" or "[2001:db8::1]:53" (the port optional), as address and port.
struct HostPort {
  std::string_view ip;
  uint32_t port = 0;
  bool has_port = false;
};
HostPort SplitServer(std::string_view s) {
  HostPort hp{s};
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos) return hp;
    hp.ip = s.substr(1, close - 1);
    if (close + 1 < s.size() && s[close + 1] == ':') port = s.substr(close + 2);
  } else if (const size_t colon = s.find(':');
             colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos) {
    hp.ip = s.substr(0, colon);  // one colon: v4:port (more is an IPv6 address without a port)
    port = s.substr(colon + 1);
  }
  uint32_t v = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (!port.empty() && ec == std::errc() && end == port.data() + port.size() && v <= 65535) {
    hp.port = v;
    hp.has_port = true;
  }
  return hp;
}

// The query and where it went, for DNS Activity and for a Detection Finding's evidence: query
// {hostname, type, class}, dst_endpoint = the resolver the task addressed, connection_info = its
// transport.
void WriteDnsQuery(const writ::v1::Event& ev, JsonWriter& w) {
  const auto& d = ev.dns();
  if (!d.query().empty()) {  // a malformed query may have no name
    w.Key("query");
    w.BeginObject();
    w.StrField("hostname", d.query());
    w.StrField("type", d.qtype());
    w.Key("class");
    w.String("IN");  // the stub answers only IN questions
    w.EndObject();
  }
  if (!d.server().empty()) {
    const HostPort hp = SplitServer(d.server());
    w.Key("dst_endpoint");
    w.BeginObject();
    w.StrField("ip", hp.ip);
    if (hp.has_port) {
      w.Key("port");
      w.Uint(hp.port);
    }
    w.EndObject();
  }
  if (!ev.host().empty()) {
    w.Key("src_endpoint");
    w.BeginObject();
    w.StrField("hostname", ev.host());
    w.EndObject();
  }
  if (!d.transport().empty()) {
    w.Key("connection_info");
    w.BeginObject();
    w.StrField("protocol_name", d.transport());
    if (d.transport() == "udp" || d.transport() == "tcp") {
      w.Key("protocol_num");
      w.Uint(d.transport() == "udp" ? 17 : 6);
    }
    w.Key("direction_id");
    w.Uint(2);  // the task's query, out of the task
    w.Key("direction");
    w.String("Outbound");
    w.EndObject();
  }
}

// OCSF DNS rcode_id (RFC 6895 numbering) from writd's rcode name; anything else is 99 Other with
// the name as given.
bool DnsRcode(std::string_view rcode, int* id, std::string_view* caption) {
  static constexpr struct {
    std::string_view name;
    int id;
    std::string_view caption;
  } kRcodes[] = {
      {"NOERROR", 0, "NoError"},   {"FORMERR", 1, "FormError"}, {"SERVFAIL", 2, "ServError"},
      {"NXDOMAIN", 3, "NXDomain"}, {"NOTIMP", 4, "NotImp"},     {"REFUSED", 5, "Refused"},
      {"YXDOMAIN", 6, "YXDomain"}, {"YXRRSET", 7, "YXRRSet"},   {"NXRRSET", 8, "NXRRSet"},
      {"NOTAUTH", 9, "NotAuth"},   {"NOTZONE", 10, "NotZone"},
  };
  if (rcode.empty()) return false;
  for (const auto& r : kRcodes) {
    if (r.name == rcode) {
      *id = r.id;
      *caption = r.caption;
      return true;
    }
  }
  *id = 99;
  *caption = rcode;
  return true;
}

// DNS Activity's answer: the CNAME chain from the query name, then the addresses at its end (type
// by address family, ttl = how long writd pins them), and the response code.
void WriteDnsAnswer(const writ::v1::Dns& d, JsonWriter& w) {
  if (d.answers_size() + d.cnames_size() > 0) {
    w.Key("answers");
    w.BeginArray();
    std::string_view owner = d.query();
    for (const std::string& cname : d.cnames()) {
      w.BeginObject();
      w.StrField("hostname", owner);
      w.Key("type");
      w.String("CNAME");
      w.Key("class");
      w.String("IN");
      w.Key("rdata");
      w.String(cname);
      w.EndObject();
      owner = cname;
    }
    for (const std::string& addr : d.answers()) {
      w.BeginObject();
      w.StrField("hostname", owner);
      w.Key("type");
      w.String(addr.find(':') != std::string::npos ? "AAAA" : "A");
      w.Key("class");
      w.String("IN");
      w.Key("rdata");
      w.String(addr);
      w.UintField("ttl", d.ttl());
      w.EndObject();
    }
    w.EndArray();
  }
  int id = 0;
  std::string_view caption;
  if (DnsRcode(d.rcode(), &id, &caption)) {
    w.Key("rcode_id");
    w.Uint(id);
    w.Key("rcode");
    w.String(caption);
  }
}

void WriteActor(const writ::v1::Event& ev, JsonWriter& w) {
  w.Key("actor");
  w.BeginObject();
  if (ev.has_process()) {
    const auto& p = ev.process();
    w.Key("process");
    if (ev.kind() == "exec" || ev.kind() == "fork") {
      // For a launch the actor is the parent; the launched image is `process`.
      w.BeginObject();
      w.Key("pid");
      w.Uint(p.ppid());
      w.EndObject();
    } else {
      WriteProcess(p, w);
    }
    w.Key("user");
    w.BeginObject();
    WriteUintAsString(w, "uid", p.uid());
    w.EndObject();
  }
  if (!ev.agent().spiffe_id().empty()) {
    w.Key("app_name");  // the acting agent workload
    w.String(ev.agent().spiffe_id());
  }
  if (!ev.agent().task_id().empty()) {
    w.Key("session");
    w.BeginObject();
    w.Key("uid");
    w.String(ev.agent().task_id());
    w.EndObject();
  }
  w.EndObject();
}

void WriteDevice(const writ::v1::Event& ev, JsonWriter& w) {
  w.Key("device");
  w.BeginObject();
  w.StrField("hostname", ev.host());
  w.Key("type_id");
  w.Uint(1);  // Server
  w.Key("type");
  w.String("Server");
  w.Key("os");
  w.BeginObject();
  w.Key("name");
  w.String("Linux");
  w.Key("type_id");
  w.Uint(200);
  w.Key("type");
  w.String("Linux");
  w.EndObject();
  w.EndObject();
}

// OCSF 1.9 ai_agent (the ai_operation profile): uid = the SPIFFE ID (stable across runs),
// instance_uid = the task (one run), name = the intent, charter = the intent file and its sha256.
void WriteAiAgent(const writ::v1::Agent& a, JsonWriter& w) {
  w.Key("ai_agent");
  w.BeginObject();
  w.Key("uid");
  w.String(a.spiffe_id());
  w.StrField("instance_uid", a.task_id());
  w.Key("name");
  w.String(a.intent().empty() ? std::string_view(a.spiffe_id()) : std::string_view(a.intent()));
  w.Key("type_id");
  w.Uint(0);  // the agent's framework is not something writ can see
  w.Key("type");
  w.String("Unknown");
  if (!a.charter().empty()) {
    w.Key("charter");
    w.BeginObject();
    w.Key("name");
    w.String(Basename(a.charter()));
    w.Key("path");
    w.String(a.charter());
    w.Key("type_id");
    w.Uint(1);
    w.Key("type");
    w.String("Regular File");
    if (!a.charter_sha256().empty()) {
      w.Key("hashes");
      w.BeginArray();
      w.BeginObject();
      w.Key("algorithm_id");
      w.Uint(3);
      w.Key("algorithm");
      w.String("SHA-256");
      w.Key("value");
      w.String(a.charter_sha256());
      w.EndObject();
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndObject();
}

// The MCP call of a tool_call / tool_list event.
void WriteApi(const writ::v1::Event& ev, JsonWriter& w) {
  const auto& t = ev.tool();
  w.Key("api");
  w.BeginObject();
  w.Key("operation");
  w.String(ev.kind() == "tool_list" ? "tools/list" : "tools/call");
  if (!t.name().empty()) {
    w.Key("service");
    w.BeginObject();
    w.Key("name");
    w.String(t.name());
    w.EndObject();
  }
  if (!t.call_id().empty()) {
    w.Key("request");
    w.BeginObject();
    w.Key("uid");
    w.String(t.call_id());
    w.EndObject();
  }
  if (!t.status().empty()) {
    w.Key("response");
    w.BeginObject();
    w.Key("message");
    w.String(t.status());
    w.StrField("error_message", t.error());
    w.EndObject();
  }
  w.EndObject();
}

struct Profiles {
  bool security_control = false;
  bool ai_operation = false;
};

void WriteMetadata(const writ::v1::Event& ev, const Profiles& p, JsonWriter& w) {
  w.Key("metadata");
  w.BeginObject();
  w.Key("version");
  w.String(kOcsfVersion);
  // The profiles this event's attributes come from: device and actor (host) always.
  w.Key("profiles");
  w.BeginArray();
  w.String("host");
  if (p.security_control) w.String("security_control");
  if (p.ai_operation) w.String("ai_operation");
  w.EndArray();
  w.Key("product");
  w.BeginObject();
  w.Key("name");
  w.String("writ");
  w.Key("vendor_name");
  w.String("writ");
  w.EndObject();
  w.StrField("uid", ev.id());  // stable event id: receivers de-duplicate on it
  w.StrField("original_time", ev.time());
  w.StrField("event_code", ev.kind());
  w.StrField("log_name", "writ");
  w.EndObject();
}

// Everything writ knows that OCSF 1.4 has no settled place for.
void WriteUnmapped(const writ::v1::Event& ev, JsonWriter& w) {
  const auto mark = w.Save();
  w.Key("unmapped");
  w.BeginObject();
  w.Key("writ");
  w.BeginObject();
  if (ev.has_agent()) WriteAgent(ev.agent(), w);
  w.StrField("kind", ev.kind());
  w.StrField("verdict", ev.verdict());
  w.StrField("outcome", ev.outcome());
  w.StrField("enforcement", ev.enforcement());
  w.UintField("ktime_ns", ev.ktime_ns());
  if (ev.has_finding()) {
    const auto& f = ev.finding();
    w.StrField("rule", f.rule());
    w.StrField("category", f.category());
    w.StrListField("responses", f.responses());
  }
  if (ev.has_file()) {
    w.StrListField("file_flags", ev.file().flags());
    w.UintField("file_raw_flags", ev.file().raw_flags());
    w.StrField("file_syscall", ev.file().syscall());
    w.UintField("file_inode", ev.file().inode());
    w.UintField("file_dev", ev.file().dev());
    w.Key("file_result");
    w.Int(ev.file().result());
  }
  if (ev.has_network()) {
    w.StrField("network_hook", ev.network().hook());
    w.Key("network_result");
    w.Int(ev.network().result());
  }
  if (ev.has_process()) {
    if (ev.process().args_truncated()) w.BoolField("args_truncated", true);
    if (ev.kind() == "exit") {
      w.Key("exit_code");
      w.Int(ev.process().exit_code());
      w.UintField("exit_signal", ev.process().exit_signal());
    }
  }
  if (ev.has_action()) WriteAction(ev.action(), w);
  if (ev.has_approval()) WriteApproval(ev.approval(), w);
  if (ev.has_task()) {
    const auto& t = ev.task();
    w.Key("task");
    w.BeginObject();
    w.StrField("reason", t.reason());
    w.StrField("deadline", t.deadline());
    w.StrField("cgroup", t.cgroup());
    w.BoolField("adopted", t.adopted());
    w.StrListField("command", t.command());
    w.StrField("workload", t.workload());
    w.UintField("run_uid", t.run_uid());
    w.StrField("run_user", t.run_user());
    w.BoolField("root", t.root());
    w.StrField("rung", t.rung());
    if (!t.params().empty()) {
      w.Key("params");
      w.BeginObject();
      for (const auto& kv : t.params()) {
        w.KeyEscaped(kv.first);
        w.String(kv.second);
      }
      w.EndObject();
    }
    w.EndObject();
  }
  if (ev.has_credential()) WriteCredential(ev.credential(), w);
  if (ev.has_tool()) WriteTool(ev.tool(), w);
  if (ev.has_dns()) WriteDns(ev.dns(), w);  // writd's own words: verdict, reason, rule, rcode
  w.EndObject();
  w.EndObjectOrRollback(mark);
}

// The activity-specific primary objects (process / file / dst_endpoint / query), shared by the
// activity classes and by a Detection Finding's evidence. The Network Activity classes have no
// `process` attribute: there the process is the actor's only.
void WriteActivityObjects(const writ::v1::Event& ev, const ClassInfo& c, JsonWriter& w) {
  if (ev.kind() == "tool_call" || ev.kind() == "tool_list") WriteApi(ev, w);
  if (ev.has_process() && c.category_uid != 4 &&
      (ev.kind() == "exec" || ev.kind() == "fork" || ev.kind() == "exit" || !ev.has_file())) {
    w.Key("process");
    WriteProcess(ev.process(), w);
  }
  if (ev.has_file()) {
    w.Key("file");
    WriteFile(ev.file(), w);
    if (!ev.file().new_path().empty()) {  // a rename or link: the name it made
      writ::v1::File made;
      made.set_path(ev.file().new_path());
      w.Key("file_result");
      WriteFile(made, w);
    }
  }
  if (ev.has_network()) {
    w.Key("dst_endpoint");
    WriteDstEndpoint(ev.network(), w);
    if (!ev.host().empty()) {
      w.Key("src_endpoint");
      w.BeginObject();
      w.StrField("hostname", ev.host());
      w.EndObject();
    }
  } else if (ev.has_dns()) {
    WriteDnsQuery(ev, w);
  }
}

void WriteMessage(const writ::v1::Event& ev, JsonWriter& w) {
  w.Key("message");
  w.Raw("\"");
  if (ev.has_finding() && !ev.finding().reason().empty()) {
    w.StringBody(ev.finding().reason());
  } else {
    w.StringBody(ev.kind().empty() ? std::string_view("event") : ev.kind());
    if (ev.has_file()) {
      w.RawChars(" ");
      w.StringBody(ev.file().path());
    } else if (ev.has_network()) {
      w.RawChars(" ");
      w.StringBody(ev.network().dst_ip());
    } else if (ev.has_dns() && !ev.dns().query().empty()) {
      w.RawChars(" ");
      w.StringBody(ev.dns().query());
    } else if (ev.has_process() && !ev.process().exe().empty()) {
      w.RawChars(" ");
      w.StringBody(ev.process().exe());
    }
  }
  w.RawChars("\"");
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool Rfc3339ToUnixMillis(std::string_view s, int64_t* ms) {
  auto digits = [&](size_t pos, size_t n, int* v) {
    if (pos + n > s.size()) return false;
    int x = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!digits(0, 4, &y) || s.size() < 20 || s[4] != '-' || !digits(5, 2, &mo) || s[7] != '-' ||
      !digits(8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(11, 2, &h) ||
      s[13] != ':' || !digits(14, 2, &mi) || s[16] != ':' || !digits(17, 2, &sec)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  size_t pos = 19;
  int frac_ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return false;
    for (int i = n; i < 3; ++i) frac_ms *= 10;
  }
  int offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(pos + 4, 2, &om)) {
      return false;
    }
    offset_min = (s[pos] == '-' ? -1 : 1) * (oh * 60 + om);
    pos += 6;
  } else {
    return false;
  }
  if (pos != s.size()) return false;
  // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
  const int yy = y - (mo <= 2);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
  *ms = secs * 1000 + frac_ms;
  return true;
}

void AppendOcsf(const writ::v1::Event& ev, std::string* out) {
  const ClassInfo& c = Classify(ev);
  const int severity_id = SeverityId(ev);
  int64_t time_ms = 0;
  if (!Rfc3339ToUnixMillis(ev.time(), &time_ms)) time_ms = NowMillis();

  JsonWriter w(out);
  w.BeginObject();
  w.Key("class_uid");
  w.Uint(c.class_uid);
  w.Key("class_name");
  w.String(c.class_name);
  w.Key("category_uid");
  w.Uint(c.category_uid);
  w.Key("category_name");
  w.String(c.category_name);
  w.Key("activity_id");
  w.Uint(c.activity_id);
  w.Key("activity_name");
  w.String(c.class_uid == 0 && !ev.kind().empty() ? std::string_view(ev.kind()) : c.activity_name);
  w.Key("type_uid");
  w.Uint(static_cast<uint64_t>(c.class_uid) * 100 + c.activity_id);
  w.Key("type_name");
  w.Raw("\"");
  w.StringBody(c.class_name);
  w.RawChars(": ");
  w.StringBody(c.activity_name);
  w.RawChars("\"");
  w.Key("time");
  w.Int(time_ms);
  w.Key("severity_id");
  w.Uint(severity_id);
  w.Key("severity");
  w.String(SeverityName(severity_id));
  // Result of the syscall, when the event carries one.
  const bool has_result = ev.has_file() || ev.has_network();
  const int result = ev.has_file() ? ev.file().result() : ev.network().result();
  Disposition disp{};
  const bool has_disp = OutcomeDisposition(ev.outcome(), &disp);
  // ai_agent (profile ai_operation): on the event for the classes whose category includes the
  // profile (system, network, application), in the evidence of a Detection Finding; the base event
  // has no place for it.
  const Profiles profiles{.security_control = has_disp,
                          .ai_operation = !ev.agent().spiffe_id().empty() && c.class_uid != 0};
  WriteMessage(ev, w);
  WriteMetadata(ev, profiles, w);
  if (profiles.ai_operation && c.class_uid != 2004) WriteAiAgent(ev.agent(), w);

  if (c.class_uid == 2004) {
    w.Key("status_id");
    w.Uint(1);  // finding status: New
    w.Key("status");
    w.String("New");
    w.Key("is_alert");
    w.Bool(true);
    w.Key("finding_info");
    w.BeginObject();
    w.Key("uid");
    w.String(ev.id());
    w.Key("title");
    w.Raw("\"");
    if (!ev.finding().rule().empty()) {
      w.StringBody(ev.finding().rule());
    } else {
      w.RawChars("writ violation");
    }
    w.RawChars("\"");
    w.StrField("desc", ev.finding().reason());
    w.StrListField("types", ev.finding().frameworks());
    w.Key("created_time");
    w.Int(time_ms);
    if (!ev.finding().rule().empty()) {
      w.Key("analytic");
      w.BeginObject();
      w.Key("uid");
      w.String(ev.finding().rule());
      w.Key("name");
      w.String(ev.finding().rule());
      w.Key("type_id");
      w.Uint(1);
      w.Key("type");
      w.String("Rule");
      w.EndObject();
    }
    w.EndObject();
    w.Key("evidences");
    w.BeginArray();
    w.BeginObject();
    WriteActor(ev, w);
    WriteActivityObjects(ev, c, w);
    if (profiles.ai_operation) WriteAiAgent(ev.agent(), w);
    w.EndObject();
    w.EndArray();
    if (!ev.agent().task_id().empty()) {
      w.Key("resources");
      w.BeginArray();
      w.BeginObject();
      w.Key("uid");
      w.String(ev.agent().task_id());
      w.Key("type");
      w.String("writ.task");
      w.StrField("name", ev.agent().intent());
      w.EndObject();
      w.EndArray();
    }
  } else {
    if (has_result) {
      w.Key("status_id");
      w.Uint(result == 0 ? 1 : 2);  // Success / Failure
      w.Key("status");
      w.String(result == 0 ? "Success" : "Failure");
      if (result != 0) {
        w.Key("status_code");  // a string in OCSF: the source's own code (-errno)
        w.String(std::to_string(result));
      }
    } else if (c.class_uid == 4003 && !ev.dns().verdict().empty()) {
      // allowed: answered from upstream (NXDOMAIN included); refused, malformed, failed: not.
      const bool ok = ev.dns().verdict() == "allowed";
      w.Key("status_id");
      w.Uint(ok ? 1 : 2);
      w.Key("status");
      w.String(ok ? "Success" : "Failure");
      w.StrField("status_detail", ev.dns().reason());
    } else if (c.class_uid == 6003 && !ev.tool().status().empty()) {
      const bool ok = ev.tool().status() == "ok" || ev.tool().status() == "filtered";
      w.Key("status_id");
      w.Uint(ok ? 1 : 2);
      w.Key("status");
      w.String(ok ? "Success" : "Failure");
    }
    if (c.class_uid == 6003) {
      // API Activity requires where the call came from: the MCP client on this host, through the
      // launcher's gateway.
      w.Key("src_endpoint");
      w.BeginObject();
      w.Key("name");
      w.String("mcp-client");
      w.StrField("hostname", ev.host());
      w.EndObject();
    }
    if (c.class_uid != 0) {
      WriteActor(ev, w);
      WriteActivityObjects(ev, c, w);
    }
    if (c.class_uid == 4003) WriteDnsAnswer(ev.dns(), w);
  }
  if (has_disp) {
    w.Key("disposition_id");
    w.Uint(disp.id);
    w.Key("disposition");
    w.String(disp.name);
    w.Key("action_id");
    w.Uint(disp.action_id);
    w.Key("action");
    w.String(disp.action);
  }
  WriteDevice(ev, w);
  WriteUnmapped(ev, w);
  w.EndObject();
}

}  // namespace writ::sinks
