/*
 * Segment recovery scan. Reads the .log in large sequential chunks so the scan runs near disk
 * bandwidth; validates batch headers and CRC-32C (as Kafka's LogSegment.recover does) plus
 * offset monotonicity; rebuilds indexes with the same rule as appends; truncates the tail.
 */
#include "storage/recovery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record/crc32c.h"

#define RECOVERY_CHUNK (1 << 20)
/* A header claiming more than this is treated as garbage rather than allocated for. */
#define RECOVERY_MAX_BATCH (512 << 20)

struct scan_buf {
    uint8_t *data;
    size_t cap;
    int64_t file_pos; /* file position of data[0] */
    size_t len;       /* valid bytes in data */
};

/* Makes [pos, pos + need) available in the buffer, reading from fd. 0, -ENODATA if the file
 * ends first, or negative errno. */
static int scan_buf_fill(struct scan_buf *b, int fd, int64_t pos, size_t need, int64_t file_size)
{
    if (pos >= b->file_pos && pos + (int64_t)need <= b->file_pos + (int64_t)b->len)
        return 0;
    if (pos + (int64_t)need > file_size)
        return -ENODATA;
    size_t want = need > RECOVERY_CHUNK ? need : RECOVERY_CHUNK;
    if (want > b->cap) {
        uint8_t *d = realloc(b->data, want);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = want;
    }
    int64_t left = file_size - pos;
    size_t to_read = (int64_t)want < left ? want : (size_t)left;
    size_t got = 0;
    while (got < to_read) {
        ssize_t n = pread(fd, b->data + got, to_read - got, pos + (int64_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    b->file_pos = pos;
    b->len = got;
    return got >= need ? 0 : -ENODATA;
}

/* True if the batch at p (size bytes available) is valid after expected_min_offset. */
static bool batch_valid(const uint8_t *p, const struct record_batch_header *h, int64_t min_offset,
                        int64_t seg_base)
{
    size_t size = record_batch_size(h);
    if (crc32c(p + RB_OFF_ATTRIBUTES, size - RB_OFF_ATTRIBUTES) != h->crc)
        return false;
    if (h->last_offset_delta < 0 || h->record_count < 0 ||
        (int64_t)h->record_count > (int64_t)h->last_offset_delta + 1)
        return false;
    if (h->base_offset < min_offset || h->base_offset < seg_base)
        return false;
    return record_batch_last_offset(h) - seg_base <= INT32_MAX;
}

int segment_recover(struct segment *seg, struct segment_recovery_result *out)
{
    struct scan_buf b = {0};
    int64_t file_size = lseek(seg->log_fd, 0, SEEK_END);
    if (file_size < 0)
        return -errno;
    int64_t pos = 0, last_index_pos = 0, next_offset = seg->base_offset;
    int64_t max_ts = -1, max_ts_off = seg->base_offset, rolling_ts = -1;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    index_file_truncate_entries(&seg->offset_index, 0);
    index_file_truncate_entries(&seg->time_index, 0);

    for (;;) {
        struct record_batch_header h;
        rc = scan_buf_fill(&b, seg->log_fd, pos, RECORD_BATCH_HEADER_SIZE, file_size);
        if (rc < 0)
            break;
        if (record_batch_header_parse(b.data + (pos - b.file_pos), RECORD_BATCH_HEADER_SIZE, &h) <
            0)
            break;
        size_t size = record_batch_size(&h);
        if (size > RECOVERY_MAX_BATCH)
            break;
        if ((rc = scan_buf_fill(&b, seg->log_fd, pos, size, file_size)) < 0)
            break;
        if (!batch_valid(b.data + (pos - b.file_pos), &h, next_offset, seg->base_offset))
            break;
        if (h.max_timestamp > max_ts) {
            max_ts = h.max_timestamp;
            max_ts_off = record_batch_last_offset(&h);
        }
        if (rolling_ts < 0)
            rolling_ts = h.max_timestamp;
        if (pos - last_index_pos > seg->index_interval_bytes) {
            int irc = offset_index_append(&seg->offset_index, seg->base_offset,
                                          record_batch_last_offset(&h), pos);
            if (irc == 0)
                irc =
                    time_index_maybe_append(&seg->time_index, seg->base_offset, max_ts, max_ts_off);
            if (irc < 0 && irc != -ENOSPC) {
                free(b.data);
                return irc;
            }
            last_index_pos = pos;
        }
        next_offset = record_batch_last_offset(&h) + 1;
        pos += (int64_t)size;
        out->batches++;
    }
    free(b.data);
    if (rc < 0 && rc != -ENODATA)
        return rc; /* an I/O error, not a bad batch: leave the file alone */
    if (pos < file_size && ftruncate(seg->log_fd, pos) < 0)
        return -errno;
    out->next_offset = next_offset;
    out->valid_bytes = pos;
    out->truncated_bytes = file_size - pos;
    seg->next_offset = next_offset;
    seg->bytes_since_index = pos - last_index_pos;
    seg->rolling_timestamp = rolling_ts;
    atomic_store(&seg->max_timestamp, max_ts);
    atomic_store(&seg->offset_of_max_timestamp, max_ts_off);
    atomic_store(&seg->max_timestamp_known, true);
    atomic_store_explicit(&seg->size, pos, memory_order_release);
    return 0;
}

int segment_scan_next_offset(struct segment *seg, int64_t *next_offset)
{
    int64_t size = segment_size(seg);
    struct offset_position start = offset_index_last(&seg->offset_index, seg->base_offset);
    int64_t pos = start.position, next = seg->base_offset;
    struct record_batch_header h;
    while (segment_read_batch_header(seg, pos, size, &h) == 0) {
        next = record_batch_last_offset(&h) + 1;
        pos += (int64_t)record_batch_size(&h);
    }
    if (pos != size)
        return -EBADMSG; /* the tail is not whole batches: needs recovery */
    *next_offset = next;
    return 0;
}
