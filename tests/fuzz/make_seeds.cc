// Regenerates the binary seed corpora (decoder records, Event protobufs, control frames) from
// readable builders: `cmake --build build-fuzz --target writ_fuzz_seeds &&
// build-fuzz/bin/make_seeds tests/fuzz/corpus`. The policy seeds are plain YAML files.
#include <fcntl.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "testlib/record_builder.h"
#include "writ/v1/api.pb.h"
#include "writ/v1/event.pb.h"

namespace {

std::string dir;

void Put(const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}
void PutRec(const std::string& name, const std::vector<uint8_t>& r) {
  Put("decoder/" + name, std::string(r.begin(), r.end()));
}
void PutFrame(const std::string& name, const writ::v1::Request& req) {
  std::string p = req.SerializeAsString();
  uint32_t n = p.size();
  std::string f = {char(n & 0xff), char((n >> 8) & 0xff), char((n >> 16) & 0xff), char(n >> 24)};
  Put("api_request/" + name, f + p);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  dir = argv[1];
  using writ::testlib::RecordBuilder;
  PutRec("exec", RecordBuilder::Exec()
                     .Pid(42)
                     .Ppid(1)
                     .Comm("curl")
                     .Exe("/usr/bin/curl")
                     .Filename("curl")
                     .Args({"curl", "-s", "https://example.org"})
                     .Build());
  PutRec("exec_memfd", RecordBuilder::Exec()
                           .Pid(43)
                           .Exe("/memfd:x (deleted)")
                           .Filename("/proc/self/fd/3")
                           .Args({"x"})
                           .Build());
  PutRec("open",
         RecordBuilder::Open().Pid(42).OpenPath("/home/u/.ssh/id_rsa").OpenFlags(O_RDONLY).Build());
  PutRec("open_unresolved", RecordBuilder::Open()
                                .Pid(42)
                                .UnresolvedPath("../../etc/shadow")
                                .OpenFlags(O_WRONLY | O_CREAT)
                                .Result(-2)
                                .Build());
  PutRec("open_nonutf8", RecordBuilder::Open().Pid(42).OpenPath("/tmp/\xff\xfe/\xc3(").Build());
  PutRec("connect4", RecordBuilder::Connect().Pid(42).Dst("127.0.0.1", 443).Result(-1).Build());
  PutRec("connect6", RecordBuilder::Connect().Pid(42).Dst("::1", 8080).Build());
  PutRec("fork", RecordBuilder::Fork().Pid(44).Parent(42, 12345).Build());
  PutRec("exit", RecordBuilder::Exit().Pid(44).WaitStatus(9).Build());

  writ::v1::Event ev;
  ev.set_id("b-1");
  ev.set_time("2026-01-01T00:00:00.000000000Z");
  ev.set_kind("exec");
  ev.mutable_agent()->set_spiffe_id("spiffe://example.org/agent/x");
  ev.mutable_agent()->set_task_id("t-abc");
  ev.mutable_process()->set_pid(42);
  ev.mutable_process()->set_exe("/usr/bin/curl \"quoted\"\n\t\\");
  ev.mutable_process()->add_args("curl");
  ev.mutable_process()->add_args("\x01\x1f");
  Put("json_encoder/exec", ev.SerializeAsString());
  ev.Clear();
  ev.set_kind("open");
  ev.mutable_file()->set_path("/etc/shadow");
  ev.mutable_file()->set_result(-13);
  Put("json_encoder/open", ev.SerializeAsString());
  ev.Clear();
  ev.set_kind("connect");
  ev.mutable_network()->set_dst_ip("::1");
  ev.mutable_network()->set_dst_port(443);
  Put("json_encoder/connect", ev.SerializeAsString());

  writ::v1::Request req;
  auto* ct = req.mutable_create_task();
  ct->set_spiffe_id("spiffe://example.org/agent/x");
  ct->set_intent("coding-agent");
  (*ct->mutable_params())["repo"] = "/src";
  ct->set_ttl("10m");
  ct->add_command("/bin/sh");
  PutFrame("create_task", req);
  req.Clear();
  req.mutable_tail()->set_agent("spiffe://example.org/agent/x");
  PutFrame("tail", req);
  req.Clear();
  req.mutable_kill_task()->set_task_id("t-abc");
  PutFrame("kill", req);
  req.Clear();
  req.mutable_decide_approval()->set_id("a-1");
  req.mutable_decide_approval()->set_approve(true);
  PutFrame("decide", req);
  return 0;
}
