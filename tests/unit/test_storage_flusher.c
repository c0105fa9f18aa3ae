/* Group-commit flusher: request callbacks, interval flushing, recovery point. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "record/record_batch.h"
#include "storage/flusher.h"
#include "storage/log.h"
#include "storage/log_internal.h"
#include "test.h"
#include "test_storage_util.h"

struct waiter {
    _Atomic int done;
    _Atomic int errors;
    _Atomic int on_main;
    pthread_t main_thread;
    struct log *log;
    _Atomic int64_t min_rp_seen;
};

struct req {
    struct waiter *w;
    int64_t offset;
};

static void on_flushed(void *arg, int err)
{
    struct req *r = arg;
    if (err)
        atomic_fetch_add(&r->w->errors, 1);
    if (pthread_equal(pthread_self(), r->w->main_thread))
        atomic_fetch_add(&r->w->on_main, 1);
    if (log_recovery_point(r->w->log) < r->offset)
        atomic_fetch_add(&r->w->errors, 1);
    atomic_fetch_add(&r->w->done, 1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

TEST(test_flush_request_callback_after_data_is_durable)
{
    char *dir = tmpdir_make();
    struct log *log;
    struct log_flusher *f;
    CHECK(log_open(dir, "t", 0, NULL, NULL, &log) == 0);
    CHECK(log_flusher_create(&f) == 0);
    CHECK(log_flusher_add(f, log) == 0);
    struct waiter w = {.main_thread = pthread_self(), .log = log};
    enum { N = 500 };
    static struct req reqs[N];
    for (int i = 0; i < N; i++) {
        int64_t first = test_append(log, 2, 100, 1000);
        CHECK_EQ_INT(first, 2 * i);
        reqs[i] = (struct req){&w, first + 2};
        CHECK(log_flush_request(log, first + 2, on_flushed, &reqs[i]) == 0);
    }
    for (int i = 0; i < 5000 && atomic_load(&w.done) < N; i++)
        sleep_ms(1);
    CHECK_EQ_INT(atomic_load(&w.done), N);
    CHECK_EQ_INT(atomic_load(&w.errors), 0);
    CHECK(atomic_load(&w.on_main) < N); /* completions come from the flusher thread */
    CHECK_EQ_INT(log_recovery_point(log), 2 * N);
    /* Already durable: completes at once, on the caller. */
    struct req again = {&w, 2};
    CHECK(log_flush_request(log, 2, on_flushed, &again) == 0);
    CHECK_EQ_INT(atomic_load(&w.done), N + 1);
    log_flusher_remove(f, log);
    log_flusher_destroy(f);
    log_close(log);
}

TEST(test_flush_interval_messages_and_ms_advance_recovery_point)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.flush_interval_messages = 10;
    struct log *log;
    struct log_flusher *f;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    CHECK(log_flusher_create(&f) == 0);
    CHECK(log_flusher_add(f, log) == 0);
    CHECK(test_append(log, 5, 10, 1) == 0);
    sleep_ms(50);
    CHECK_EQ_INT(log_recovery_point(log), 0); /* 5 < flush.messages */
    CHECK(test_append(log, 5, 10, 1) == 5);
    for (int i = 0; i < 2000 && log_recovery_point(log) < 10; i++)
        sleep_ms(1);
    CHECK_EQ_INT(log_recovery_point(log), 10);
    cfg.flush_interval_messages = INT64_MAX;
    cfg.flush_interval_ms = 30;
    log_set_config(log, &cfg);
    log_flusher_poke(f, log); /* re-evaluate deadlines */
    CHECK(test_append(log, 1, 10, 1) == 10);
    for (int i = 0; i < 2000 && log_recovery_point(log) < 11; i++)
        sleep_ms(1);
    CHECK_EQ_INT(log_recovery_point(log), 11);
    log_flusher_remove(f, log);
    log_flusher_destroy(f);
    log_close(log);
}

struct appender {
    struct log *log;
    struct waiter *w;
    struct req *reqs;
    int n;
};

static void *append_thread(void *arg)
{
    struct appender *a = arg;
    for (int i = 0; i < a->n; i++) {
        int64_t first = test_append(a->log, 1, 200, 1000);
        a->reqs[i] = (struct req){a->w, first + 1};
        log_flush_request(a->log, first + 1, on_flushed, &a->reqs[i]);
    }
    return NULL;
}

