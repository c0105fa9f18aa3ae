/*
 * __consumer_offsets record codec (see offsets_log.h). Keys and values are encoded with the
 * generated codecs into an iochain and flattened; batches are built with record_builder.
 */
#include "group/offsets_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/iochain.h"
#include "proto/gen/api_table.h"
#include "proto/gen/group_metadata_key.h"
#include "proto/gen/offset_commit_key.h"
#include "record/record_builder.h"

int32_t offsets_java_string_hash(const char *s, size_t len)
{
    uint32_t h = 0;
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    while (p < end) {
        uint32_t cp;
        int n;
        if (p[0] < 0x80) {
            cp = p[0];
            n = 1;
        } else if ((p[0] & 0xe0) == 0xc0 && end - p >= 2) {
            cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
            n = 2;
        } else if ((p[0] & 0xf0) == 0xe0 && end - p >= 3) {
            cp = ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
            n = 3;
        } else if ((p[0] & 0xf8) == 0xf0 && end - p >= 4) {
            cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
                 ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
            n = 4;
        } else {
            cp = 0xfffd; /* Java decodes invalid UTF-8 to U+FFFD */
            n = 1;
        }
        p += n;
        if (cp >= 0x10000) { /* a surrogate pair: two UTF-16 code units */
            cp -= 0x10000;
            h = h * 31u + (0xd800u + (cp >> 10));
            h = h * 31u + (0xdc00u + (cp & 0x3ff));
        } else {
            h = h * 31u + cp;
        }
    }
    return (int32_t)h;
}

int32_t offsets_partition_for(const char *group, size_t len, int32_t n)
{
    int32_t h = offsets_java_string_hash(group, len);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return n > 0 ? a % n : 0;
}

/* Encodes int16 version + the struct through enc into a malloc'ed buffer. */
int offsets_encode(int16_t prefix, int16_t version, kproto_encode_fn enc, const void *msg,
                   uint8_t **out, int32_t *out_len)
{
    struct iochain chain;
    iochain_init(&chain);
    struct kwriter w;
    kw_init(&w, &chain);
    uint16_t be = htobe16((uint16_t)prefix);
    if (iochain_append(&chain, &be, 2) != 0) {
        iochain_free(&chain);
        return -ENOMEM;
    }
    int rc = enc(&w, version, msg);
    if (rc == 0 && w.err != 0)
        rc = w.err;
    if (rc == 0 && chain.oom)
        rc = -ENOMEM;
    if (rc == 0) {
        *out = malloc(chain.total ? chain.total : 1);
        if (*out == NULL)
            rc = -ENOMEM;
        else {
            iochain_flatten(&chain, *out);
            *out_len = (int32_t)chain.total;
        }
    }
    iochain_free(&chain);
    return rc;
}

static struct kstr cstr(const char *s)
{
    return (struct kstr){s, (int32_t)strlen(s)};
}

int offsets_encode_commit(struct offsets_kv *kv, const char *group, const char *topic,
                          int32_t partition, const struct kmsg_offset_commit_value *v)
{
    memset(kv, 0, sizeof(*kv));
    kv->value_len = -1;
    struct kmsg_offset_commit_key k = {cstr(group), cstr(topic), partition};
    int rc = offsets_encode(1, 1, (kproto_encode_fn)kmsg_offset_commit_key_encode, &k, &kv->key,
                            &kv->key_len);
    if (rc == 0 && v != NULL)
        rc = offsets_encode(3, 3, (kproto_encode_fn)kmsg_offset_commit_value_encode, v, &kv->value,
                            &kv->value_len);
    if (rc != 0)
        offsets_kv_free(kv);
    return rc;
}

int offsets_encode_group(struct offsets_kv *kv, const char *group,
                         const struct kmsg_group_metadata_value *v)
{
    memset(kv, 0, sizeof(*kv));
    kv->value_len = -1;
    struct kmsg_group_metadata_key k = {cstr(group)};
    int rc = offsets_encode(2, 2, (kproto_encode_fn)kmsg_group_metadata_key_encode, &k, &kv->key,
                            &kv->key_len);
    if (rc == 0 && v != NULL)
        rc = offsets_encode(3, 3, (kproto_encode_fn)kmsg_group_metadata_value_encode, v, &kv->value,
                            &kv->value_len);
    if (rc != 0)
        offsets_kv_free(kv);
    return rc;
}

