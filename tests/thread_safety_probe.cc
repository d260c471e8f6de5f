// Must NOT compile under clang -Wthread-safety -Werror=thread-safety: the
// ctest thread_safety_enforced shows that the annotations of util/mutex.h
// are checked (a member GUARDED_BY a mutex read without holding it).
#include "util/mutex.h"

struct Probe {
  ocib::Mutex mu;
  int value GUARDED_BY(mu) = 0;
  int Unlocked() { return value; }
};

int main() {
  Probe p;
  return p.Unlocked();
}
