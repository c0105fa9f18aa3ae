/*
 * Legacy message sets (magic 0 and 1, protocol notes section 6.4) for old clients: Produce
 * v0-2 carry them and are converted to one magic-2 batch on the way in; Fetch v0-3 answers are
 * converted from the stored magic-2 batches on the way out (v0-1 get magic 0, v2-3 magic 1).
 *
 * Pure functions, any thread; output buffers are malloc'ed and owned by the caller.
 */
#ifndef GREGOR_RECORD_LEGACY_H
#define GREGOR_RECORD_LEGACY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Converts the legacy message set in[0..len) (CRC-32 of every message checked, compressed
 * wrappers opened, nested sets walked one level) into a single magic-2 batch compressed with
 * the producer's codec. max_bytes bounds decompression. 0 or a record_error.
 */
int legacy_to_v2(const uint8_t *in, size_t len, size_t max_bytes, uint8_t **out, size_t *out_len);

/*
 * Converts magic-2 batches in[0..len) to an uncompressed legacy message set of `magic` (0 or 1),
 * keeping only records with offset >= min_offset. A partial batch at the end is dropped.
 * Headers cannot be represented and are dropped, as Kafka does. 0 or a record_error.
 */
int legacy_from_v2(const uint8_t *in, size_t len, int magic, int64_t min_offset, size_t max_bytes,
                   uint8_t **out, size_t *out_len);

#endif
