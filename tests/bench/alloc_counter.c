// libspillway_alloc_counter.so: LD_PRELOAD it to count a process's heap allocations. The totals
// go to $SPILLWAY_ALLOC_COUNT_FILE every 100 ms and at exit, so tests/bench/bench.py can take
// the difference over N requests without signalling the process (the agent sigwaits).
//
// Every wrapper forwards to the next definition in the lookup order (RTLD_NEXT): glibc's
// malloc, or tcmalloc's when the program links it, as the agent does. operator new/delete are
// wrapped as well, because tcmalloc defines its own and they never pass through malloc; a
// per-thread depth keeps libstdc++'s new (which calls malloc) from being counted twice.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Relaxed: the counts are totals read long after the fact, never used to order anything.
static atomic_uint_fast64_t g_allocations;
static atomic_uint_fast64_t g_frees;
static atomic_uint_fast64_t g_bytes;

// > 0 while a wrapped operator new/delete runs on this thread: the malloc/free it makes
// underneath is the same allocation.
static __thread int g_depth __attribute__((tls_model("initial-exec")));

static char g_path[PATH_MAX];
static char g_temp_path[PATH_MAX + 8];

static void Count(size_t size) {
  atomic_fetch_add_explicit(&g_allocations, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&g_bytes, size, memory_order_relaxed);
}

static void CountFree(void) { atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed); }

static void Leave(int* unused) {
  (void)unused;
  --g_depth;
}

// --- finding the real functions --------------------------------------------------------------

// dlsym may allocate before the real functions are known; those few blocks come from here and
// are never given back.
static _Alignas(16) char g_bootstrap[64 * 1024];
static size_t g_bootstrap_used;
static int g_resolving;

static void* BootstrapAlloc(size_t size) {
  const size_t rounded = (size + 15) & ~(size_t)15;
  if (g_bootstrap_used + rounded > sizeof(g_bootstrap)) {
    return NULL;
  }
  void* block = g_bootstrap + g_bootstrap_used;
  g_bootstrap_used += rounded;
  return block;  // static storage: already zero, as calloc needs
}

static int IsBootstrap(const void* pointer) {
  return (const char*)pointer >= g_bootstrap &&
         (const char*)pointer < g_bootstrap + sizeof(g_bootstrap);
}

static void* Next(const char* symbol) {
  void* function = dlsym(RTLD_NEXT, symbol);
  if (function == NULL) {
    static const char kMessage[] = "libspillway_alloc_counter: no next definition of ";
    (void)!write(2, kMessage, sizeof(kMessage) - 1);
    (void)!write(2, symbol, strlen(symbol));
    (void)!write(2, "\n", 1);
    abort();
  }
  return function;
}

static void* (*g_malloc)(size_t);
static void* (*g_calloc)(size_t, size_t);
static void* (*g_realloc)(void*, size_t);
static void (*g_free)(void*);
static void* (*g_memalign)(size_t, size_t);
static void* (*g_aligned_alloc)(size_t, size_t);
static int (*g_posix_memalign)(void**, size_t, size_t);
static void* (*g_valloc)(size_t);
static void* (*g_pvalloc)(size_t);

static void Resolve(void) {
  g_resolving = 1;
  g_calloc = (void* (*)(size_t, size_t))Next("calloc");
  g_realloc = (void* (*)(void*, size_t))Next("realloc");
  g_free = (void (*)(void*))Next("free");
  g_memalign = (void* (*)(size_t, size_t))Next("memalign");
  g_aligned_alloc = (void* (*)(size_t, size_t))Next("aligned_alloc");
  g_posix_memalign = (int (*)(void**, size_t, size_t))Next("posix_memalign");
  g_valloc = (void* (*)(size_t))Next("valloc");
  g_pvalloc = (void* (*)(size_t))Next("pvalloc");
  g_malloc = (void* (*)(size_t))Next("malloc");  // last: it marks the table complete
  g_resolving = 0;
}

// True when the real functions can be called; false while dlsym itself is allocating.
static int Ready(void) {
  if (__builtin_expect(g_malloc != NULL, 1)) {
    return 1;
  }
  if (g_resolving) {
    return 0;
  }
  Resolve();
  return 1;
}

// --- the C allocator ---------------------------------------------------------------------------

