/* fuzzing.h - what a fuzzing build (make FUZZ=1) does differently, kept to work that parses
 * nothing: the standard FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION macro, which the Makefile defines
 * for that build only, and LATHE_NO_COVERAGE for loops over pixels, whose compare hooks feed
 * libFuzzer nothing but cost per pixel (docs/ARCHITECTURE.md, "Fuzzing"). */
#ifndef LATHE_BASE_FUZZING_H
#define LATHE_BASE_FUZZING_H

#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(no_sanitize)
/* noinline: coverage is added after inlining, under the caller's attributes */
#define LATHE_NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))
#endif
#endif
#ifndef LATHE_NO_COVERAGE
#define LATHE_NO_COVERAGE
#endif

#endif
