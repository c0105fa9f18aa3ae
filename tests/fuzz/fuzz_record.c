/*
 * Fuzz target: record batches as a producer sends them (a Produce request's records field) and
 * as they are read back from a log. Runs record_batches_validate in both modes; for every input
 * that validates, walks each batch with record_iter (compressed ones are decompressed under a
 * 1 MiB bound) and each record's headers.
 *
 * Properties:
 *   - validation never reads outside the buffer (ASan) and never returns 0/positive for a
 *     buffer whose batches do not tile it exactly;
 *   - a batch accepted in PRODUCE mode is also accepted in STORED mode;
 *   - the broker's in-place edits (base offset, leader epoch, LogAppendTime) keep an accepted
 *     batch valid, as the append path relies on;
 *   - iteration of an accepted uncompressed batch yields exactly recordCount records whose
 *     key/value slices lie inside the batch.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "record/byteorder.h"
#include "record/record_batch.h"
#include "record/record_iter.h"

#define MAX_DECOMPRESSED (1u << 20)

static void iterate(const uint8_t *b, size_t len, const struct record_batch_header *h)
{
    struct record_iter it;
    int rc = record_iter_init(&it, b, len, MAX_DECOMPRESSED);
    if (rc == 0) {
        struct record rec;
        int n = 0;
        const uint8_t *lo = it.owned ? it.owned : b;
        while ((rc = record_iter_next(&it, &rec)) == 1) {
            n++;
            if (!it.owned && rec.key)
                FUZZ_CHECK(rec.key >= lo && rec.key + rec.key_len <= b + len, "key outside batch");
            if (!it.owned && rec.value)
                FUZZ_CHECK(rec.value >= lo && rec.value + rec.value_len <= b + len,
                           "value outside batch");
            const uint8_t *hp = rec.headers;
            struct record_header hh;
            int k = 0;
            while (record_header_next(&hp, rec.headers_end, &hh) == 1 && k++ < rec.header_count) {
            }
        }
        if (record_batch_compression(h) == 0 && rc == 0)
            FUZZ_CHECK(n == h->record_count, "iterated %d records of %d", n, h->record_count);
    }
    record_iter_release(&it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (4u << 20))
        return 0;
    int np = record_batches_validate(data, size, RECORD_VALIDATE_PRODUCE, 0);
    int ns = record_batches_validate(data, size, RECORD_VALIDATE_STORED, 0);
    (void)record_batches_validate(data, size, RECORD_VALIDATE_PRODUCE, 200);
    if (np > 0)
        FUZZ_CHECK(ns == np, "PRODUCE accepted %d batches, STORED says %d", np, ns);
    if (ns <= 0)
        return 0;

    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    size_t pos = 0;
    while (pos < size) {
        struct record_batch_header h;
        FUZZ_CHECK(record_batch_header_parse(copy + pos, size - pos, &h) == 0,
                   "accepted buffer has a bad header at %zu", pos);
        size_t bl = record_batch_size(&h);
        FUZZ_CHECK(bl >= RECORD_BATCH_HEADER_SIZE && bl <= size - pos, "batch size %zu at %zu", bl,
                   pos);
        iterate(copy + pos, bl, &h);
        if (np > 0) {
            record_batch_set_base_offset(copy + pos, 123456789);
            record_batch_set_leader_epoch(copy + pos, 7);
            int rc = record_batch_validate(copy + pos, bl, RECORD_VALIDATE_PRODUCE, 0, NULL);
            FUZZ_CHECK(rc == 0, "batch invalid (%d) after base offset/epoch edit", rc);
            record_batch_set_log_append_time(copy + pos, 1700000000000LL);
            rc = record_batch_validate(copy + pos, bl, RECORD_VALIDATE_PRODUCE, 0, NULL);
            FUZZ_CHECK(rc == 0, "batch invalid (%d) after LogAppendTime edit", rc);
        }
        pos += bl;
    }
    free(copy);
    return 0;
}