int offsets_encode_kv(struct offsets_kv *kv, int16_t key_type, kproto_encode_fn key_enc,
                      const void *key, int16_t value_version, kproto_encode_fn value_enc,
                      const void *value)
{
    memset(kv, 0, sizeof(*kv));
    kv->value_len = -1;
    int rc = offsets_encode(key_type, key_type, key_enc, key, &kv->key, &kv->key_len);
    if (rc == 0 && value != NULL)
        rc = offsets_encode(value_version, value_version, value_enc, value, &kv->value,
                            &kv->value_len);
    if (rc != 0)
        offsets_kv_free(kv);
    return rc;
}

void offsets_kv_free(struct offsets_kv *kv)
{
    free(kv->key);
    free(kv->value);
    kv->key = kv->value = NULL;
}

int offsets_build_batch(const struct offsets_kv *kvs, size_t n, int64_t now_ms, uint8_t **out,
                        size_t *out_len)
{
    struct record_builder b;
    record_builder_init(&b, 0);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = record_builder_add(&b, now_ms, kvs[i].key, kvs[i].key_len, kvs[i].value,
                                kvs[i].value_len, NULL, 0);
    if (rc == 0)
        rc = record_builder_finish(&b, out, out_len);
    record_builder_release(&b);
    return rc == 0 ? 0 : -ENOMEM;
}

static int16_t read_be16(const uint8_t *p)
{
    return (int16_t)(((uint16_t)p[0] << 8) | p[1]);
}

int offsets_decode_record(const uint8_t *key, int32_t key_len, const uint8_t *value,
                          int32_t value_len, struct arena *arena, struct offsets_record *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = OFFSETS_RECORD_OTHER;
    if (key == NULL || key_len < 2)
        return -EBADMSG;
    int16_t type = read_be16(key);
    struct kreader r;
    kr_init(&r, key + 2, (size_t)key_len - 2, arena);
    out->tombstone = value == NULL;
    if (type == 0 || type == 1) {
        struct kmsg_offset_commit_key k;
        if (kmsg_offset_commit_key_decode(&r, type, &k) != 0 || r.err != 0)
            return -EBADMSG;
        out->kind = OFFSETS_RECORD_COMMIT;
        out->group = k.group;
        out->topic = k.topic;
        out->partition = k.partition;
        if (value == NULL)
            return 0;
        if (value_len < 2)
            return -EBADMSG;
        int16_t ver = read_be16(value);
        kr_init(&r, value + 2, (size_t)value_len - 2, arena);
        kmsg_offset_commit_value_init(&out->commit);
        if (ver < 0 || ver > KMSG_OFFSET_COMMIT_VALUE_MAX_VERSION ||
            kmsg_offset_commit_value_decode(&r, ver, &out->commit) != 0 || r.err != 0)
            return -EBADMSG;
        if (ver < 3)
            out->commit.leader_epoch = -1;
        return 0;
    }
    if (type == 2) {
        struct kmsg_group_metadata_key k;
        if (kmsg_group_metadata_key_decode(&r, 2, &k) != 0 || r.err != 0)
            return -EBADMSG;
        out->kind = OFFSETS_RECORD_GROUP;
        out->group = k.group;
        if (value == NULL)
            return 0;
        if (value_len < 2)
            return -EBADMSG;
        int16_t ver = read_be16(value);
        kr_init(&r, value + 2, (size_t)value_len - 2, arena);
        kmsg_group_metadata_value_init(&out->group_value);
        if (ver < 0 || ver > KMSG_GROUP_METADATA_VALUE_MAX_VERSION ||
            kmsg_group_metadata_value_decode(&r, ver, &out->group_value) != 0 || r.err != 0)
            return -EBADMSG;
        return 0;
    }
    if (type >= 3 && type <= 8) {
        /* KIP-848 consumer group records: the key here, the value in consumer_records.c. Keys
         * 3, 4 and 6 hold the group id alone, 5, 7 and 8 the group and member ids. */
        bool with_member = type == 5 || type == 7 || type == 8;
        out->group = kr_string(&r, false, false);
        if (with_member)
            out->member_id = kr_string(&r, false, false);
        if (r.err != 0)
            return -EBADMSG;
        out->kind = OFFSETS_RECORD_CONSUMER;
        out->key_type = type;
        if (value == NULL)
            return 0;
        if (value_len < 2)
            return -EBADMSG;
        out->value_version = read_be16(value);
        out->value = value + 2;
        out->value_len = value_len - 2;
        return 0;
    }
    return 0; /* share group records: not ours to interpret */
}