void* malloc(size_t size) {
  if (!Ready()) {
    return BootstrapAlloc(size);
  }
  if (g_depth == 0) {
    Count(size);
  }
  return g_malloc(size);
}

void* calloc(size_t count, size_t size) {
  if (!Ready()) {
    size_t total;
    return __builtin_mul_overflow(count, size, &total) ? NULL : BootstrapAlloc(total);
  }
  if (g_depth == 0) {
    Count(count * size);
  }
  return g_calloc(count, size);
}

void* realloc(void* pointer, size_t size) {
  if (!Ready()) {
    return NULL;  // dlsym never reallocates
  }
  if (IsBootstrap(pointer)) {
    // Bootstrap blocks do not know their size; copy what can belong to them.
    void* moved = malloc(size);
    if (moved != NULL) {
      const size_t room = (size_t)(g_bootstrap + sizeof(g_bootstrap) - (char*)pointer);
      memcpy(moved, pointer, size < room ? size : room);
    }
    return moved;
  }
  // A realloc is an allocator call on the hot path whether or not it moves the block.
  if (g_depth == 0) {
    Count(size);
  }
  return g_realloc(pointer, size);
}

void* reallocarray(void* pointer, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(pointer, total);  // glibc's own would bypass a replaced allocator
}

void free(void* pointer) {
  if (pointer == NULL || IsBootstrap(pointer)) {
    return;
  }
  if (!Ready()) {
    return;
  }
  if (g_depth == 0) {
    CountFree();
  }
  g_free(pointer);
}

void* memalign(size_t alignment, size_t size) {
  if (!Ready()) {
    return NULL;
  }
  if (g_depth == 0) {
    Count(size);
  }
  return g_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) {
  if (!Ready()) {
    return NULL;
  }
  if (g_depth == 0) {
    Count(size);
  }
  return g_aligned_alloc(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  if (!Ready()) {
    return ENOMEM;
  }
  if (g_depth == 0) {
    Count(size);
  }
  return g_posix_memalign(out, alignment, size);
}

void* valloc(size_t size) {
  if (!Ready()) {
    return NULL;
  }
  if (g_depth == 0) {
    Count(size);
  }
  return g_valloc(size);
}

void* pvalloc(size_t size) {
  if (!Ready()) {
    return NULL;
  }
  if (g_depth == 0) {
    Count(size);
  }
  return g_pvalloc(size);
}

// --- C++ operator new / delete (Itanium ABI names; size_t is 'm' on x86-64) ------------------
// std::nothrow_t and std::align_val_t travel as a pointer and a size_t. The cleanup attribute
// restores the depth when a real operator new throws std::bad_alloc through this frame (the
// library is built with -fexceptions for that).

#define SPILLWAY_NEW(symbol, PARAMS, ARGS)                 \
  void* symbol PARAMS;                                     \
  void* symbol PARAMS {                                    \
    static void*(*real)PARAMS;                             \
    if (real == NULL) {                                    \
      real = (void*(*)PARAMS)Next(#symbol);                \
    }                                                      \
    if (g_depth == 0) {                                    \
      Count(size);                                         \
    }                                                      \
    ++g_depth;                                             \
    int guard __attribute__((cleanup(Leave), unused)) = 0; \
    return real ARGS;                                      \
  }

#define SPILLWAY_DELETE(symbol, PARAMS, ARGS)              \
  void symbol PARAMS;                                      \
  void symbol PARAMS {                                     \
    static void(*real) PARAMS;                             \
    if (real == NULL) {                                    \
      real = (void(*) PARAMS)Next(#symbol);                \
    }                                                      \
    if (pointer != NULL && g_depth == 0) {                 \
      CountFree();                                         \
    }                                                      \
    ++g_depth;                                             \
    int guard __attribute__((cleanup(Leave), unused)) = 0; \
    real ARGS;                                             \
  }

SPILLWAY_NEW(_Znwm, (size_t size), (size))
SPILLWAY_NEW(_Znam, (size_t size), (size))
SPILLWAY_NEW(_ZnwmRKSt9nothrow_t, (size_t size, const void* tag), (size, tag))
SPILLWAY_NEW(_ZnamRKSt9nothrow_t, (size_t size, const void* tag), (size, tag))
SPILLWAY_NEW(_ZnwmSt11align_val_t, (size_t size, size_t align), (size, align))
SPILLWAY_NEW(_ZnamSt11align_val_t, (size_t size, size_t align), (size, align))
SPILLWAY_NEW(_ZnwmSt11align_val_tRKSt9nothrow_t, (size_t size, size_t align, const void* tag),
             (size, align, tag))
SPILLWAY_NEW(_ZnamSt11align_val_tRKSt9nothrow_t, (size_t size, size_t align, const void* tag),
             (size, align, tag))

SPILLWAY_DELETE(_ZdlPv, (void* pointer), (pointer))
SPILLWAY_DELETE(_ZdaPv, (void* pointer), (pointer))
SPILLWAY_DELETE(_ZdlPvm, (void* pointer, size_t size), (pointer, size))
SPILLWAY_DELETE(_ZdaPvm, (void* pointer, size_t size), (pointer, size))
SPILLWAY_DELETE(_ZdlPvRKSt9nothrow_t, (void* pointer, const void* tag), (pointer, tag))
SPILLWAY_DELETE(_ZdaPvRKSt9nothrow_t, (void* pointer, const void* tag), (pointer, tag))
SPILLWAY_DELETE(_ZdlPvSt11align_val_t, (void* pointer, size_t align), (pointer, align))
SPILLWAY_DELETE(_ZdaPvSt11align_val_t, (void* pointer, size_t align), (pointer, align))
SPILLWAY_DELETE(_ZdlPvmSt11align_val_t, (void* pointer, size_t size, size_t align),
                (pointer, size, align))
SPILLWAY_DELETE(_ZdaPvmSt11align_val_t, (void* pointer, size_t size, size_t align),
                (pointer, size, align))
SPILLWAY_DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t, (void* pointer, size_t align, const void* tag),
                (pointer, align, tag))
SPILLWAY_DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t, (void* pointer, size_t align, const void* tag),
                (pointer, align, tag))

// --- reporting ---------------------------------------------------------------------------------

// Appends the decimal digits of `value`; no stdio, which may allocate.
static char* AppendNumber(char* out, uint64_t value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) {
    *out++ = digits[--n];
  }
  return out;
}

