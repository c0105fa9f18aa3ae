/* base/clock.h: condition variables timed against the monotonic clock. */
#include <errno.h>
#include <pthread.h>

#include "base/clock.h"
#include "test.h"

/* A monotonic deadline on a clock_cond_init_mono cond waits for its full interval. On a cond
 * using the default CLOCK_REALTIME the same deadline lies decades in the past and the wait
 * returns at once. */
TEST(test_cond_mono_timedwait_waits_for_the_interval)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond;
    CHECK_EQ_INT(clock_cond_init_mono(&cond), 0);
    int64_t t0 = clock_mono_ms();
    struct timespec ts = clock_mono_deadline(60);
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (rc == 0)
        rc = pthread_cond_timedwait(&cond, &mu, &ts);
    pthread_mutex_unlock(&mu);
    int64_t waited = clock_mono_ms() - t0;
    pthread_cond_destroy(&cond);
    CHECK_EQ_INT(rc, ETIMEDOUT);
    CHECK(waited >= 59);
    CHECK(waited < 5000);
}

TEST(test_mono_deadline_normalises_nanoseconds)
{
    for (int64_t ms = 0; ms < 3000; ms += 137) {
        struct timespec ts = clock_mono_deadline(ms);
        CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
    }
}

TEST_MAIN
