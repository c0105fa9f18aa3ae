/*
 * Fuzz target: the record-batch payload codecs (record/compression.h).
 * Input: byte 0 selects the codec and the output limit, the rest is the compressed payload.
 *   codec = byte0 % 6: 0 -> round-trip mode, 1 gzip, 2 snappy (xerial or raw), 3 lz4 frame,
 *   4 zstd, 5 snappy_xerial_decompress directly. Limit: byte0 / 6 selects 64 B .. 1 MiB.
 * Properties: no sanitizer report; on success the output is at most the limit and *out is
 * set; on failure *out is NULL. Round-trip mode compresses the payload with every codec and
 * checks decompression gives it back byte for byte.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "record/compression.h"
#include "record/record_batch.h"

static const size_t limits[] = {64, 1024, 65536, 1u << 20};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    int sel = data[0] % 6;
    size_t max_out = limits[(data[0] / 6) % 4];
    const uint8_t *in = data + 1;
    size_t in_len = size - 1;
    uint8_t *out = (uint8_t *)1;
    size_t out_len = 0;
    int rc;
    if (sel == 0) {
        for (int codec = 1; codec <= 4; codec++) {
            uint8_t *c = NULL;
            size_t cl = 0;
            rc = record_compress(codec, in, in_len, &c, &cl);
            FUZZ_CHECK(rc == 0, "compress codec %d of %zu bytes failed: %d", codec, in_len, rc);
            out = NULL;
            rc = record_decompress(codec, c, cl, in_len + 1, &out, &out_len);
            FUZZ_CHECK(rc == 0, "codec %d: decompress of own output failed: %d", codec, rc);
            FUZZ_CHECK(out_len == in_len && (in_len == 0 || memcmp(out, in, in_len) == 0),
                       "codec %d: round trip changed the data (%zu -> %zu)", codec, in_len,
                       out_len);
            free(out);
            free(c);
        }
        return 0;
    }
    if (sel == 5)
        rc = snappy_xerial_decompress(in, in_len, max_out, &out, &out_len);
    else
        rc = record_decompress(sel, in, in_len, max_out, &out, &out_len);
    if (rc == 0) {
        FUZZ_CHECK(out_len <= max_out, "codec %d: %zu bytes out, limit %zu", sel, out_len, max_out);
        FUZZ_CHECK(out != NULL || out_len == 0, "codec %d: success without a buffer", sel);
        if (out_len)
            FUZZ_CHECK(out[0] == out[0] && out[out_len - 1] == out[out_len - 1], "unreachable");
        free(out);
    } else {
        FUZZ_CHECK(out == NULL, "codec %d: error %d but *out not NULL", sel, rc);
        FUZZ_CHECK(rc == RECORD_ERR_TOO_LARGE || rc == RECORD_ERR_CORRUPT ||
                       rc == RECORD_ERR_NOMEM || rc == RECORD_ERR_UNSUPPORTED_CODEC,
                   "codec %d: unexpected error %d", sel, rc);
    }
    return 0;
}
