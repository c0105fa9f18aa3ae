/*
 * Fuzz target: a whole request frame payload (what follows the int32 size on the wire) goes
 * through what broker_dispatch() does before a handler runs: request header decode, API lookup
 * in kproto_apis, version range check, and the generated body decoder for that key and
 * version, all in a per-request arena.
 *
 * Properties checked beyond "no crash, no sanitizer report":
 *   - the arena stays within a bounded multiple of the frame size (codec.h promises lengths
 *     and counts are checked against the bytes left before allocating);
 *   - a body that decodes re-encodes without error, and decoding that encoding and encoding
 *     again gives the same bytes (encode . decode is idempotent), for every API and version.
 *
 * With FUZZ_WRITE_SEEDS=DIR in the environment, the binary first writes one seed per API key and
 * version (header + default-initialised body) into DIR and exits: run.sh uses that to start
 * every API version with a well-formed frame.
 */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "base/arena.h"
#include "base/iochain.h"
#include "fuzz_common.h"
#include "proto/codec.h"
#include "proto/gen/api_table.h"
#include "proto/header.h"

/* Encodes msg; returns a malloc'ed flat copy (NULL + *err on failure). */
static uint8_t *encode_flat(const struct kproto_codec *codec, int16_t version, const void *msg,
                            size_t *len, int *err)
{
    struct iochain c;
    struct kwriter w;
    iochain_init(&c);
    kw_init(&w, &c);
    *err = codec->encode(&w, version, msg);
    if (*err == 0 && w.err != 0)
        *err = w.err;
    uint8_t *out = NULL;
    if (*err == 0) {
        out = malloc(c.total + 1);
        if (out == NULL || iochain_flatten(&c, out) != 0) {
            free(out);
            out = NULL;
            *err = -12;
        }
        *len = c.total;
    }
    iochain_free(&c);
    return out;
}

static void write_seeds(const char *dir)
{
    mkdir(dir, 0755);
    int written = 0;
    for (int i = 0; i < kproto_api_count; i++) {
        const struct kproto_api *api = &kproto_apis[i];
        for (int v = api->min_version; v <= api->max_version; v++) {
            struct arena a;
            arena_init(&a, 0);
            void *msg = arena_calloc(&a, 1, api->request.size);
            api->request.init(msg);
            struct iochain c;
            struct kwriter w;
            iochain_init(&c);
            kw_init(&w, &c);
            struct kproto_request_header h = {
                .api_key = api->key,
                .api_version = (int16_t)v,
                .correlation_id = 7,
                .client_id = KSTR_LIT("fuzz"),
                .header_version = (int16_t)kproto_request_header_version(api->key, (int16_t)v),
            };
            kproto_request_header_encode(&w, &h);
            api->request.encode(&w, (int16_t)v, msg);
            if (w.err == 0) {
                uint8_t *buf = malloc(c.total + 1);
                if (buf && iochain_flatten(&c, buf) == 0) {
                    char path[4096];
                    snprintf(path, sizeof(path), "%s/api%02d_v%02d", dir, api->key, v);
                    FILE *f = fopen(path, "wb");
                    if (f) {
                        fwrite(buf, 1, c.total, f);
                        fclose(f);
                        written++;
                    }
                }
                free(buf);
            }
            iochain_free(&c);
            arena_free(&a);
        }
    }
    fprintf(stderr, "wrote %d request seeds to %s\n", written, dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("FUZZ_WRITE_SEEDS");
    if (dir && *dir) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    kr_init(&r, data, size, &a);
    struct kproto_request_header h;
    if (kproto_request_header_decode(&r, &h) != 0 || r.err != 0)
        goto out;
    FUZZ_CHECK(r.p >= data && r.p <= data + size, "reader left the frame");
    const struct kproto_api *api = kproto_api_lookup(h.api_key);
    if (api == NULL || h.api_version < api->min_version || h.api_version > api->max_version)
        goto out;
    void *msg = arena_calloc(&a, 1, api->request.size);
    FUZZ_CHECK(msg != NULL, "arena_calloc of %zu failed", api->request.size);
    api->request.init(msg);
    int rc = api->request.decode(&r, h.api_version, msg);
    FUZZ_CHECK(a.total <= 64 * size + 256 * 1024,
               "%s v%d: arena grew to %zu bytes for a %zu-byte frame", api->name, h.api_version,
               a.total, size);
    if (rc != 0 || r.err != 0)
        goto out;

    size_t l1 = 0, l2 = 0;
    int err1, err2;
    uint8_t *e1 = encode_flat(&api->request, h.api_version, msg, &l1, &err1);
    FUZZ_CHECK(e1 != NULL, "%s v%d: decoded request does not re-encode (err %d)", api->name,
               h.api_version, err1);
    struct arena a2;
    arena_init(&a2, 0);
    void *msg2 = arena_calloc(&a2, 1, api->request.size);
    api->request.init(msg2);
    struct kreader r2;
    kr_init(&r2, e1, l1, &a2);
    rc = api->request.decode(&r2, h.api_version, msg2);
    FUZZ_CHECK(rc == 0 && r2.err == 0, "%s v%d: re-encoded request does not decode (%d/%d)",
               api->name, h.api_version, rc, r2.err);
    FUZZ_CHECK(kr_remaining(&r2) == 0, "%s v%d: %zu bytes left after decoding own encoding",
               api->name, h.api_version, kr_remaining(&r2));
    uint8_t *e2 = encode_flat(&api->request, h.api_version, msg2, &l2, &err2);
    FUZZ_CHECK(e2 != NULL, "%s v%d: second encode failed (%d)", api->name, h.api_version, err2);
    FUZZ_CHECK(l1 == l2 && memcmp(e1, e2, l1) == 0,
               "%s v%d: encode(decode(encode(decode(x)))) differs (%zu vs %zu bytes)", api->name,
               h.api_version, l1, l2);
    free(e1);
    free(e2);
    arena_free(&a2);
out:
    arena_free(&a);
    return 0;
}
