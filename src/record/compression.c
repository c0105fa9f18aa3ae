/*
 * Codec glue over zlib, libsnappy, liblz4 (frame API) and libzstd. Every decoder writes into a
 * buffer that grows by doubling up to max_out and fails with RECORD_ERR_TOO_LARGE past it, so
 * memory use is bounded by the caller's limit, not by what the payload claims. libsnappy is
 * loaded on first use (base/dynlib.h: it brings libstdc++, 1 MB of an idle broker's memory).
 */
#include "record/compression.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "base/dynlib.h"
#include "record/byteorder.h"
#include "record/record_batch.h"

static const uint8_t XERIAL_MAGIC[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16
#define XERIAL_BLOCK_SIZE (32 * 1024)

/* A growable output buffer bounded by `limit`. */
struct outbuf {
    uint8_t *data;
    size_t len, cap, limit;
};

static int outbuf_init(struct outbuf *b, size_t hint, size_t limit)
{
    b->limit = limit;
    b->len = 0;
    b->cap = hint < 4096 ? 4096 : hint;
    if (b->cap > limit)
        b->cap = limit ? limit : 1;
    b->data = malloc(b->cap);
    return b->data ? 0 : RECORD_ERR_NOMEM;
}

/* Makes room for at least one more byte; RECORD_ERR_TOO_LARGE when at the limit. */
static int outbuf_grow(struct outbuf *b)
{
    if (b->len < b->cap)
        return 0;
    if (b->cap >= b->limit)
        return RECORD_ERR_TOO_LARGE;
    size_t cap = b->cap * 2 > b->limit ? b->limit : b->cap * 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return RECORD_ERR_NOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

static int outbuf_finish(struct outbuf *b, int rc, uint8_t **out, size_t *out_len)
{
    if (rc < 0) {
        free(b->data);
        *out = NULL;
        *out_len = 0;
        return rc;
    }
    *out = b->data;
    *out_len = b->len;
    return 0;
}

static int gzip_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                           size_t *out_len)
{
    struct outbuf b;
    z_stream zs = {0};
    int rc = outbuf_init(&b, in_len * 4, max_out);
    if (rc < 0)
        return outbuf_finish(&b, rc, out, out_len);
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return outbuf_finish(&b, RECORD_ERR_NOMEM, out, out_len);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    for (;;) {
        if ((rc = outbuf_grow(&b)) < 0)
            break;
        zs.next_out = b.data + b.len;
        zs.avail_out = (uInt)(b.cap - b.len);
        int zrc = inflate(&zs, Z_NO_FLUSH);
        b.len = b.cap - zs.avail_out;
        if (zrc == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            if (inflateReset(&zs) != Z_OK) { /* another gzip member follows */
                rc = RECORD_ERR_CORRUPT;
                break;
            }
        } else if (zrc == Z_BUF_ERROR && zs.avail_in == 0) {
            rc = RECORD_ERR_CORRUPT; /* input ended inside the stream */
            break;
        } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = zrc == Z_MEM_ERROR ? RECORD_ERR_NOMEM : RECORD_ERR_CORRUPT;
            break;
        }
    }
    inflateEnd(&zs);
    return outbuf_finish(&b, rc, out, out_len);
}

static int gzip_compress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    z_stream zs = {0};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return RECORD_ERR_NOMEM;
    size_t cap = deflateBound(&zs, in_len) + 32;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&zs);
        return RECORD_ERR_NOMEM;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    int zrc = deflate(&zs, Z_FINISH);
    deflateEnd(&zs);
    if (zrc != Z_STREAM_END) {
        free(buf);
        return RECORD_ERR_CORRUPT;
    }
    *out = buf;
    *out_len = cap - zs.avail_out;
    return 0;
}

/* libsnappy loaded (base/dynlib.h), or RECORD_ERR_UNSUPPORTED_CODEC when it cannot be. */
static int snappy_ready(void)
{
    return dynlib_load(DYNLIB_SNAPPY, NULL, 0) == 0 ? 0 : RECORD_ERR_UNSUPPORTED_CODEC;
}

