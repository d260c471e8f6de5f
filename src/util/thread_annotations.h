// Clang's thread-safety annotations (as LevelDB's port/thread_annotations.h):
// the compiler checks that a member GUARDED_BY(mu) is only touched with mu
// held. Checked by clang builds with -Wthread-safety (the sanitizer builds
// of scripts/test.sh make it an error); no-ops for other compilers.
#pragma once

#if defined(__clang__)
#define OCIB_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define OCIB_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) OCIB_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY OCIB_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) OCIB_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) OCIB_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) OCIB_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) OCIB_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) OCIB_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) OCIB_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS \
  OCIB_THREAD_ANNOTATION(no_thread_safety_analysis)
