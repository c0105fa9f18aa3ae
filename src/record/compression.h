/*
 * Record-batch payload codecs as Kafka frames them (protocol notes section 7):
 *   gzip   - RFC 1952 stream (concatenated members accepted)
 *   snappy - xerial stream ("\x82SNAPPY\0" header + int32-length-prefixed raw blocks) or one
 *            raw Snappy block; both are accepted on input, xerial is written
 *   lz4    - LZ4 frame, 64 KiB independent blocks, no content size/checksum (Kafka's writer)
 *   zstd   - a standard Zstandard frame
 * Decompression enforces an output limit so a small payload cannot expand without bound.
 * Thread-safe; every call allocates its own contexts.
 */
#ifndef GREGOR_RECORD_COMPRESSION_H
#define GREGOR_RECORD_COMPRESSION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decompresses in[0..in_len) with `codec` (enum record_compression). On success *out is a
 * malloc'ed buffer the caller frees, *out_len its length (<= max_out). Errors:
 * RECORD_ERR_TOO_LARGE when the output would exceed max_out, RECORD_ERR_CORRUPT for bad input,
 * RECORD_ERR_UNSUPPORTED_CODEC, RECORD_ERR_NOMEM. *out is NULL on error.
 */
int record_decompress(int codec, const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                      size_t *out_len);

/* Compresses in[0..in_len); *out is malloc'ed (caller frees). 0 or a record_error. */
int record_compress(int codec, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);

/* Snappy framings, exposed for tests and for legacy conversion. */
int snappy_xerial_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                             size_t *out_len);
int snappy_raw_compress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);

#endif
