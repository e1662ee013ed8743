// Counting global operator new, for the "allocates nothing per event" contracts (engine, decoder,
// JSON writer): the promise is tested, not assumed. alloc_counter.cc replaces operator new/delete
// for the whole binary it is linked into (every form, all through malloc/free so ASan sees matching
// pairs); allocations are counted only between Start and Stop, on any thread.
#pragma once

namespace writ::testlib {

class AllocCounter {
 public:
  static void Start();
  // Allocations since Start; counting stops.
  static long Stop();
};

}  // namespace writ::testlib
