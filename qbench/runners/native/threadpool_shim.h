// The two ExecuTorch thread-pool calls the runner makes (--threads), declared here by hand.
//
// Why: the executorch pip wheel ships libexecutorch_threadpool.so but not
// extension/threadpool/threadpool.h (that header includes pthreadpool.h, which the wheel lacks
// too), so there is no header to include. The declarations below copy the signatures of
// extension/threadpool/threadpool.h in executorch 1.5.1 (the pinned version; the library exports
// ThreadPool::get_thread_count() const, ThreadPool::_unsafe_reset_threadpool(unsigned int) and
// get_threadpool()). Only member functions are called, never the class layout, so this is enough
// to link. Re-check them against threadpool.h when the executorch pin moves.
#pragma once

#ifdef QBENCH_HAVE_THREADPOOL
#include <cstddef>
#include <cstdint>

namespace executorch::extension::threadpool {
class ThreadPool final {
 public:
  size_t get_thread_count() const;
  // Replaces the pool by one of num_threads threads; must run before the XNNPACK delegate
  // captures the pool (method init).
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
} // namespace executorch::extension::threadpool
#endif
