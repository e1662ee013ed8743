// RingReader: the consumer half of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF, kernel/bpf/ringbuf.c),
// in place of libbpf's ring_buffer for two things libbpf does not do:
//   - it tells the producers when it sleeps (struct writ_consumer_state in the ABI header): a
//   record
//     that needs a prompt verdict wakes writd only while writd waits in epoll, never while it
//     drains;
//   - it gives consumed space back once per batch (or per kReleaseBytes) instead of once per
//   record,
//     so producers reading the consumer position do not miss in cache on every record.
// Memory (ringbuf_map_mmap): page 0 is the consumer position (read-write); page 1 the producer
// position, then the data area mapped twice back to back (read-only), so a record that wraps is
// contiguous. A record is an 8-byte header {u32 len with BUSY/DISCARD bits, u32 page offset} and
// its bytes, the whole rounded up to 8. Single consumer thread; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "util/fd.h"
#include "writ/abi/events.h"

namespace writ::bpf {

class RingReader {
 public:
  using Handler = std::function<void(const void* data, size_t size)>;

  // ring_fd: the BPF_MAP_TYPE_RINGBUF map; state_fd: the BPF_F_MMAPABLE array whose element 0 is
  // the writ_consumer_state the producers read. Both fds stay owned by the caller.
  static absl::StatusOr<std::unique_ptr<RingReader>> Open(int ring_fd, int state_fd,
                                                          Handler handler);
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  // Calls the handler for every committed record, in order, until the ring is empty or a record is
  // still being written (BUSY). Returns the number of records (discarded ones are skipped, not
  // counted).
  int Consume();
  // Consume; if there was nothing, announce the sleep, wait up to timeout_ms for a wakeup (a prompt
  // record, or a large backlog), then consume. Returns records consumed, or -errno from epoll.
  int Poll(int timeout_ms);

  // Bytes committed or being written that have not been consumed.
  uint64_t Pending() const;
  bool sleeping() const;  // for tests
  // Poll spins this long for the next record before it sleeps (0: sleep at once).
  void set_spin_ns(int64_t ns) { spin_ns_ = ns; }

 private:
  explicit RingReader(Handler handler) : handler_(std::move(handler)) {}

  Handler handler_;
  Fd epoll_;
  size_t page_ = 0;
  uint64_t mask_ = 0;
  void* consumer_map_ = nullptr;  // page 0
  size_t producer_map_len_ = 0;
  void* producer_map_ = nullptr;  // page 1 + data twice
  void* state_map_ = nullptr;     // writ_consumer_state page
  size_t state_map_len_ = 0;
  uint64_t* consumer_pos_ = nullptr;
  const uint64_t* producer_pos_ = nullptr;
  const uint8_t* data_ = nullptr;
  writ_consumer_state* state_ = nullptr;
  bool in_consume_ = false;
  int64_t spin_ns_ = 0;
};

}  // namespace writ::bpf
