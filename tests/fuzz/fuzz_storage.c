/*
 * Fuzz target: loading a partition directory from hostile files — the segment recovery scanner
 * (storage/recovery.h), the offset and time index loaders and their sanity checks, and the
 * leader-epoch checkpoint reader — through log_open(), as the broker does at start-up.
 *
 * Input: byte 0 = flags, then chunks [kind:1][len:u16 big-endian][len bytes]:
 *   kind % 4 == 0: a new segment; its first 4 bytes (big-endian, masked to 31 bits) are the
 *                  base offset, the rest is its .log
 *   kind % 4 == 1: the current segment's .index      kind % 4 == 2: its .timeindex
 *   kind % 4 == 3: leader-epoch-checkpoint text
 * flags bit 0: clean shutdown (trust indexes, open only the active segment); otherwise every
 * segment is recovered from offset 0.
 *
 * Properties: no crash or sanitizer report; after an unclean-shutdown load, every batch the
 * log serves validates (RECORD_VALIDATE_STORED) and offsets only increase ("nothing corrupt is
 * ever served"); the log accepts a new append at its end offset. Each index file is also opened
 * read-only on its own and looked up at random targets.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/logger.h"
#include "fuzz_common.h"
#include "record/record_batch.h"
#include "record/record_builder.h"
#include "storage/index_file.h"
#include "storage/log.h"
#include "storage/offset_index.h"
#include "storage/time_index.h"

static char root[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    logger_set_level(LOGGER_LEVEL_OFF);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(root, sizeof(root), "%s/gregor-fuzz-storage.XXXXXX", base);
    if (mkdtemp(root) == NULL)
        abort();
    return 0;
}

static void check_index_alone(const char *path, size_t entry_size, int64_t base)
{
    struct index_file ix;
    if (index_file_open(&ix, path, entry_size, 1 << 20, false) != 0)
        return;
    if (entry_size == OFFSET_INDEX_ENTRY_SIZE) {
        (void)offset_index_sanity_check(&ix, 1 << 20);
        for (int64_t t = base - 1; t < base + 100000; t += 9973)
            (void)offset_index_lookup(&ix, base, t);
        (void)offset_index_last(&ix, base);
    } else {
        (void)time_index_sanity_check(&ix);
        for (int64_t t = -1; t < 2000000000000LL; t += 199999999999LL)
            (void)time_index_lookup(&ix, base, t);
        (void)time_index_last(&ix, base);
    }
    index_file_close(&ix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    char dir[512], path[700];
    snprintf(dir, sizeof(dir), "%s/t-0", root);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(dir, 0755);

    bool clean = data[0] & 1;
    size_t pos = 1;
    int64_t base = -1;
    int segs = 0;
    int64_t bases[8];
    while (pos + 3 <= size && segs <= 8) {
        int kind = data[pos] % 4;
        size_t len = ((size_t)data[pos + 1] << 8) | data[pos + 2];
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        const uint8_t *p = data + pos;
        pos += len;
        if (kind == 0) {
            if (len < 4 || segs == 8)
                continue;
            int64_t b = (int64_t)((((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                                   ((uint32_t)p[2] << 8) | p[3]) &
                                  0x7fffffffu);
            bool dup = false;
            for (int i = 0; i < segs; i++)
                dup |= bases[i] == b;
            if (dup)
                continue;
            base = bases[segs++] = b;
            snprintf(path, sizeof(path), "%s/%020lld.log", dir, (long long)base);
            write_file(path, p + 4, len - 4);
        } else if (kind == 3) {
            snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", dir);
            write_file(path, p, len);
        } else if (base >= 0) {
            const char *suffix = kind == 1 ? ".index" : ".timeindex";
            snprintf(path, sizeof(path), "%s/%020lld%s", dir, (long long)base, suffix);
            write_file(path, p, len);
            check_index_alone(path, kind == 1 ? OFFSET_INDEX_ENTRY_SIZE : TIME_INDEX_ENTRY_SIZE,
                              base);
        }
    }

    struct log_config cfg = log_config_defaults();
    cfg.segment_index_bytes = 4096;
    cfg.index_interval_bytes = 128;
    cfg.segment_bytes = 1 << 20;
    struct log_open_state st = {
        .recovery_point = 0, .log_start_offset = -1, .high_watermark = 0, .clean_shutdown = clean};
    struct log *log = NULL;
    if (log_open(root, "t", 0, &cfg, &st, &log) != 0)
        return 0;

    int64_t off = log_start_offset(log), end = log_end_offset(log), prev_last = -1;
    for (int guard = 0; off < end && guard < 10000; guard++) {
        struct log_read_result r;
        int rc = log_read(log, off, 1 << 16, INT64_MAX, true, &r);
        if (rc < 0 || r.range.length == 0) {
            log_read_release(&r);
            /* Nothing at or after off: empty segments (a gap) up to the end are legal. */
            break;
        }
        if (!clean) {
            uint8_t *buf = malloc((size_t)r.range.length);
            ssize_t got = pread(r.range.fd, buf, (size_t)r.range.length, r.range.position);
            FUZZ_CHECK(got == r.range.length, "short pread of served range");
            int nb =
                record_batches_validate(buf, (size_t)r.range.length, RECORD_VALIDATE_STORED, 0);
            FUZZ_CHECK(nb > 0, "recovered log serves an invalid batch at offset %lld (%d)",
                       (long long)off, nb);
            struct record_batch_header h;
            record_batch_header_parse(buf, (size_t)r.range.length, &h);
            FUZZ_CHECK(h.base_offset > prev_last, "offsets go back: %lld after %lld",
                       (long long)h.base_offset, (long long)prev_last);
            free(buf);
        }
        FUZZ_CHECK(r.next_offset > off, "read at %lld did not advance (next %lld)", (long long)off,
                   (long long)r.next_offset);
        prev_last = r.next_offset - 1;
        off = r.next_offset;
        log_read_release(&r);
    }

    struct record_builder b;
    record_builder_init(&b, 0);
    record_builder_add(&b, 1700000000000LL, "k", 1, "value", 5, NULL, 0);
    uint8_t *batch = NULL;
    size_t bl = 0;
    if (record_builder_finish(&b, &batch, &bl) == 0) {
        struct log_append_info info;
        int rc = log_append(log, batch, bl, 0, 1700000000000LL, false, &info);
        if (!clean && rc == 0) {
            FUZZ_CHECK(info.first_offset == end, "append went to %lld, end was %lld",
                       (long long)info.first_offset, (long long)end);
            /* A reader stuck at off (the first offset with nothing after it) must now get the
             * new batch, even across empty segments: consumers must never stall. */
            struct log_read_result r;
            rc = log_read(log, off, 1 << 16, INT64_MAX, true, &r);
            FUZZ_CHECK(rc == 0 && r.range.length > 0 && r.next_offset > end,
                       "after an append at %lld, a read at %lld gives rc %d, %lld bytes",
                       (long long)end, (long long)off, rc, (long long)r.range.length);
            log_read_release(&r);
        }
    }
    free(batch);
    record_builder_release(&b);
    log_close(log);
    return 0;
}