/* Appends one raw Snappy block's output to b, respecting the limit. */
static int snappy_block_append(struct outbuf *b, const uint8_t *in, size_t in_len)
{
    size_t n;
    if (DYNLIB(snappy_uncompressed_length)((const char *)in, in_len, &n) != SNAPPY_OK)
        return RECORD_ERR_CORRUPT;
    if (n > b->limit - b->len)
        return RECORD_ERR_TOO_LARGE;
    if (b->cap - b->len < n) {
        size_t cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n;
        if (cap > b->limit)
            cap = b->limit;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return RECORD_ERR_NOMEM;
        b->data = d;
        b->cap = cap;
    }
    size_t got = n;
    if (DYNLIB(snappy_uncompress)((const char *)in, in_len, (char *)b->data + b->len, &got) !=
            SNAPPY_OK ||
        got != n)
        return RECORD_ERR_CORRUPT;
    b->len += n;
    return 0;
}

static bool xerial_header_at(const uint8_t *p, size_t left)
{
    return left >= XERIAL_HEADER_SIZE && memcmp(p, XERIAL_MAGIC, 8) == 0;
}

int snappy_xerial_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                             size_t *out_len)
{
    int ready = snappy_ready();
    if (ready != 0)
        return ready;
    struct outbuf b;
    int rc = outbuf_init(&b, in_len * 2, max_out);
    size_t pos = 0;
    while (rc == 0 && pos < in_len) {
        if (xerial_header_at(in + pos, in_len - pos)) { /* first or concatenated stream */
            pos += XERIAL_HEADER_SIZE;
            continue;
        }
        if (in_len - pos < 4) {
            rc = RECORD_ERR_CORRUPT;
            break;
        }
        uint32_t blen = be32_load(in + pos);
        pos += 4;
        if (blen > in_len - pos) {
            rc = RECORD_ERR_CORRUPT;
            break;
        }
        rc = snappy_block_append(&b, in + pos, blen);
        pos += blen;
    }
    return outbuf_finish(&b, rc, out, out_len);
}

static int snappy_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                             size_t *out_len)
{
    if (xerial_header_at(in, in_len))
        return snappy_xerial_decompress(in, in_len, max_out, out, out_len);
    int ready = snappy_ready();
    if (ready != 0)
        return ready;
    struct outbuf b;
    int rc = outbuf_init(&b, 0, max_out);
    if (rc == 0)
        rc = snappy_block_append(&b, in, in_len);
    return outbuf_finish(&b, rc, out, out_len);
}

int snappy_raw_compress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    int ready = snappy_ready();
    if (ready != 0)
        return ready;
    size_t cap = DYNLIB(snappy_max_compressed_length)(in_len);
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf)
        return RECORD_ERR_NOMEM;
    if (DYNLIB(snappy_compress)((const char *)in, in_len, (char *)buf, &cap) != SNAPPY_OK) {
        free(buf);
        return RECORD_ERR_CORRUPT;
    }
    *out = buf;
    *out_len = cap;
    return 0;
}

/* Writes the xerial stream snappy-java's SnappyOutputStream produces: header, version 1,
 * compatible version 1, then 32 KiB blocks each prefixed by its compressed length. */
static int snappy_xerial_compress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    int ready = snappy_ready();
    if (ready != 0)
        return ready;
    size_t nblocks = in_len / XERIAL_BLOCK_SIZE + 1;
    size_t cap = XERIAL_HEADER_SIZE +
                 nblocks * (4 + DYNLIB(snappy_max_compressed_length)(XERIAL_BLOCK_SIZE));
    uint8_t *buf = malloc(cap);
    if (!buf)
        return RECORD_ERR_NOMEM;
    memcpy(buf, XERIAL_MAGIC, 8);
    be32_store(buf + 8, 1);
    be32_store(buf + 12, 1);
    size_t pos = XERIAL_HEADER_SIZE;
    for (size_t off = 0; off < in_len; off += XERIAL_BLOCK_SIZE) {
        size_t n = in_len - off < XERIAL_BLOCK_SIZE ? in_len - off : XERIAL_BLOCK_SIZE;
        size_t clen = cap - pos - 4;
        if (DYNLIB(snappy_compress)((const char *)in + off, n, (char *)buf + pos + 4, &clen) !=
            SNAPPY_OK) {
            free(buf);
            return RECORD_ERR_CORRUPT;
        }
        be32_store(buf + pos, (uint32_t)clen);
        pos += 4 + clen;
    }
    *out = buf;
    *out_len = pos;
    return 0;
}

