// Builders for intent tests: events by name, not by positional arguments.
#pragma once

#include <initializer_list>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "intent/intent.h"

namespace writ::intent::testing {

class EventBuilder {
 public:
  static EventBuilder Exec(const std::string& exe, std::initializer_list<const char*> args = {}) {
    EventBuilder b("exec");
    b.ev_.mutable_process()->set_exe(exe);
    for (const char* a : args) b.ev_.mutable_process()->add_args(a);
    return b;
  }
  static EventBuilder Open(const std::string& path,
                           std::initializer_list<const char*> flags = {"read"}) {
    EventBuilder b("open");
    b.ev_.mutable_file()->set_path(path);
    for (const char* f : flags) b.ev_.mutable_file()->add_flags(f);
    return b;
  }
  static EventBuilder Connect(const std::string& ip, uint32_t port) {
    EventBuilder b("connect");
    b.ev_.mutable_network()->set_family(ip.find(':') == std::string::npos ? "inet" : "inet6");
    b.ev_.mutable_network()->set_dst_ip(ip);
    b.ev_.mutable_network()->set_dst_port(port);
    return b;
  }
  static EventBuilder Kind(const std::string& kind) { return EventBuilder(kind); }
  // A unix-socket connect: the name as given ("/run/x.sock", "@abstract"), the socket reached.
  static EventBuilder Unix(const std::string& name, const std::string& peer = "") {
    EventBuilder b("connect");
    b.ev_.mutable_network()->set_family("unix");
    b.ev_.mutable_network()->set_path(name);
    b.ev_.mutable_network()->set_peer_path(peer);
    return b;
  }
  // A rename, link or symlink: the existing name (or a symlink's content) and the new one.
  static EventBuilder Link(const std::string& syscall, const std::string& old_name,
                           const std::string& new_name) {
    EventBuilder b("link");
    b.ev_.mutable_file()->set_syscall(syscall);
    b.ev_.mutable_file()->set_path(old_name);
    b.ev_.mutable_file()->set_new_path(new_name);
    return b;
  }
  // exec: the program a dynamic loader run as a program loads.
  EventBuilder& Loaded(const std::string& program) {
    ev_.mutable_process()->set_loaded(program);
    return *this;
  }
  // exec: what runs could not be resolved whole.
  EventBuilder& Unresolved() {
    ev_.mutable_process()->set_unresolved(true);
    return *this;
  }
  // exec: the script a shebang exec runs (exe is its interpreter).
  EventBuilder& Script(const std::string& script) {
    ev_.mutable_process()->set_script(script);
    return *this;
  }
  // open: the identity of the file the kernel opened (kernel device encoding, inode).
  EventBuilder& FileId(uint32_t dev, uint64_t ino) {
    ev_.mutable_file()->set_dev(dev);
    ev_.mutable_file()->set_inode(ino);
    return *this;
  }
  operator const writ::v1::Event&() const { return ev_; }
  const writ::v1::Event& event() const { return ev_; }

 private:
  explicit EventBuilder(const std::string& kind) { ev_.set_kind(kind); }
  writ::v1::Event ev_;
};

inline absl::Time Noon() { return absl::FromUnixSeconds(1767268800); }  // 2026-01-01T12:00:00Z
inline EvalContext Ctx(int live = 1, absl::Time now = Noon()) { return EvalContext{now, live}; }

// Loads one intent from YAML text; fails the test on error.
inline writ::v1::Intent MustParse(const std::string& yaml) {
  auto set = LoadPolicyText(yaml, "test.yaml");
  EXPECT_TRUE(set.ok()) << set.status();
  if (!set.ok() || set->intents().empty()) return {};
  return set->intents()[0];
}

inline std::shared_ptr<const CompiledIntent> MustCompile(
    const std::string& yaml, const absl::flat_hash_map<std::string, std::string>& params = {}) {
  auto ci = Compile(MustParse(yaml), params);
  EXPECT_TRUE(ci.ok()) << ci.status();
  return ci.ok() ? *ci : nullptr;
}

inline std::string RuleOf(const Verdict& v) { return v.rule ? v.rule->id : "(none)"; }

constexpr const char* kHeader = "apiVersion: writ.dev/v1\nkind: Intent\nname: t\n";

}  // namespace writ::intent::testing