TEST(test_concurrent_appenders_and_readers_with_group_commit)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 64 * 1024;
    struct log *log;
    struct log_flusher *f;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    CHECK(log_flusher_create(&f) == 0);
    CHECK(log_flusher_add(f, log) == 0);
    struct waiter w = {.main_thread = pthread_self(), .log = log};
    enum { T = 4, N = 300 };
    static struct req reqs[T][N];
    struct appender a[T];
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        a[t] = (struct appender){log, &w, reqs[t], N};
        CHECK(pthread_create(&th[t], NULL, append_thread, &a[t]) == 0);
    }
    /* Reader: everything below the published end is always whole, valid batches. */
    int64_t seen = 0;
    while (atomic_load(&w.done) < T * N) {
        int64_t end = log_end_offset(log);
        if (seen < end) {
            struct log_read_result r;
            CHECK(log_read(log, seen, 1 << 16, end, true, &r) == 0);
            if (r.range.length > 0) {
                uint8_t *buf = malloc((size_t)r.range.length);
                CHECK(pread(r.range.fd, buf, (size_t)r.range.length, r.range.position) ==
                      r.range.length);
                CHECK(record_batches_validate(buf, (size_t)r.range.length, RECORD_VALIDATE_STORED,
                                              0) > 0);
                free(buf);
                seen = r.next_offset;
            }
            log_read_release(&r);
        }
    }
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ_INT(atomic_load(&w.errors), 0);
    CHECK_EQ_INT(log_end_offset(log), T * N);
    CHECK_EQ_INT(log_recovery_point(log), T * N);
    log_flusher_remove(f, log);
    log_flusher_destroy(f);
    log_close(log);
}

static void *poke_append_thread(void *arg)
{
    struct appender *a = arg;
    for (int i = 0; i < a->n; i++)
        test_append(a->log, 1, 50, 1000);
    return NULL;
}

/* Appends read log->flusher (to poke it at flush.messages) while the flusher is added and
 * removed under its lock: a data race unless the field is atomic (caught by make tsan). */
TEST(test_flusher_add_remove_races_with_appends)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.flush_interval_messages = 1;
    struct log *log;
    struct log_flusher *f;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    CHECK(log_flusher_create(&f) == 0);
    enum { N = 2000 };
    struct appender a = {log, NULL, NULL, N};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, poke_append_thread, &a) == 0);
    for (int i = 0; i < 200; i++) {
        CHECK(log_flusher_add(f, log) == 0);
        CHECK(log_get_flusher(log) == f);
        log_flusher_remove(f, log);
        CHECK(log_get_flusher(log) == NULL);
    }
    pthread_join(th, NULL);
    log_flusher_destroy(f); /* completes pokes queued after the last remove */
    CHECK_EQ_INT(log_end_offset(log), N);
    log_close(log);
}

/* The observer runs on the flushing thread right after each fdatasync: closing its gate makes
 * every flush "slow" and keeps its thread (and the log's busy mark) until the gate opens. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool closed;
    int inside; /* threads held in the observer */
};

static void gate_observer(void *arg, int64_t ns)
{
    struct gate *g = arg;
    pthread_mutex_lock(&g->mu);
    g->inside++;
    while (g->closed)
        pthread_cond_wait(&g->cv, &g->mu);
    g->inside--;
    pthread_mutex_unlock(&g->mu);
}

static int gate_inside(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->inside;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* Bad case tried: log A's flush is slow and its producers keep asking (a request per append
 * while its first fdatasync has not returned). A takes one flusher thread, not all of them: a
 * request of log B is flushed meanwhile (two threads in the observer, not four), and every
 * request of both completes once A is fast again, A's late ones in one more round. */
