// The OCSF sink's output against the published OCSF schema (tests/data/ocsf-schema: the schema's
// own JSON source, version.json says which): every attribute written exists in its class or object
// (or in a profile the event lists in metadata.profiles), has the schema's type, an enum value the
// schema defines (and the caption of an *_id's sibling matches it), and every `requirement:
// required` attribute of the class and of each object written is present. One event of every kind
// writ emits.
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sinks/ocsf_encoder.h"

namespace writ::sinks {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

json Load(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

class Schema {
 public:
  explicit Schema(const fs::path& root) : root_(root) {
    dict_ = Load(root / "dictionary.json");
    const json cats = Load(root / "categories.json");  // kept: items() refers into it
    for (const auto& [k, v] : cats["attributes"].items()) {
      categories_[k] = v["uid"].get<int>();
    }
    for (const auto& e : fs::recursive_directory_iterator(root / "events")) {
      if (e.path().extension() != ".json") continue;
      json c = Load(e.path());
      classes_[c["name"].get<std::string>()] = c;
    }
    for (const auto& e : fs::directory_iterator(root / "objects")) {
      json o = Load(e.path());
      objects_[o["name"].get<std::string>()] = o;
    }
    for (auto& [name, c] : classes_) {
      json attrs = Attributes(c, classes_);
      int cat = -1, uid = -1;
      for (const json* k = &c; k;) {
        if (cat < 0 && k->contains("category"))
          cat = categories_[(*k)["category"].get<std::string>()];
        if (uid < 0 && k->contains("uid")) uid = (*k)["uid"].get<int>();
        k = k->contains("extends") ? &classes_.at((*k)["extends"].get<std::string>()) : nullptr;
      }
      by_uid_[name == "base_event" ? 0 : cat * 1000 + uid] = attrs;
    }
  }

  // Attributes of a class or object: its `extends` chain (parent first, the child's entries
  // override key by key) and its `$include`d profiles (tagged with the profile's name).
  json Attributes(const json& def, const std::map<std::string, json>& pool) {
    json out = json::object();
    if (def.contains("extends")) {
      auto it = pool.find(def["extends"].get<std::string>());
      if (it != pool.end()) out = Attributes(it->second, pool);
    }
    auto merge = [&](const json& attrs, const std::string& profile) {
      for (const auto& [k, v] : attrs.items()) {
        if (k == "$include") continue;
        json& slot = out[k];
        if (!slot.is_object()) slot = json::object();
        for (const auto& [ak, av] : v.items()) {
          // Enums add up along the chain (a class's activities keep the base event's 0 and 99).
          if (ak == "enum" && slot.contains("enum") && slot["enum"].is_object() && av.is_object()) {
            for (const auto& [ek, ev] : av.items()) slot["enum"][ek] = ev;
          } else {
            slot[ak] = av;
          }
        }
        if (!profile.empty() && !slot.contains("profile")) slot["profile"] = profile;
      }
    };
    const json& attrs = def["attributes"];
    if (attrs.contains("$include")) {
      for (const auto& inc : attrs["$include"]) {
        json p = Load(root_ / inc.get<std::string>());
        merge(p["attributes"],
              p.value("meta", "") == "profile" ? p["name"].get<std::string>() : "");
      }
    }
    merge(attrs, "");
    return out;
  }

  // Dictionary type of `key` resolved to a primitive (string_t, integer_t, long_t, float_t,
  // boolean_t, json_t) or an object name.
  std::string Type(const std::string& key, const json& attr) const {
    std::string t = attr.value("type", "");
    if (t.empty() && dict_["attributes"].contains(key))
      t = dict_["attributes"][key].value("type", "");
    const json& types = dict_["types"]["attributes"];
    while (types.contains(t) && types[t].contains("type")) t = types[t]["type"].get<std::string>();
    return t;
  }
  bool IsArray(const std::string& key, const json& attr) const {
    if (attr.contains("is_array")) return attr["is_array"].get<bool>();
    return dict_["attributes"].contains(key) && dict_["attributes"][key].value("is_array", false);
  }
  json Enum(const std::string& key, const json& attr) const {
    if (attr.contains("enum")) return attr["enum"];
    if (dict_["attributes"].contains(key) && dict_["attributes"][key].contains("enum")) {
      return dict_["attributes"][key]["enum"];
    }
    return nullptr;
  }

  void CheckObject(const json& v, const json& attrs, const std::string& path,
                   const std::set<std::string>& profiles, const json& constraints,
                   std::vector<std::string>* errors) {
    if (!v.is_object()) {
      errors->push_back(path + ": not an object");
      return;
    }
    for (const auto& [k, val] : v.items()) {
      const std::string at = path.empty() ? k : path + "." + k;
      if (path.empty() && k == "unmapped") continue;  // writ's own, by definition not in the schema
      if (!attrs.contains(k)) {
        errors->push_back(at + ": not an attribute here");
        continue;
      }
      const json& a = attrs[k];
      if (a.contains("profile") && !a["profile"].is_null() &&
          !profiles.count(a["profile"].get<std::string>())) {
        errors->push_back(at + ": from profile " + a["profile"].get<std::string>() +
                          ", which metadata.profiles does not list");
      }
      if (IsArray(k, a)) {
        if (!val.is_array()) {
          errors->push_back(at + ": not an array");
          continue;
        }
        for (size_t i = 0; i < val.size(); ++i) {
          CheckValue(k, a, val[i], absl::StrCat(at, "[", i, "]"), profiles, errors);
        }
      } else {
        CheckValue(k, a, val, at, profiles, errors);
      }
    }
    for (const auto& [k, a] : attrs.items()) {
      if (a.value("requirement", "") != "required" || v.contains(k)) continue;
      if (a.contains("profile") && !a["profile"].is_null() &&
          !profiles.count(a["profile"].get<std::string>())) {
        continue;
      }
      errors->push_back((path.empty() ? k : path + "." + k) + ": required, missing");
    }
    if (constraints.is_object() && constraints.contains("at_least_one")) {
      bool any = false;
      for (const auto& k : constraints["at_least_one"])
        any = any || v.contains(k.get<std::string>());
      if (!any) errors->push_back(path + ": none of " + constraints["at_least_one"].dump());
    }
  }

  void CheckValue(const std::string& key, const json& attr, const json& val, const std::string& at,
                  const std::set<std::string>& profiles, std::vector<std::string>* errors) {
    const std::string t = Type(key, attr);
    bool ok = true;
    if (t == "string_t") {
      ok = val.is_string();
    } else if (t == "integer_t" || t == "long_t") {
      ok = val.is_number_integer();
    } else if (t == "float_t") {
      ok = val.is_number();
    } else if (t == "boolean_t") {
      ok = val.is_boolean();
    } else if (t == "json_t" || t == "object") {
      ok = true;
    } else if (objects_.count(t)) {
      const json& def = objects_.at(t);
      CheckObject(val, Attributes(def, objects_), at, profiles,
                  def.value("constraints", json(nullptr)), errors);
      return;
    } else {
      errors->push_back(at + ": unknown type " + t);
      return;
    }
    if (!ok) {
      errors->push_back(at + ": " + val.dump() + " is not a " + t);
      return;
    }
    json e = Enum(key, attr);
    // class_uid, category_uid and type_uid are checked against the class found, not an enum the
    // schema server would generate.
    if (e.is_object() && key != "class_uid" && key != "category_uid" && key != "type_uid") {
      const std::string s = val.is_string() ? val.get<std::string>() : val.dump();
      if (!e.contains(s)) errors->push_back(at + ": " + s + " is not in its enum");
    }
  }

  // Sibling captions: x_id with an enum and a string x next to it (x_id 99 = Other: free text).
  void CheckCaptions(const json& v, const json& attrs, const std::string& path,
                     std::vector<std::string>* errors) {
    if (!v.is_object()) return;
    for (const auto& [k, val] : v.items()) {
      if (k.size() > 3 && k.compare(k.size() - 3, 3, "_id") == 0 && val.is_number_integer() &&
          attrs.contains(k)) {
        const std::string sib = k.substr(0, k.size() - 3);
        json e = Enum(k, attrs[k]);
        const std::string id = val.dump();
        if (e.is_object() && e.contains(id) && id != "99" && v.contains(sib) &&
            v[sib].is_string() && v[sib] != e[id]["caption"]) {
          errors->push_back(path + sib + ": \"" + v[sib].get<std::string>() + "\" but " + k + " " +
                            id + " is \"" + e[id]["caption"].get<std::string>() + "\"");
        }
      }
    }
  }

  std::vector<std::string> Check(const json& ev) {
    std::vector<std::string> errors;
    const int uid = ev.value("class_uid", -1);
    if (!by_uid_.count(uid)) return {absl::StrCat("class_uid ", uid, " is not a class")};
    std::set<std::string> profiles;
    if (ev.contains("metadata") && ev["metadata"].contains("profiles")) {
      for (const auto& p : ev["metadata"]["profiles"]) profiles.insert(p.get<std::string>());
    }
    const json& attrs = by_uid_[uid];
    CheckObject(ev, attrs, "", profiles, nullptr, &errors);
    CheckCaptions(ev, attrs, "", &errors);
    if (ev.value("category_uid", -1) != uid / 1000)
      errors.push_back("category_uid is not class_uid / 1000");
    if (ev.value("type_uid", 0) != uid * 100 + ev.value("activity_id", -1)) {
      errors.push_back("type_uid is not class_uid * 100 + activity_id");
    }
    return errors;
  }

  std::string version() const { return Load(root_ / "version.json")["version"].get<std::string>(); }

 private:
  fs::path root_;
  json dict_;
  std::map<std::string, int> categories_;
  std::map<std::string, json> classes_, objects_;
  std::map<int, json> by_uid_;
};

writ::v1::Event Base(const char* kind) {
  writ::v1::Event e;
  e.set_id("b00t-1-7");
  e.set_time("2026-12-06T10:00:00.123456789Z");
  e.set_ktime_ns(1234567);
  e.set_kind(kind);
  e.set_host("writ-host");
  auto* a = e.mutable_agent();
  a->set_spiffe_id("spiffe://example.org/agent/coder");
  a->set_task_id("t-0123456789ab");
  a->set_principal("user:alice@example.org");
  a->set_intent("mcp-filesystem");
  a->set_charter("/etc/writ/policies/mcp-filesystem.yaml");
  a->set_charter_sha256(std::string(64, 'a'));
  a->add_chain("user:alice@example.org");
  a->add_chain("spiffe://example.org/agent/coder");
  return e;
}

void Proc(writ::v1::Event* e) {
  auto* p = e->mutable_process();
  p->set_pid(42);
  p->set_tid(42);
  p->set_ppid(41);
  p->set_uid(1000);
  p->set_exe("/usr/bin/node");
  p->add_args("node");
  p->add_args("server.js");
  p->set_start_time_ns(99);
}

std::vector<writ::v1::Event> Corpus() {
  std::vector<writ::v1::Event> v;
  auto exec = Base("exec");
  Proc(&exec);
  exec.set_verdict("allow");
  exec.set_outcome("allowed");
  v.push_back(exec);
  auto open = Base("open");
  Proc(&open);
  open.mutable_file()->set_path("/srv/docs/a.txt");
  open.mutable_file()->add_flags("read");
  open.mutable_tool()->set_name("read_text_file");
  open.mutable_tool()->set_call_id("7");
  open.mutable_tool()->set_in_flight(1);
  v.push_back(open);
  auto failed = Base("open");
  Proc(&failed);
  failed.mutable_file()->set_path("/nope");
  failed.mutable_file()->set_result(-2);
  failed.mutable_file()->set_unresolved(true);
  v.push_back(failed);
  auto bad = Base("open");
  Proc(&bad);
  bad.mutable_file()->set_path("/etc/shadow");
  bad.mutable_file()->add_flags("read");
  bad.set_verdict("violation");
  bad.set_outcome("killed_after");
  bad.set_enforcement("kernel-signal");
  auto* f = bad.mutable_finding();
  f->set_rule("mcp-filesystem/files.deny[0]");
  f->set_category("file");
  f->set_reason("open of a path denied by files.deny[0]: /etc/shadow");
  f->add_frameworks("OWASP-ASI02");
  f->add_responses("kill");
  f->set_severity("high");
  bad.mutable_tool()->set_name("read_text_file");
  bad.mutable_tool()->set_call_id("8");
  bad.mutable_tool()->set_in_flight(1);
  v.push_back(bad);
  auto conn = Base("connect");
  Proc(&conn);
  conn.mutable_network()->set_family("inet");
  conn.mutable_network()->set_dst_ip("10.0.0.1");
  conn.mutable_network()->set_dst_port(443);
  conn.mutable_network()->set_result(-1);
  conn.set_verdict("violation");
  conn.set_outcome("prevented");
  *conn.mutable_finding() = *f;
  v.push_back(conn);
  auto call = Base("tool_call");
  auto* t = call.mutable_tool();
  t->set_name("read_text_file");
  t->set_call_id("7");
  t->set_arguments(R"({"path":"/srv/docs/a.txt"})");
  t->set_arguments_sha256(std::string(64, 'b'));
  t->set_status("ok");
  t->set_duration_us(1500);
  call.set_verdict("allow");
  call.set_outcome("allowed");
  v.push_back(call);
  auto denied = call;
  denied.mutable_tool()->set_status("denied");
  denied.mutable_tool()->set_error("tool move_file is denied by tools.deny[0]");
  denied.set_verdict("violation");
  denied.set_outcome("prevented");
  denied.set_enforcement("gateway");
  denied.mutable_finding()->set_rule("mcp-filesystem/tools.deny[0]");
  denied.mutable_finding()->set_category("tool");
  v.push_back(denied);
  auto list = Base("tool_list");
  list.mutable_tool()->add_offered("read_text_file");
  list.mutable_tool()->add_offered("move_file");
  list.mutable_tool()->add_hidden("move_file");
  list.mutable_tool()->set_status("filtered");
  v.push_back(list);
  auto start = Base("task_start");
  start.mutable_task()->set_cgroup("/writ/t-0123456789ab");
  v.push_back(start);
  auto self = Base("self");
  self.mutable_process()->set_pid(42);
  self.mutable_syscall()->set_name("control:tool_call");
  self.set_verdict("violation");
  self.set_outcome("prevented");
  self.mutable_finding()->set_rule("writ/self.control.tool_call");
  self.mutable_finding()->set_severity("critical");
  v.push_back(self);
  auto approval = Base("approval_request");
  approval.mutable_approval()->set_id("a-1");
  approval.mutable_approval()->set_action("tool_call edit_file {}");
  approval.set_verdict("needs_approval");
  approval.set_outcome("stopped");
  v.push_back(approval);
  // An allowed connect to an address a DNS answer pinned: Network Activity with the name.
  auto pinned = Base("connect");
  Proc(&pinned);
  pinned.mutable_network()->set_family("inet6");
  pinned.mutable_network()->set_dst_ip("2001:db8::10");
  pinned.mutable_network()->set_dst_port(443);
  pinned.mutable_network()->set_hook("syscall");
  pinned.mutable_network()->set_host("api.example.com");
  pinned.set_verdict("allow");
  pinned.set_outcome("allowed");
  v.push_back(pinned);
  // DNS: an allowed query answered through a CNAME, with IPv4 and IPv6 addresses ...
  auto dns = Base("dns");
  auto* d = dns.mutable_dns();
  d->set_query("api.example.com");
  d->set_qtype("A");
  d->set_verdict("allowed");
  d->set_rule("*.example.com");
  d->set_rcode("NOERROR");
  d->add_cnames("edge.cdn.example.net");
  d->add_answers("192.0.2.10");
  d->add_answers("2001:db8::10");
  d->set_ttl(300);
  d->set_server("192.0.2.53:53");
  d->set_transport("udp");
  v.push_back(dns);
  // ... a name that does not exist, over TCP to an IPv6 resolver ...
  auto nx = Base("dns");
  nx.mutable_dns()->set_query("nope.example.com");
  nx.mutable_dns()->set_qtype("AAAA");
  nx.mutable_dns()->set_verdict("allowed");
  nx.mutable_dns()->set_rcode("NXDOMAIN");
  nx.mutable_dns()->set_server("[2001:db8::53]:53");
  nx.mutable_dns()->set_transport("tcp");
  v.push_back(nx);
  // ... a query that did not parse (no name, no server known) ...
  auto malformed = Base("dns");
  malformed.mutable_dns()->set_verdict("malformed");
  malformed.mutable_dns()->set_reason("malformed query");
  malformed.mutable_dns()->set_rcode("FORMERR");
  malformed.mutable_dns()->set_transport("udp");
  v.push_back(malformed);
  // ... a refused name: a Detection Finding with the query as evidence ...
  auto refused = Base("dns");
  refused.mutable_dns()->set_query("pastebin.com");
  refused.mutable_dns()->set_qtype("A");
  refused.mutable_dns()->set_verdict("refused");
  refused.mutable_dns()->set_reason("not allowed");
  refused.mutable_dns()->set_rcode("REFUSED");
  refused.mutable_dns()->set_server("[2001:db8::1]:53");
  refused.mutable_dns()->set_transport("udp");
  refused.set_verdict("violation");
  refused.set_outcome("prevented");
  refused.set_enforcement("dns");
  refused.mutable_finding()->set_rule("mcp-filesystem/network.dns.default");
  refused.mutable_finding()->set_category("network");
  refused.mutable_finding()->set_reason("DNS query for a name not in network.dns: pastebin.com");
  refused.mutable_finding()->set_severity("high");
  refused.mutable_finding()->add_frameworks("OWASP-ASI02");
  v.push_back(refused);
  // ... and an exfiltration-shaped name that was answered (a finding, outcome allowed).
  auto exfil = dns;
  exfil.mutable_dns()->set_query(std::string(50, 'q') + ".example.com");
  exfil.mutable_dns()->clear_cnames();
  exfil.set_verdict("violation");
  exfil.set_outcome("allowed");
  exfil.mutable_finding()->set_rule("writ/dns.exfil");
  exfil.mutable_finding()->set_category("network");
  exfil.mutable_finding()->set_reason("long_label example.com");
  exfil.mutable_finding()->set_severity("medium");
  v.push_back(exfil);
  auto host = Base("action");
  host.clear_agent();  // writd's own events carry no agent
  host.mutable_action()->set_type("kill");
  v.push_back(host);
  return v;
}

class OcsfSchemaTest : public ::testing::Test {
 protected:
  static fs::path Dir() {
    if (const char* d = getenv("WRIT_OCSF_SCHEMA_DIR")) return d;
    return fs::path(WRIT_SOURCE_DIR) / "tests/data/ocsf-schema";
  }
};

TEST_F(OcsfSchemaTest, EveryEventKindConformsToThePublishedSchema) {
  Schema schema(Dir());
  for (const auto& ev : Corpus()) {
    std::string line;
    AppendOcsf(ev, &line);
    json out = json::parse(line);
    std::vector<std::string> errors = schema.Check(out);
    EXPECT_TRUE(errors.empty()) << ev.kind() << " (class " << out["class_uid"] << "):\n  "
                                << absl::StrJoin(errors, "\n  ") << "\n"
                                << line;
  }
}

// The checker itself: what writ wrote before (status_code a number, no profiles for the profile
// attributes it used), an unknown attribute, a bad enum, a missing required attribute, a caption
// that contradicts its id.
TEST_F(OcsfSchemaTest, TheCheckerFindsWhatIsWrong) {
  Schema schema(Dir());
  std::string line;
  AppendOcsf(Corpus()[2], &line);
  const json good = json::parse(line);
  ASSERT_TRUE(schema.Check(good).empty());
  auto broken = [&](const std::function<void(json&)>& f) {
    json j = good;
    f(j);
    return absl::StrJoin(schema.Check(j), "; ");
  };
  EXPECT_NE(
      broken([](json& j) { j["status_code"] = -2; }).find("status_code: -2 is not a string_t"),
      std::string::npos);
  EXPECT_NE(broken([](json& j) { j["metadata"]["profiles"] = json::array(); }).find("from profile"),
            std::string::npos);
  EXPECT_NE(broken([](json& j) { j["no_such"] = 1; }).find("no_such: not an attribute"),
            std::string::npos);
  EXPECT_NE(
      broken([](json& j) { j["severity_id"] = 42; }).find("severity_id: 42 is not in its enum"),
      std::string::npos);
  EXPECT_NE(
      broken([](json& j) { j["metadata"].erase("version"); }).find("metadata.version: required"),
      std::string::npos);
  EXPECT_NE(broken([](json& j) { j["file"].erase("name"); }).find("file.name: required"),
            std::string::npos);
  EXPECT_NE(broken([](json& j) { j["severity"] = "Critical"; }).find("severity:"),
            std::string::npos);
}

TEST_F(OcsfSchemaTest, VersionProfilesAiAgentAndStatusCode) {
  Schema schema(Dir());
  std::vector<writ::v1::Event> c = Corpus();
  std::string line;
  AppendOcsf(c[2], &line);  // the failed open
  json failed = json::parse(line);
  EXPECT_EQ(failed["status_code"], "-2");
  // The schema this was checked against is the version the events claim, minus its -dev suffix.
  EXPECT_EQ(absl::StrCat(failed["metadata"]["version"].get<std::string>(), "-dev"),
            schema.version());
  line.clear();
  AppendOcsf(c[3], &line);  // a violation: Detection Finding
  json finding = json::parse(line);
  EXPECT_EQ(finding["class_uid"], 2004);
  EXPECT_EQ(finding["metadata"]["profiles"], json({"host", "security_control", "ai_operation"}));
  const json& ag = finding["evidences"][0]["ai_agent"];
  EXPECT_EQ(ag["uid"], "spiffe://example.org/agent/coder");
  EXPECT_EQ(ag["instance_uid"], "t-0123456789ab");
  EXPECT_EQ(ag["name"], "mcp-filesystem");
  EXPECT_EQ(ag["charter"]["hashes"][0]["value"], std::string(64, 'a'));
  EXPECT_FALSE(finding.contains("ai_agent"));  // findings carry it in the evidence only
  EXPECT_EQ(finding["unmapped"]["writ"]["tool"]["name"], "read_text_file");
  line.clear();
  AppendOcsf(c[5], &line);  // tool_call
  json call = json::parse(line);
  EXPECT_EQ(call["class_uid"], 6003);
  EXPECT_EQ(call["api"]["operation"], "tools/call");
  EXPECT_EQ(call["api"]["service"]["name"], "read_text_file");
  EXPECT_EQ(call["api"]["request"]["uid"], "7");
  line.clear();
  AppendOcsf(c.back(), &line);  // no agent: no ai_operation profile
  EXPECT_EQ(json::parse(line)["metadata"]["profiles"], json({"host"}));
}

}  // namespace
}  // namespace writ::sinks