static int lz4_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                          size_t *out_len)
{
    struct outbuf b;
    LZ4F_dctx *dctx;
    int rc = outbuf_init(&b, in_len * 4, max_out);
    if (rc < 0)
        return outbuf_finish(&b, rc, out, out_len);
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return outbuf_finish(&b, RECORD_ERR_NOMEM, out, out_len);
    size_t pos = 0;
    size_t hint = 1;
    while (hint != 0) {
        if ((rc = outbuf_grow(&b)) < 0)
            break;
        size_t dst = b.cap - b.len, src = in_len - pos;
        hint = LZ4F_decompress(dctx, b.data + b.len, &dst, in + pos, &src, NULL);
        if (LZ4F_isError(hint)) {
            rc = RECORD_ERR_CORRUPT;
            break;
        }
        b.len += dst;
        pos += src;
        if (hint != 0 && pos == in_len && dst == 0 && src == 0) {
            rc = RECORD_ERR_CORRUPT; /* frame not finished and no input left */
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    return outbuf_finish(&b, rc, out, out_len);
}

static int lz4_compress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    size_t cap = LZ4F_compressFrameBound(in_len, &prefs);
    uint8_t *buf = malloc(cap);
    if (!buf)
        return RECORD_ERR_NOMEM;
    size_t n = LZ4F_compressFrame(buf, cap, in, in_len, &prefs);
    if (LZ4F_isError(n)) {
        free(buf);
        return RECORD_ERR_CORRUPT;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

static int zstd_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                           size_t *out_len)
{
    struct outbuf b;
    int rc = outbuf_init(&b, in_len * 4, max_out);
    if (rc < 0)
        return outbuf_finish(&b, rc, out, out_len);
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds)
        return outbuf_finish(&b, RECORD_ERR_NOMEM, out, out_len);
    ZSTD_inBuffer ib = {in, in_len, 0};
    size_t zrc = 1;
    while (zrc != 0 || ib.pos < ib.size) {
        if ((rc = outbuf_grow(&b)) < 0)
            break;
        ZSTD_outBuffer ob = {b.data, b.cap, b.len};
        size_t before_in = ib.pos;
        zrc = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(zrc)) {
            rc = RECORD_ERR_CORRUPT;
            break;
        }
        bool progress = ob.pos != b.len || ib.pos != before_in;
        b.len = ob.pos;
        if (!progress && ib.pos == ib.size && b.len < b.cap) {
            rc = RECORD_ERR_CORRUPT; /* truncated frame */
            break;
        }
    }
    ZSTD_freeDStream(ds);
    return outbuf_finish(&b, rc, out, out_len);
}

static int zstd_compress(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(in_len);
    uint8_t *buf = malloc(cap);
    if (!buf)
        return RECORD_ERR_NOMEM;
    size_t n = ZSTD_compress(buf, cap, in, in_len, 3);
    if (ZSTD_isError(n)) {
        free(buf);
        return RECORD_ERR_CORRUPT;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

int record_decompress(int codec, const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                      size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    switch (codec) {
    case RECORD_COMPRESSION_GZIP:
        return gzip_decompress(in, in_len, max_out, out, out_len);
    case RECORD_COMPRESSION_SNAPPY:
        return snappy_decompress(in, in_len, max_out, out, out_len);
    case RECORD_COMPRESSION_LZ4:
        return lz4_decompress(in, in_len, max_out, out, out_len);
    case RECORD_COMPRESSION_ZSTD:
        return zstd_decompress(in, in_len, max_out, out, out_len);
    default:
        return RECORD_ERR_UNSUPPORTED_CODEC;
    }
}

int record_compress(int codec, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    switch (codec) {
    case RECORD_COMPRESSION_GZIP:
        return gzip_compress(in, in_len, out, out_len);
    case RECORD_COMPRESSION_SNAPPY:
        return snappy_xerial_compress(in, in_len, out, out_len);
    case RECORD_COMPRESSION_LZ4:
        return lz4_compress(in, in_len, out, out_len);
    case RECORD_COMPRESSION_ZSTD:
        return zstd_compress(in, in_len, out, out_len);
    default:
        return RECORD_ERR_UNSUPPORTED_CODEC;
    }
}