TEST(test_slow_log_occupies_one_flusher_thread_and_others_keep_flushing)
{
    char *dir_a = tmpdir_make(), *dir_b = tmpdir_make();
    struct log *a, *b;
    struct log_flusher *f;
    CHECK(log_open(dir_a, "a", 0, NULL, NULL, &a) == 0);
    CHECK(log_open(dir_b, "b", 0, NULL, NULL, &b) == 0);
    CHECK(log_flusher_create(&f) == 0);
    CHECK(log_flusher_add(f, a) == 0);
    CHECK(log_flusher_add(f, b) == 0);
    struct gate g = {.closed = true};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    log_flusher_set_observer(f, &(struct log_flush_observer){gate_observer, &g});
    struct waiter wa = {.main_thread = pthread_self(), .log = a};
    struct waiter wb = {.main_thread = pthread_self(), .log = b};
    enum { NA = 6 };
    static struct req ra[NA], rb;
    for (int i = 0; i < NA; i++) {
        int64_t first = test_append(a, 1, 100, 1000);
        ra[i] = (struct req){&wa, first + 1};
        CHECK(log_flush_request(a, first + 1, on_flushed, &ra[i]) == 0);
        for (int k = 0; k < 200 && i == 0 && gate_inside(&g) < 1; k++)
            sleep_ms(1); /* the first flush of A is under way before the others come */
    }
    int64_t first = test_append(b, 1, 100, 1000);
    rb = (struct req){&wb, first + 1};
    CHECK(log_flush_request(b, first + 1, on_flushed, &rb) == 0);
    for (int k = 0; k < 2000 && gate_inside(&g) < 2; k++)
        sleep_ms(1);
    sleep_ms(100);                    /* time for wrongly scheduled threads to pile onto A */
    CHECK_EQ_INT(gate_inside(&g), 2); /* A's first flush and B's: no second thread on A */
    CHECK_EQ_INT(atomic_load(&wa.done), 0);
    pthread_mutex_lock(&g.mu);
    g.closed = false;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < 5000 && (atomic_load(&wa.done) < NA || atomic_load(&wb.done) < 1); i++)
        sleep_ms(1);
    CHECK_EQ_INT(atomic_load(&wa.done), NA);
    CHECK_EQ_INT(atomic_load(&wb.done), 1);
    CHECK_EQ_INT(atomic_load(&wa.errors) + atomic_load(&wb.errors), 0);
    log_flusher_remove(f, a);
    log_flusher_remove(f, b);
    log_flusher_destroy(f);
    log_close(a);
    log_close(b);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

/* Appends batches of 16 x 4000 B until at least `bytes` went in; returns the bytes appended. */
static int64_t append_at_least(struct log *log, int64_t bytes)
{
    int64_t before = log_size_bytes(log);
    while (log_size_bytes(log) - before < bytes)
        test_append(log, 16, 4000, 1000);
    return log_size_bytes(log) - before;
}

/* Bad case tried: a log's writeback request (LOG_WRITEBACK_BYTES appended since the last one)
 * waits in the queue behind the log's running flush, and the thread then takes it together with
 * the next flush request, so only the flush is made. The count of bytes since the last
 * writeback must restart with that flush: otherwise it stays over the mark, no later append
 * crosses the mark again, and the log's writeback ahead stops for good (an acks=all fdatasync
 * then waits for the whole dirty backlog). Another mark's worth appended afterwards must still
 * get a writeback started. */
TEST(test_flush_that_takes_a_writeback_request_restarts_the_writeback_count)
{
    char *dir = tmpdir_make();
    struct log *log;
    struct log_flusher *f;
    CHECK(log_open(dir, "wb", 0, NULL, NULL, &log) == 0);
    CHECK(log_flusher_create(&f) == 0);
    CHECK(log_flusher_add(f, log) == 0);
    struct gate g = {.closed = true};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    log_flusher_set_observer(f, &(struct log_flush_observer){gate_observer, &g});
    struct waiter w = {.main_thread = pthread_self(), .log = log};
    static struct req r[2];
    int64_t end = test_append(log, 1, 100, 1000) + 1;
    r[0] = (struct req){&w, end};
    CHECK(log_flush_request(log, end, on_flushed, &r[0]) == 0);
    for (int k = 0; k < 5000 && gate_inside(&g) < 1; k++)
        sleep_ms(1);
    CHECK_EQ_INT(gate_inside(&g), 1); /* the first flush is held, its log busy */
    append_at_least(log, LOG_WRITEBACK_BYTES + (64 << 10)); /* queues a writeback request */
    CHECK(atomic_load(&log->unwritten_bytes) >= LOG_WRITEBACK_BYTES);
    end = log_end_offset(log);
    r[1] = (struct req){&w, end};
    CHECK(log_flush_request(log, end, on_flushed, &r[1]) == 0);
    pthread_mutex_lock(&g.mu);
    g.closed = false;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < 5000 && atomic_load(&w.done) < 2; i++)
        sleep_ms(1);
    CHECK_EQ_INT(atomic_load(&w.done), 2);
    CHECK_EQ_INT(atomic_load(&w.errors), 0);
    CHECK(atomic_load(&log->unwritten_bytes) < LOG_WRITEBACK_BYTES);
    append_at_least(log, LOG_WRITEBACK_BYTES + (64 << 10)); /* must ask for a writeback again */
    for (int i = 0; i < 5000 && atomic_load(&log->unwritten_bytes) >= LOG_WRITEBACK_BYTES; i++)
        sleep_ms(1);
    CHECK(atomic_load(&log->unwritten_bytes) < LOG_WRITEBACK_BYTES);
    log_flusher_remove(f, log);
    log_flusher_destroy(f);
    log_close(log);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

