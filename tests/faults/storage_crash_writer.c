/*
 * Helper for tests/faults/test_storage_crash.sh.
 *
 *   storage_crash_writer write DIR   appends batches to DIR/crash-0 forever (group commit via
 *                                    the flusher) and prints "flushed N" whenever everything
 *                                    below offset N is fdatasynced.
 *   storage_crash_writer verify DIR  opens the dir (running recovery), reads every batch from
 *                                    the log start, checks CRCs, contiguous offsets and that
 *                                    each record's value names its own offset, and prints
 *                                    "end N" or "corrupt ..." (exit 1).
 *
 * Record values are "value-<offset>-" plus padding, so a record that moved is detected.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "record/record_batch.h"
#include "record/record_builder.h"
#include "record/record_iter.h"
#include "storage/flusher.h"
#include "storage/log.h"
#include "storage/log_manager.h"

static void say(const char *fmt, int64_t v)
{
    char line[64];
    int n = snprintf(line, sizeof(line), fmt, v);
    if (write(1, line, (size_t)n) < 0)
        _exit(3);
}

struct flush_arg {
    int64_t offset;
};

static void on_flushed(void *arg, int err)
{
    struct flush_arg *a = arg;
    if (err == 0)
        say("flushed %" PRId64 "\n", a->offset);
    free(a);
}

static uint8_t *make_batch(int64_t first, int n, size_t *len)
{
    struct record_builder b;
    record_builder_init(&b, (first / 7) % 2 ? 3 : 0); /* mix lz4 and uncompressed */
    char val[300];
    for (int i = 0; i < n; i++) {
        int vl = snprintf(val, sizeof(val), "value-%" PRId64 "-", first + i);
        memset(val + vl, 'x', (size_t)(100 + (first + i) % 150));
        vl += 100 + (int)((first + i) % 150);
        record_builder_add(&b, clock_wall_ms(), NULL, 0, val, vl, NULL, 0);
    }
    uint8_t *out = NULL;
    if (record_builder_finish(&b, &out, len) < 0)
        out = NULL;
    record_builder_release(&b);
    return out;
}

static struct log_config crash_config(void)
{
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 256 * 1024; /* many rolls */
    cfg.segment_index_bytes = 64 * 1024;
    return cfg;
}

static int run_writer(const char *dir)
{
    struct log_config cfg = crash_config();
    struct log_manager *m;
    struct log_flusher *f;
    struct log *log;
    if (log_manager_open(dir, &cfg, 2, &m) < 0 || log_flusher_create(&f) < 0 ||
        log_manager_create(m, "crash", 0, NULL, &log) < 0 || log_flusher_add(f, log) < 0)
        return 2;
    unsigned seed = (unsigned)getpid();
    for (int64_t i = 0;; i++) {
        int64_t first = log_end_offset(log);
        int n = 1 + rand_r(&seed) % 5;
        size_t len;
        uint8_t *b = make_batch(first, n, &len);
        struct log_append_info info;
        if (!b || log_append(log, b, len, 0, clock_wall_ms(), false, &info) < 0)
            return 2;
        free(b);
        struct flush_arg *a = malloc(sizeof(*a));
        a->offset = info.last_offset + 1;
        if (log_flush_request(log, a->offset, on_flushed, a) < 0)
            return 2;
        if (i % 200 == 0)
            log_manager_checkpoint(m);
    }
}

static int check_batch(const uint8_t *p, size_t len, int64_t expect)
{
    struct record_batch_header h;
    if (record_batch_validate(p, len, RECORD_VALIDATE_STORED, 0, &h) < 0 || h.base_offset != expect)
        return -1;
    struct record_iter it;
    struct record rec;
    int rc = record_iter_init(&it, p, len, 1 << 24);
    int64_t o = expect;
    while (rc == 0 && (rc = record_iter_next(&it, &rec)) == 1) {
        char want[64];
        int wl = snprintf(want, sizeof(want), "value-%" PRId64 "-", o);
        if (rec.offset != o || rec.value_len < wl || memcmp(rec.value, want, (size_t)wl) != 0)
            rc = -1;
        else
            rc = 0;
        o++;
    }
    record_iter_release(&it);
    return rc < 0 || o != record_batch_last_offset(&h) + 1 ? -1 : 0;
}

static int run_verify(const char *dir)
{
    struct log_config cfg = crash_config();
    struct log_manager *m;
    if (log_manager_open(dir, &cfg, 2, &m) < 0)
        return 2;
    struct log *log = log_manager_get(m, "crash", 0);
    int64_t off = log ? log_start_offset(log) : 0;
    int bad = 0;
    while (log && off < log_end_offset(log)) {
        struct log_read_result r;
        if (log_read(log, off, 1 << 20, INT64_MAX, true, &r) < 0 || r.range.length == 0) {
            say("corrupt: unreadable at %" PRId64 "\n", off);
            bad = 1;
            break;
        }
        uint8_t *buf = malloc((size_t)r.range.length);
        if (pread(r.range.fd, buf, (size_t)r.range.length, r.range.position) != r.range.length)
            bad = 1;
        size_t pos = 0;
        while (!bad && pos < (size_t)r.range.length) {
            struct record_batch_header h;
            record_batch_header_parse(buf + pos, (size_t)r.range.length - pos, &h);
            if (check_batch(buf + pos,
                            (size_t)r.range.length - pos < record_batch_size(&h)
                                ? 0
                                : record_batch_size(&h),
                            off) < 0) {
                say("corrupt: bad batch at %" PRId64 "\n", off);
                bad = 1;
                break;
            }
            off = record_batch_last_offset(&h) + 1;
            pos += record_batch_size(&h);
        }
        free(buf);
        log_read_release(&r);
        if (bad)
            break;
    }
    if (!bad)
        say("end %" PRId64 "\n", off);
    log_manager_close(m);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    if (strcmp(argv[1], "write") == 0)
        return run_writer(argv[2]);
    if (strcmp(argv[1], "verify") == 0)
        return run_verify(argv[2]);
    return 2;
}
