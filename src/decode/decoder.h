// Decoder: ring-buffer record (include/writ/abi/events.h) -> writ.v1.Event. The only userspace code
// that reads ABI structs. Checks ABI version and sizes; reuses the Event's storage, so a steady
// stream allocates nothing once strings and repeated fields have grown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "writ/abi/events.h"
#include "writ/event_kind.h"
#include "writ/v1/event.pb.h"

namespace writ::decode {

// What the pipeline needs besides the Event itself: what the kernel already did, as named fields
// (the decoder is the only userspace reader of the ABI's WRIT_F_* bits).
struct RecordInfo {
  EventKind kind = EventKind::kNone;
  bool needs_verdict =
      false;  // userspace must act now (the kernel killed or stopped a process, ...)
  bool kernel_denied = false;  // the kernel applied a deny: EPERM (connect, LSM) or SIGKILL
  bool kernel_stopped =
      false;             // the kernel stopped the process (SIGSTOP) until userspace judges it
  bool lsm = false;      // refused by a BPF-LSM hook: the action never happened
  bool seccomp = false;  // self: refused by the task's seccomp filter (never executed)
  bool script = false;   // exec: a shebang script (process.filename names it)
  bool loader = false;   // exec: a dynamic loader run as a program (userspace finds what it runs)
  bool path_truncated = false;  // exec/open: the kernel's path walk did not reach the root
  uint32_t kernel_verdict = 0;  // enum writ_kernel_verdict (exec, connect)
  uint64_t cgroup_id = 0;
  uint64_t start_time_ns = 0;
  uint32_t tgid = 0;
  uint32_t slot = 0;
  uint64_t ktime_ns = 0;
};

struct DecoderStats {
  uint64_t decoded = 0;
  uint64_t bad_version = 0;
  uint64_t bad_size = 0;
  uint64_t bad_kind = 0;
};

class Decoder {
 public:
  // boot_to_unix_ns converts bpf_ktime_get_boot_ns() to Unix time; boot_tag prefixes event ids.
  Decoder(int64_t boot_to_unix_ns, std::string boot_tag);

  // Clears *ev and fills it. On error the record is counted and ev is unspecified.
  absl::Status Decode(const void* data, size_t size, v1::Event* ev, RecordInfo* info);

  const DecoderStats& stats() const { return stats_; }

 private:
  void ClearForRecord(uint16_t kind, v1::Event* ev);

  int64_t boot_to_unix_ns_;
  std::string boot_tag_;
  DecoderStats stats_;
  // Sub-messages of the kinds the last record did not use, kept with their buffers
  // (ClearForRecord).
  std::unique_ptr<v1::File> spare_file_;
  std::unique_ptr<v1::Network> spare_network_;
  std::unique_ptr<v1::Syscall> spare_syscall_;
};

// Leaf-first component encoding ("file\0dir\0usr\0") -> "/usr/dir/file". Appends to *out.
void ComponentsToPath(const char* data, size_t len, std::string* out);
// O_* flags -> read/write/create/truncate, appended to the repeated field.
void AppendOpenFlags(uint32_t flags, google::protobuf::RepeatedPtrField<std::string>* out);
// ABI record kind -> event kind name ("unknown" for anything else).
const char* KindName(uint16_t kind);
// x86_64 number of a syscall the self-protection hooks watch -> its name ("unknown" otherwise).
const char* SelfSyscallName(uint32_t nr);
// `base` (absolute) joined with `rel` and normalised lexically ("." dropped, ".." taken off, never
// above
// "/"); `rel` absolute is normalised alone. Appends to *out.
void LexicalJoin(std::string_view base, std::string_view rel, std::string* out);

// An adoption candidate (WRIT_EV_ADOPT): an exec outside every task that the kernel pre-filter
// matched. Not an Event: it belongs to no task until writd has adopted the process.
struct AdoptRecord {
  uint32_t tgid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t start_time_ns = 0;
  uint64_t ktime_ns = 0;
  uint64_t cgroup_id = 0;  // the process's own cgroup
  bool stopped = false;    // the kernel sent SIGSTOP: whoever decides must continue or kill it
  uint32_t match = 0;      // WRIT_ADOPT_M_*
  uint64_t path_hash = 0;
  std::string comm;
};
bool IsAdoptRecord(const void* data, size_t size);
absl::Status DecodeAdopt(const void* data, size_t size, AdoptRecord* out);

}  // namespace writ::decode