/* Voluntary + involuntary context switches of every thread of this process but the caller. */
static long other_threads_switches(void)
{
    long total = 0;
    char self[32];
    snprintf(self, sizeof(self), "%ld", (long)syscall(SYS_gettid));
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
            continue;
        char path[300], line[128];
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
        FILE *fp = fopen(path, "r");
        if (fp == NULL)
            continue;
        long n;
        while (fgets(line, sizeof(line), fp))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %ld", &n) == 1)
                total += n;
        fclose(fp);
    }
    closedir(d);
    return total;
}

/* Bad case tried: under acks=all a log's requests mostly arrive while its fdatasync runs. Each
 * must not wake an idle flusher thread that then finds nothing it may take (two context
 * switches per request, on a 2-core machine taken from the producer): 200 requests of a log
 * whose flush is held cost the other threads far fewer than 200 switches, and all of them
 * complete in the flushing thread's next round once the flush returns. */
TEST(test_requests_during_their_logs_flush_wake_no_idle_thread)
{
    char *dir = tmpdir_make();
    struct log *a;
    struct log_flusher *f;
    CHECK(log_open(dir, "a", 0, NULL, NULL, &a) == 0);
    CHECK(log_flusher_create(&f) == 0);
    CHECK(log_flusher_add(f, a) == 0);
    struct gate g = {.closed = true};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    log_flusher_set_observer(f, &(struct log_flush_observer){gate_observer, &g});
    struct waiter w = {.main_thread = pthread_self(), .log = a};
    enum { N = 200 };
    static struct req r[N + 1];
    int64_t first = test_append(a, 1, 100, 1000);
    r[0] = (struct req){&w, first + 1};
    CHECK(log_flush_request(a, first + 1, on_flushed, &r[0]) == 0);
    for (int k = 0; k < 2000 && gate_inside(&g) < 1; k++)
        sleep_ms(1);
    CHECK_EQ_INT(gate_inside(&g), 1);
    sleep_ms(50); /* the other threads are asleep again */
    long before = other_threads_switches();
    for (int i = 1; i <= N; i++) {
        first = test_append(a, 1, 100, 1000);
        r[i] = (struct req){&w, first + 1};
        CHECK(log_flush_request(a, first + 1, on_flushed, &r[i]) == 0);
        sleep_ms(1); /* spaced as a producer's requests are: each could wake a sleeping thread */
    }
    sleep_ms(50);
    long woken = other_threads_switches() - before;
    printf("# other threads' context switches while %d requests came: %ld\n", N, woken);
    CHECK(before >= 0);
    CHECK(woken < N / 4);
    CHECK_EQ_INT(atomic_load(&w.done), 0);
    pthread_mutex_lock(&g.mu);
    g.closed = false;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < 5000 && atomic_load(&w.done) < N + 1; i++)
        sleep_ms(1);
    CHECK_EQ_INT(atomic_load(&w.done), N + 1);
    CHECK_EQ_INT(atomic_load(&w.errors), 0);
    log_flusher_remove(f, a);
    log_flusher_destroy(f);
    log_close(a);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

TEST_MAIN
