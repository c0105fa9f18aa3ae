/*
 * Shared helpers of the libFuzzer targets in tests/fuzz/. Each target is one fuzz_<name>.c
 * with LLVMFuzzerTestOneInput; tests/fuzz/run.sh builds it with clang
 * (-fsanitize=fuzzer,address,undefined) against the broker sources it needs.
 *
 * FUZZ_CHECK states a property the code under test promises (not just "does not crash"):
 * when it fails the target prints why and aborts, so libFuzzer saves the input as a crash.
 */
#ifndef GREGOR_FUZZ_COMMON_H
#define GREGOR_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
