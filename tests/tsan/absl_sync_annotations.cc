// ThreadSanitizer builds only (tests/sanitize.sh tsan). Debian's abseil is not built with
// -fsanitize=thread, so absl::Mutex and absl::CondVar lock and wait in code TSan cannot see:
// every access guarded by an absl::Mutex looked like a data race (the first TSan run failed
// 136 of 243 tests on them), and gRPC's own locks, absl::Mutex too, were invisible as well.
// This library is linked into every executable ahead of libabsl_synchronization, so the
// dynamic linker binds all calls to these functions here, ours and gRPC's alike. Each one
// tells TSan what abseil's own annotations (mutex.cc built with TSan) would, and calls the
// real function, found with dlsym(RTLD_NEXT).
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace absl {
ABSL_NAMESPACE_BEGIN
namespace {

// The real function `mangled` (a Debian abseil symbol, inline namespace included), or abort:
// running without it would only move the false reports elsewhere.
template <typename Fn>
Fn Real(const char* mangled) {
  void* symbol = ::dlsym(RTLD_NEXT, mangled);
  if (symbol == nullptr) {
    std::fprintf(stderr, "absl_sync_annotations: %s not found: %s\n", mangled, ::dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(symbol);
}

// Whether `mu` is held exclusively (abseil's kMuWriter bit of its one word), so a wait that
// releases and retakes it is annotated as the kind of lock it holds.
unsigned HeldAs(const Mutex* mu) {
  static_assert(sizeof(Mutex) == sizeof(std::atomic<intptr_t>));
  constexpr intptr_t kMuWriter = 0x0008;
  const intptr_t word =
      reinterpret_cast<const std::atomic<intptr_t>*>(mu)->load(std::memory_order_relaxed);
  return (word & kMuWriter) != 0 ? 0 : __tsan_mutex_read_lock;
}

// Abseil's functions call each other through the same interposed symbols (AwaitWithTimeout
// calls AwaitWithDeadline, and so on): only the outermost call on a thread is annotated.
thread_local int wrapper_depth = 0;

class Outermost {
 public:
  Outermost() : outermost_(wrapper_depth++ == 0) {}
  ~Outermost() { --wrapper_depth; }
  Outermost(const Outermost&) = delete;
  Outermost& operator=(const Outermost&) = delete;
  explicit operator bool() const { return outermost_; }

 private:
  const bool outermost_;
};

// Waits release the mutex and take it again inside abseil; Conditions it evaluates there run
// while TSan ignores accesses, as in abseil's own TSan build.
template <typename Wait>
auto Released(Mutex* mu, Wait wait) {
  Outermost outermost;
  if (!outermost) {
    return wait();
  }
  const unsigned flags = HeldAs(mu);
  __tsan_mutex_pre_unlock(mu, flags);
  auto result = wait();
  __tsan_mutex_post_unlock(mu, flags);
  __tsan_mutex_pre_lock(mu, flags);
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

template <typename Lock>
auto Locked(Mutex* mu, unsigned flags, Lock lock) {
  Outermost outermost;
  if (!outermost) {
    return lock();
  }
  __tsan_mutex_pre_lock(mu, flags);
  auto result = lock();
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// TryLock and ReaderTryLock: `flags` is the try-lock kind, `failed` what a failure adds.
template <typename Try>
bool TryLocked(Mutex* mu, unsigned flags, unsigned failed, Try try_lock) {
  Outermost outermost;
  if (!outermost) {
    return try_lock();
  }
  __tsan_mutex_pre_lock(mu, flags);
  const bool locked = try_lock();
  __tsan_mutex_post_lock(mu, locked ? flags : flags | failed, 0);
  return locked;
}

template <typename Unlock>
void Unlocked(Mutex* mu, unsigned flags, Unlock unlock) {
  Outermost outermost;
  if (!outermost) {
    unlock();
    return;
  }
  __tsan_mutex_pre_unlock(mu, flags);
  unlock();
  __tsan_mutex_post_unlock(mu, flags);
}

using MutexFn = void (*)(Mutex*);
using TryFn = bool (*)(Mutex*);
using CondFn = void (*)(Mutex*, const Condition&);
using CondTimeoutFn = bool (*)(Mutex*, const Condition&, Duration);
using CondDeadlineFn = bool (*)(Mutex*, const Condition&, Time);

}  // namespace

Mutex::~Mutex() {
  static const MutexFn real = Real<MutexFn>("_ZN4absl7debian35MutexD1Ev");
  __tsan_mutex_destroy(this, __tsan_mutex_not_static);
  real(this);
}

void Mutex::Lock() {
  static const MutexFn real = Real<MutexFn>("_ZN4absl7debian35Mutex4LockEv");
  Locked(this, 0, [&] { return (real(this), 0); });
}

void Mutex::ReaderLock() {
  static const MutexFn real = Real<MutexFn>("_ZN4absl7debian35Mutex10ReaderLockEv");
  Locked(this, __tsan_mutex_read_lock, [&] { return (real(this), 0); });
}

bool Mutex::TryLock() {
  static const TryFn real = Real<TryFn>("_ZN4absl7debian35Mutex7TryLockEv");
  return TryLocked(this, __tsan_mutex_try_lock, __tsan_mutex_try_lock_failed,
                   [&] { return real(this); });
}

bool Mutex::ReaderTryLock() {
  static const TryFn real = Real<TryFn>("_ZN4absl7debian35Mutex13ReaderTryLockEv");
  return TryLocked(this, __tsan_mutex_try_read_lock, __tsan_mutex_try_lock_failed,
                   [&] { return real(this); });
}

void Mutex::Unlock() {
  static const MutexFn real = Real<MutexFn>("_ZN4absl7debian35Mutex6UnlockEv");
  Unlocked(this, 0, [&] { real(this); });
}

void Mutex::ReaderUnlock() {
  static const MutexFn real = Real<MutexFn>("_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Unlocked(this, __tsan_mutex_read_lock, [&] { real(this); });
}

void Mutex::LockWhen(const Condition& cond) {
  static const CondFn real = Real<CondFn>("_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  Locked(this, 0, [&] { return (real(this, cond), 0); });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const CondTimeoutFn real = Real<CondTimeoutFn>(
      "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locked(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const CondDeadlineFn real = Real<CondDeadlineFn>(
      "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locked(this, 0, [&] { return real(this, cond, deadline); });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const CondFn real =
      Real<CondFn>("_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Locked(this, __tsan_mutex_read_lock, [&] { return (real(this, cond), 0); });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const CondTimeoutFn real = Real<CondTimeoutFn>(
      "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locked(this, __tsan_mutex_read_lock, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const CondDeadlineFn real = Real<CondDeadlineFn>(
      "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locked(this, __tsan_mutex_read_lock, [&] { return real(this, cond, deadline); });
}

void Mutex::Await(const Condition& cond) {
  static const CondFn real = Real<CondFn>("_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Released(this, [&] { return (real(this, cond), 0); });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const CondTimeoutFn real = Real<CondTimeoutFn>(
      "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Released(this, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const CondDeadlineFn real =
      Real<CondDeadlineFn>("_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Released(this, [&] { return real(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  using Fn = void (*)(CondVar*, Mutex*);
  static const Fn real = Real<Fn>("_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Released(mu, [&] { return (real(this, mu), 0); });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  using Fn = bool (*)(CondVar*, Mutex*, Duration);
  static const Fn real =
      Real<Fn>("_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return Released(mu, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  using Fn = bool (*)(CondVar*, Mutex*, Time);
  static const Fn real =
      Real<Fn>("_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return Released(mu, [&] { return real(this, mu, deadline); });
}

ABSL_NAMESPACE_END
}  // namespace absl
