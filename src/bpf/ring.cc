#include "bpf/ring.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace writ::bpf {
namespace {

// Consumed space is given back at least this often within one batch, so that a long batch (the
// handler judges and encodes every record) does not hold the whole ring.
constexpr uint64_t kReleaseBytes = 256 << 10;
// A record whose reservation the consumer saw but whose commit it has not: the producer is between
// bpf_ringbuf_reserve and submit, a few hundred nanoseconds in a BPF program. Retried this many
// times (yielding) before the consumer falls back to a 1 ms wait.
constexpr int kBusyRetries = 64;

int64_t NowMonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

uint64_t RoundUp(uint32_t len) {
  uint64_t n = (len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) + BPF_RINGBUF_HDR_SZ;
  return (n + 7) & ~uint64_t{7};
}

}  // namespace

absl::StatusOr<std::unique_ptr<RingReader>> RingReader::Open(int ring_fd, int state_fd,
                                                             Handler handler) {
  bpf_map_info info = {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(ring_fd, &info, &len) != 0) {
    return ErrnoStatus(errno, "ring buffer map info");
  }
  if (info.type != BPF_MAP_TYPE_RINGBUF || info.max_entries == 0 ||
      (info.max_entries & (info.max_entries - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("map fd ", ring_fd, " is not a power-of-two ring buffer"));
  }
  bpf_map_info sinfo = {};
  len = sizeof(sinfo);
  if (bpf_obj_get_info_by_fd(state_fd, &sinfo, &len) != 0) {
    return ErrnoStatus(errno, "consumer state map info");
  }
  if (sinfo.type != BPF_MAP_TYPE_ARRAY || sinfo.value_size < sizeof(writ_consumer_state) ||
      !(sinfo.map_flags & BPF_F_MMAPABLE)) {
    return absl::InvalidArgumentError("consumer state map is not an mmapable array");
  }
  std::unique_ptr<RingReader> r(new RingReader(std::move(handler)));
  r->page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  r->mask_ = info.max_entries - 1;
  r->consumer_map_ = mmap(nullptr, r->page_, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
  if (r->consumer_map_ == MAP_FAILED) {
    r->consumer_map_ = nullptr;
    return ErrnoStatus(errno, "mmap ring buffer consumer page");
  }
  r->producer_map_len_ = r->page_ + 2 * static_cast<size_t>(info.max_entries);
  r->producer_map_ = mmap(nullptr, r->producer_map_len_, PROT_READ, MAP_SHARED, ring_fd,
                          static_cast<off_t>(r->page_));
  if (r->producer_map_ == MAP_FAILED) {
    r->producer_map_ = nullptr;
    return ErrnoStatus(errno, "mmap ring buffer data");
  }
  r->state_map_len_ = (sinfo.value_size + r->page_ - 1) / r->page_ * r->page_;
  r->state_map_ = mmap(nullptr, r->state_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
  if (r->state_map_ == MAP_FAILED) {
    r->state_map_ = nullptr;
    return ErrnoStatus(errno, "mmap consumer state map");
  }
  r->consumer_pos_ = static_cast<uint64_t*>(r->consumer_map_);
  r->producer_pos_ = static_cast<const uint64_t*>(r->producer_map_);
  r->data_ = static_cast<const uint8_t*>(r->producer_map_) + r->page_;
  r->state_ = static_cast<writ_consumer_state*>(r->state_map_);
  __atomic_store_n(&r->state_->sleeping, 0u, __ATOMIC_SEQ_CST);

  r->epoll_.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (!r->epoll_.valid()) return ErrnoStatus(errno, "epoll_create1");
  epoll_event ev = {};
  ev.events = EPOLLIN;
  if (epoll_ctl(r->epoll_.get(), EPOLL_CTL_ADD, ring_fd, &ev) != 0) {
    return ErrnoStatus(errno, "epoll_ctl ring buffer");
  }
  return r;
}

RingReader::~RingReader() {
  if (state_) __atomic_store_n(&state_->sleeping, 0u, __ATOMIC_SEQ_CST);
  if (state_map_) munmap(state_map_, state_map_len_);
  if (producer_map_) munmap(producer_map_, producer_map_len_);
  if (consumer_map_) munmap(consumer_map_, page_);
}

uint64_t RingReader::Pending() const {
  return __atomic_load_n(producer_pos_, __ATOMIC_ACQUIRE) -
         __atomic_load_n(consumer_pos_, __ATOMIC_ACQUIRE);
}

bool RingReader::sleeping() const {
  return __atomic_load_n(&state_->sleeping, __ATOMIC_ACQUIRE) != 0;
}

int RingReader::Consume() {
  if (in_consume_) return 0;  // a handler that drains (housekeeping) must not consume twice
  in_consume_ = true;
  uint64_t cons = __atomic_load_n(consumer_pos_, __ATOMIC_ACQUIRE);
  uint64_t released = cons;
  int n = 0;
  for (;;) {
    const uint64_t prod = __atomic_load_n(producer_pos_, __ATOMIC_ACQUIRE);
    if (cons >= prod) break;
    bool busy = false;
    while (cons < prod) {
      const uint8_t* hdr = data_ + (cons & mask_);
      const uint32_t len =
          __atomic_load_n(reinterpret_cast<const uint32_t*>(hdr), __ATOMIC_ACQUIRE);
      if (len & BPF_RINGBUF_BUSY_BIT) {
        busy = true;
        break;
      }
      cons += RoundUp(len);
      if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
        handler_(hdr + BPF_RINGBUF_HDR_SZ, len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT));
        n++;
      }
      if (cons - released >= kReleaseBytes) {
        __atomic_store_n(consumer_pos_, cons, __ATOMIC_RELEASE);
        released = cons;
      }
    }
    if (busy) break;
  }
  if (cons != released) __atomic_store_n(consumer_pos_, cons, __ATOMIC_RELEASE);
  in_consume_ = false;
  return n;
}

int RingReader::Poll(int timeout_ms) {
  int n = Consume();
  if (n > 0) return n;
  // Spin a little before sleeping: a record that follows within spin_ns_ is read without anyone
  // paying for a wakeup (the producer's irq_work, a self-IPI in a VM, costs it microseconds).
  if (spin_ns_ > 0) {
    const int64_t end = NowMonotonicNs() + spin_ns_;
    while (Pending() == 0 && NowMonotonicNs() < end) CpuRelax();
    n = Consume();
    if (n > 0) return n;
  }
  for (int retry = 0;; retry++) {
    // Announce the sleep, then look once more (the consumer's half of the Dekker pair: the store, a
    // full fence, then the read of the producer position; see writ_consumer_state).
    __atomic_store_n(&state_->sleeping, 1u, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (Pending() == 0) break;
    // Something arrived, or a record is still being written: its producer may have seen us awake
    // and will not wake us, so do not sleep on it.
    __atomic_store_n(&state_->sleeping, 0u, __ATOMIC_SEQ_CST);
    n = Consume();
    if (n > 0) return n;
    if (retry >= kBusyRetries) {
      timeout_ms = std::min(timeout_ms, 1);
      break;
    }
    sched_yield();
  }
  epoll_event ev;
  int w = epoll_wait(epoll_.get(), &ev, 1, timeout_ms);
  const int err = errno;
  __atomic_store_n(&state_->sleeping, 0u, __ATOMIC_SEQ_CST);
  n = Consume();
  if (w < 0 && err != EINTR) return -err;
  return n;
}

}  // namespace writ::bpf
