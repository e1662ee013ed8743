// ThreadSanitizer tier only (linked into the unit tests when WRIT_SANITIZE contains "thread").
//
// Debian's Abseil is a prebuilt shared library without TSan instrumentation: absl::Mutex, CondVar
// and Notification synchronize through atomics and futexes TSan cannot see, so every access guarded
// by an absl::Mutex would be reported as a race. This file interposes their out-of-line entry
// points (a definition in the executable wins over the shared library's) and tells TSan the
// happens-before they establish: release on the mutex address before unlocking or waiting, acquire
// after locking or waking. The real implementation is called through dlsym(RTLD_NEXT). Races in
// writ's own code (an unguarded access, a lock forgotten on one path) are still reported.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace {

template <typename Fn>
Fn Real(const char* mangled) {
  void* p = dlsym(RTLD_NEXT, mangled);
  if (!p) {
    fprintf(stderr, "absl_tsan_shim: %s not found in Abseil: %s\n", mangled, dlerror());
    abort();
  }
  return reinterpret_cast<Fn>(p);
}

#define WRIT_REAL(type, mangled)                \
  static const auto real = Real<type>(mangled); \
  (void)0

void* Key(const void* p) { return const_cast<void*>(p); }

// absl evaluates a Condition with the mutex held but inside its own slow path (in the waiter, or in
// the unlocking thread on the waiter's behalf), where the acquire above has not happened yet: the
// wrapper tells TSan around each evaluation.
struct Wrapped {
  const absl::Condition* cond;
  absl::Mutex* mu;
};
bool EvalWrapped(Wrapped* w) {
  __tsan_acquire(Key(w->mu));
  bool r = w->cond->Eval();
  __tsan_release(Key(w->mu));
  return r;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  WRIT_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  __tsan_acquire(Key(this));
}
void Mutex::ReaderLock() {
  WRIT_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(Key(this));
}
bool Mutex::TryLock() {
  WRIT_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  bool ok = real(this);
  if (ok) __tsan_acquire(Key(this));
  return ok;
}
bool Mutex::ReaderTryLock() {
  WRIT_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  bool ok = real(this);
  if (ok) __tsan_acquire(Key(this));
  return ok;
}
void Mutex::Unlock() {
  WRIT_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(Key(this));
  real(this);
}
void Mutex::ReaderUnlock() {
  WRIT_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_release(Key(this));
  real(this);
}
void Mutex::LockWhen(const Condition& c) {
  WRIT_REAL(void (*)(Mutex*, const Condition&),
            "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  Wrapped w{&c, this};
  const Condition wc(&EvalWrapped, &w);
  real(this, wc);
  __tsan_acquire(Key(this));
}
bool Mutex::LockWhenWithTimeout(const Condition& c, Duration d) {
  WRIT_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Wrapped w{&c, this};
  const Condition wc(&EvalWrapped, &w);
  bool ok = real(this, wc, d);
  __tsan_acquire(Key(this));  // held on return either way
  return ok;
}
bool Mutex::LockWhenWithDeadline(const Condition& c, Time t) {
  WRIT_REAL(bool (*)(Mutex*, const Condition&, Time),
            "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Wrapped w{&c, this};
  const Condition wc(&EvalWrapped, &w);
  bool ok = real(this, wc, t);
  __tsan_acquire(Key(this));
  return ok;
}
// Await* release the mutex while waiting and hold it again on return.
void Mutex::Await(const Condition& c) {
  WRIT_REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(Key(this));
  Wrapped w{&c, this};
  const Condition wc(&EvalWrapped, &w);
  real(this, wc);
  __tsan_acquire(Key(this));
}
bool Mutex::AwaitWithTimeout(const Condition& c, Duration d) {
  WRIT_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(Key(this));
  Wrapped w{&c, this};
  const Condition wc(&EvalWrapped, &w);
  bool ok = real(this, wc, d);
  __tsan_acquire(Key(this));
  return ok;
}
bool Mutex::AwaitWithDeadline(const Condition& c, Time t) {
  WRIT_REAL(bool (*)(Mutex*, const Condition&, Time),
            "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(Key(this));
  Wrapped w{&c, this};
  const Condition wc(&EvalWrapped, &w);
  bool ok = real(this, wc, t);
  __tsan_acquire(Key(this));
  return ok;
}

void CondVar::Wait(Mutex* mu) {
  WRIT_REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(Key(mu));
  real(this, mu);
  __tsan_acquire(Key(mu));
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration d) {
  WRIT_REAL(bool (*)(CondVar*, Mutex*, Duration),
            "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(Key(mu));
  bool r = real(this, mu, d);
  __tsan_acquire(Key(mu));
  return r;
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time t) {
  WRIT_REAL(bool (*)(CondVar*, Mutex*, Time),
            "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(Key(mu));
  bool r = real(this, mu, t);
  __tsan_acquire(Key(mu));
  return r;
}

void Notification::Notify() {
  WRIT_REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(Key(this));
  real(this);
}
void Notification::WaitForNotification() const {
  WRIT_REAL(void (*)(const Notification*),
            "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(Key(this));
}
bool Notification::WaitForNotificationWithTimeout(Duration d) const {
  WRIT_REAL(bool (*)(const Notification*, Duration),
            "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool r = real(this, d);
  if (r) __tsan_acquire(Key(this));
  return r;
}
bool Notification::WaitForNotificationWithDeadline(Time t) const {
  WRIT_REAL(bool (*)(const Notification*, Time),
            "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  bool r = real(this, t);
  if (r) __tsan_acquire(Key(this));
  return r;
}

ABSL_NAMESPACE_END
}  // namespace absl
