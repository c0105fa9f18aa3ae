/*
 * Minimal unit-test harness. Each test binary prints one line per test case:
 *   "ok <name>" or "not ok <name>: <file>:<line>: <what failed>"
 * tests/run.sh counts those lines. A test case is a function registered with TEST();
 * CHECK() records a failure and returns from the case, so later checks don't cascade.
 * What a case must undo however it ends (temporary directories) it registers with
 * test_defer(): the runner calls those after the case, the last registered first.
 */
#ifndef GREGOR_TEST_H
#define GREGOR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(int *failed);

struct test_case {
    const char *name;
    test_fn fn;
};

#define TEST_MAX 512
extern struct test_case test_cases[TEST_MAX];
extern int test_count;

typedef void (*test_cleanup_fn)(void *arg);

struct test_cleanup {
    test_cleanup_fn fn;
    void *arg;
};

#define TEST_CLEANUP_MAX 64
extern struct test_cleanup test_cleanups[TEST_CLEANUP_MAX];
extern int test_ncleanups;

/* Runs fn(arg) after the current test case, passed or failed (a CHECK returns early). */
static inline void test_defer(test_cleanup_fn fn, void *arg)
{
    if (test_ncleanups == TEST_CLEANUP_MAX) {
        printf("  test_defer: more than %d cleanups in one case\n", TEST_CLEANUP_MAX);
        abort();
    }
    test_cleanups[test_ncleanups++] = (struct test_cleanup){fn, arg};
}

/* The runner's side: the current case's cleanups, last registered first. */
static inline void test_run_cleanups(void)
{
    while (test_ncleanups > 0) {
        struct test_cleanup c = test_cleanups[--test_ncleanups];
        c.fn(c.arg);
    }
}

#define TEST(name)                                                                                 \
    static void name(int *failed_);                                                                \
    __attribute__((constructor)) static void register_##name(void)                                 \
    {                                                                                              \
        if (test_count < TEST_MAX)                                                                 \
            test_cases[test_count++] = (struct test_case){#name, name};                            \
    }                                                                                              \
    static void name(int *failed_)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                      \
            *failed_ = 1;                                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            printf("  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, a_, #b,   \
                   b_);                                                                            \
            *failed_ = 1;                                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

/* Define once per test binary: put TEST_MAIN at the end of exactly one .c file. */
#define TEST_MAIN                                                                                  \
    struct test_case test_cases[TEST_MAX];                                                         \
    int test_count;                                                                                \
    struct test_cleanup test_cleanups[TEST_CLEANUP_MAX];                                           \
    int test_ncleanups;                                                                            \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        int failures = 0;                                                                          \
        for (int i = 0; i < test_count; i++) {                                                     \
            if (argc > 1 && strstr(test_cases[i].name, argv[1]) == NULL)                           \
                continue;                                                                          \
            int failed = 0;                                                                        \
            fflush(stdout);                                                                        \
            test_cases[i].fn(&failed);                                                             \
            test_run_cleanups();                                                                   \
            printf("%s %s\n", failed ? "not ok" : "ok", test_cases[i].name);                       \
            fflush(stdout);                                                                        \
            failures += failed;                                                                    \
        }                                                                                          \
        return failures ? 1 : 0;                                                                   \
    }

#endif
