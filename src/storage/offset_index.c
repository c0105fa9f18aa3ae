/*
 * Offset index lookups and appends. Invariant: entries are strictly increasing in offset and
 * position, so a binary search for "largest offset <= target" is exact.
 */
#include "storage/offset_index.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>

#include "record/byteorder.h"

/* On-disk entry: 4-byte offset relative to the segment base, 4-byte file position. */
static_assert(OFFSET_INDEX_ENTRY_SIZE == sizeof(uint32_t) + sizeof(uint32_t),
              "offset index entry is Kafka's 8 bytes");

static struct offset_position entry_at(const struct index_file *ix, int64_t base, uint32_t i)
{
    const uint8_t *e = index_file_entry(ix, i);
    return (struct offset_position){base + (int32_t)be32_load(e), (int32_t)be32_load(e + 4)};
}

struct offset_position offset_index_lookup(const struct index_file *ix, int64_t base_offset,
                                           int64_t target)
{
    uint32_t n = index_file_entries(ix);
    struct offset_position none = {base_offset, 0};
    if (n == 0 || entry_at(ix, base_offset, 0).offset > target)
        return none;
    uint32_t lo = 0, hi = n - 1; /* invariant: entry[lo].offset <= target */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (entry_at(ix, base_offset, mid).offset <= target)
            lo = mid;
        else
            hi = mid - 1;
    }
    return entry_at(ix, base_offset, lo);
}

int offset_index_append(struct index_file *ix, int64_t base_offset, int64_t offset,
                        int64_t position)
{
    assert(offset >= base_offset && offset - base_offset <= INT32_MAX);
    assert(position >= 0 && position <= INT32_MAX);
    uint32_t n = index_file_entries(ix);
    if (n > 0) {
        struct offset_position last = entry_at(ix, base_offset, n - 1);
        assert(offset > last.offset && position > last.position);
        (void)last;
    }
    uint8_t e[OFFSET_INDEX_ENTRY_SIZE];
    be32_store(e, (uint32_t)(offset - base_offset));
    be32_store(e + 4, (uint32_t)position);
    return index_file_append(ix, e);
}

struct offset_position offset_index_last(const struct index_file *ix, int64_t base_offset)
{
    uint32_t n = index_file_entries(ix);
    if (n == 0)
        return (struct offset_position){base_offset, 0};
    return entry_at(ix, base_offset, n - 1);
}

int offset_index_sanity_check(const struct index_file *ix, int64_t log_size)
{
    uint32_t n = index_file_entries(ix);
    int64_t prev_off = -1, prev_pos = -1;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = index_file_entry(ix, i);
        int64_t rel = (int32_t)be32_load(e), pos = (int32_t)be32_load(e + 4);
        if (rel <= prev_off || pos <= prev_pos || pos >= log_size)
            return -EBADMSG;
        prev_off = rel;
        prev_pos = pos;
    }
    return 0;
}
