// Fuzzes the control API's untrusted edge (any local user can connect to writd's socket): arbitrary
// bytes arrive on a real socketpair and go through api::ReadFrame into a writ.v1.Request, then the
// validation writd's dispatch applies before touching any state (SPIFFE ID of create_task, --ttl
// duration, the parent/task ids as opaque strings). Starting a whole daemon per input would need
// BPF and cgroups, so the dispatch itself is covered by the e2e tests (writd_e2e_test,
// evasion_e2e_test).
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/time/time.h"
#include "api/framing.h"
#include "fuzz/fuzz_common.h"
#include "identity/spiffe_id.h"
#include "util/util.h"
#include "writ/v1/api.pb.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  writ::fuzz::QuietLogs();
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

namespace {

void CheckSpiffeId(const std::string& s) {
  auto id = writ::identity::ParseSpiffeId(s);
  if (!id.ok()) {
    if (id.status().message().empty()) abort();
    return;
  }
  // What writd stores and prints must itself be a valid ID naming the same workload.
  auto again = writ::identity::ParseSpiffeId(id->ToString());
  if (!again.ok() || again->ToString() != id->ToString()) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) abort();
  // The default unix socket buffer holds far more than -max_len; a short write just truncates the
  // frame, which ReadFrame must report as an error like any peer that hangs up early.
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  shutdown(sv[1], SHUT_WR);
  writ::v1::Request req;
  absl::Status st = writ::api::ReadFrame(sv[0], &req, absl::Milliseconds(200));
  close(sv[0]);
  close(sv[1]);
  if (!st.ok()) {
    if (st.message().empty()) abort();
    return 0;
  }
  switch (req.body_case()) {
    case writ::v1::Request::kCreateTask: {
      const auto& ct = req.create_task();
      CheckSpiffeId(ct.spiffe_id());
      if (!ct.ttl().empty()) {
        auto d = writ::ParseDuration(ct.ttl());
        if (d.ok() && *d < absl::ZeroDuration()) abort();  // a negative TTL would end tasks at once
      }
      break;
    }
    case writ::v1::Request::kTail:
      if (!req.tail().agent().empty()) CheckSpiffeId(req.tail().agent());
      break;
    default:
      break;
  }
  // A request writd accepted must survive the round trip the CLI does (serialize, reparse).
  std::string again;
  if (!req.SerializeToString(&again)) abort();
  writ::v1::Request back;
  if (!back.ParseFromString(again)) abort();
  return 0;
}
