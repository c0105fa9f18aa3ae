/*
 * Time index lookups and appends. Invariant: entries are non-decreasing in timestamp and
 * offset, so binary search for "last timestamp <= target" is exact.
 */
#include "storage/time_index.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>

#include "record/byteorder.h"

/* On-disk entry: 8-byte timestamp, 4-byte offset relative to the segment base. */
static_assert(TIME_INDEX_ENTRY_SIZE == sizeof(uint64_t) + sizeof(uint32_t),
              "time index entry is Kafka's 12 bytes");

static struct timestamp_offset entry_at(const struct index_file *ix, int64_t base, uint32_t i)
{
    const uint8_t *e = index_file_entry(ix, i);
    return (struct timestamp_offset){(int64_t)be64_load(e), base + (int32_t)be32_load(e + 8)};
}

struct timestamp_offset time_index_lookup(const struct index_file *ix, int64_t base_offset,
                                          int64_t target)
{
    uint32_t n = index_file_entries(ix);
    struct timestamp_offset none = {-1, base_offset};
    if (n == 0 || entry_at(ix, base_offset, 0).timestamp > target)
        return none;
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (entry_at(ix, base_offset, mid).timestamp <= target)
            lo = mid;
        else
            hi = mid - 1;
    }
    return entry_at(ix, base_offset, lo);
}

struct timestamp_offset time_index_last(const struct index_file *ix, int64_t base_offset)
{
    uint32_t n = index_file_entries(ix);
    if (n == 0)
        return (struct timestamp_offset){-1, base_offset};
    return entry_at(ix, base_offset, n - 1);
}

int time_index_maybe_append(struct index_file *ix, int64_t base_offset, int64_t timestamp,
                            int64_t offset)
{
    uint32_t n = index_file_entries(ix);
    if (n > 0) {
        struct timestamp_offset last = entry_at(ix, base_offset, n - 1);
        if (timestamp <= last.timestamp || offset < last.offset)
            return 0;
    }
    /* Entries stay non-decreasing in both: the check above skips any that would not. The offset
     * can come from an index file read at start-up (a segment's largest timestamp), so an
     * offset outside the segment is a corrupt file, not a broken invariant (fuzz_storage). */
    if (offset < base_offset || offset - base_offset > INT32_MAX)
        return -EBADMSG;
    uint8_t e[TIME_INDEX_ENTRY_SIZE];
    be64_store(e, (uint64_t)timestamp);
    be32_store(e + 8, (uint32_t)(offset - base_offset));
    return index_file_append(ix, e);
}

int time_index_sanity_check(const struct index_file *ix)
{
    uint32_t n = index_file_entries(ix);
    int64_t prev_ts = INT64_MIN, prev_off = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = index_file_entry(ix, i);
        int64_t ts = (int64_t)be64_load(e), rel = (int32_t)be32_load(e + 8);
        if (ts < prev_ts || rel < prev_off)
            return -EBADMSG;
        prev_ts = ts;
        prev_off = rel;
    }
    return 0;
}