static char* AppendText(char* out, const char* text) {
  while (*text != '\0') {
    *out++ = *text++;
  }
  return out;
}

// One JSON line, written to a temporary file and renamed over the target so a reader never
// sees half of it.
static void WriteCounts(void) {
  char line[160];
  char* p = line;
  p = AppendText(p, "{\"allocations\":");
  p = AppendNumber(p, atomic_load_explicit(&g_allocations, memory_order_relaxed));
  p = AppendText(p, ",\"frees\":");
  p = AppendNumber(p, atomic_load_explicit(&g_frees, memory_order_relaxed));
  p = AppendText(p, ",\"bytes\":");
  p = AppendNumber(p, atomic_load_explicit(&g_bytes, memory_order_relaxed));
  p = AppendText(p, "}\n");
  const int fd = open(g_temp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return;
  }
  const ssize_t written = write(fd, line, (size_t)(p - line));
  close(fd);
  if (written == p - line) {
    rename(g_temp_path, g_path);
  }
}

static void* WriterLoop(void* unused) {
  (void)unused;
  const struct timespec period = {0, 100 * 1000 * 1000};
  for (;;) {
    nanosleep(&period, NULL);
    WriteCounts();
  }
  return NULL;
}

__attribute__((constructor)) static void StartWriter(void) {
  (void)Ready();  // resolve while the process is still single-threaded
  const char* path = getenv("SPILLWAY_ALLOC_COUNT_FILE");
  if (path == NULL || path[0] == '\0' || strlen(path) >= sizeof(g_path)) {
    return;
  }
  memcpy(g_path, path, strlen(path) + 1);
  memcpy(g_temp_path, path, strlen(path));
  memcpy(g_temp_path + strlen(path), ".tmp", 5);
  // The writer must never take a process-directed signal: programs such as the agent block
  // SIGTERM/SIGHUP in their threads and sigwait for them, and a thread with the signal
  // unblocked would receive it instead (and die of its default action). Block everything
  // while creating the thread so it inherits a full mask, then restore ours.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  pthread_t thread;
  if (pthread_create(&thread, NULL, WriterLoop, NULL) == 0) {
    pthread_detach(thread);
  }
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
}

__attribute__((destructor)) static void WriteAtExit(void) {
  if (g_path[0] != '\0') {
    WriteCounts();
  }
}
