/*
 * Encoder and decoder for metadata record batches (format in records.h).
 *
 * Invariants: the decoder never reads past `len`; every length or count is checked against
 * the bytes left before anything is allocated for it, so a hostile length cannot make it
 * allocate more than a small multiple of the input size. Decoded memory comes from a per-batch
 * arena (base/arena.h) freed in one go.
 */
#include "cluster/records.h"

#include "base/arena.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_VERSION 1

/* ---------- output ---------- */

static void buf_reserve(struct metadata_buf *b, size_t extra)
{
    if (b->failed || b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return;
    }
    b->data = p;
    b->cap = cap;
}

static void put_bytes(struct metadata_buf *b, const void *src, size_t n)
{
    buf_reserve(b, n);
    if (b->failed)
        return;
    if (n)
        memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_u8(struct metadata_buf *b, uint8_t v)
{
    put_bytes(b, &v, 1);
}

static void put_be(struct metadata_buf *b, uint64_t v, int width)
{
    uint8_t tmp[8];
    for (int i = 0; i < width; i++)
        tmp[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    put_bytes(b, tmp, (size_t)width);
}

static size_t uvarint_encode(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void put_uvarint(struct metadata_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    put_bytes(b, tmp, uvarint_encode(tmp, v));
}

static void put_string(struct metadata_buf *b, const char *s)
{
    size_t n = strlen(s);
    put_uvarint(b, n);
    put_bytes(b, s, n);
}

static void put_opt_string(struct metadata_buf *b, const char *s)
{
    if (s == NULL) {
        put_uvarint(b, 0);
        return;
    }
    size_t n = strlen(s);
    put_uvarint(b, n + 1);
    put_bytes(b, s, n);
}

static void put_int_array(struct metadata_buf *b, const int32_t *v, uint32_t n)
{
    put_uvarint(b, n);
    for (uint32_t i = 0; i < n; i++)
        put_be(b, (uint32_t)v[i], 4);
}

static void put_blob(struct metadata_buf *b, const uint8_t *v, uint32_t n)
{
    put_uvarint(b, n);
    put_bytes(b, v, n);
}

void metadata_buf_free(struct metadata_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---------- record bodies ---------- */

static void encode_configs(struct metadata_buf *b, const struct metadata_config_entry *e,
                           uint32_t n)
{
    put_uvarint(b, n);
    for (uint32_t i = 0; i < n; i++) {
        put_string(b, e[i].name);
        put_opt_string(b, e[i].value);
    }
}

static void encode_client_quota(struct metadata_buf *b, const struct metadata_rec_client_quota *q)
{
    put_u8(b, (uint8_t)((q->entity & 3u) | (q->remove ? 4u : 0u)));
    if (q->entity & METADATA_QUOTA_USER)
        put_opt_string(b, q->user);
    if (q->entity & METADATA_QUOTA_CLIENT_ID)
        put_opt_string(b, q->client_id);
    put_string(b, q->key);
    uint64_t bits;
    memcpy(&bits, &q->value, sizeof(bits));
    put_be(b, bits, 8);
}

static void encode_scram(struct metadata_buf *b, const struct metadata_rec_scram_credential *c)
{
    put_string(b, c->name);
    put_u8(b, c->mechanism);
    put_u8(b, c->remove);
    if (c->remove)
        return;
    put_be(b, (uint32_t)c->iterations, 4);
    put_blob(b, c->salt, c->salt_len);
    put_blob(b, c->stored_key, c->key_len);
    put_blob(b, c->server_key, c->key_len);
}

static void encode_acl(struct metadata_buf *b, const struct metadata_rec_acl *a)
{
    put_bytes(b, a->id, METADATA_UUID_LEN);
    put_u8(b, a->remove);
    if (a->remove)
        return;
    put_u8(b, (uint8_t)a->binding.resource_type);
    put_u8(b, (uint8_t)a->binding.pattern_type);
    put_u8(b, (uint8_t)a->binding.operation);
    put_u8(b, (uint8_t)a->binding.permission);
    put_string(b, a->binding.resource_name);
    put_string(b, a->binding.principal);
    put_string(b, a->binding.host);
}

static int encode_body(struct metadata_buf *b, const struct metadata_record *r)
{
    switch (r->type) {
    case METADATA_REC_REGISTER_BROKER:
        put_be(b, (uint32_t)r->broker.broker_id, 4);
        put_be(b, (uint32_t)r->broker.port, 4);
        put_string(b, r->broker.host);
        put_opt_string(b, r->broker.rack);
        return 0;
    case METADATA_REC_BROKER_REGISTRATION:
        put_be(b, (uint32_t)r->broker.broker_id, 4);
        put_be(b, (uint32_t)r->broker.port, 4);
        put_string(b, r->broker.host);
        put_opt_string(b, r->broker.rack);
        put_be(b, (uint64_t)r->broker.epoch, 8);
        put_bytes(b, r->broker.incarnation, METADATA_UUID_LEN);
        put_u8(b, r->broker.fenced);
        return 0;
    case METADATA_REC_CONTROLLER_REGISTRATION:
    case METADATA_REC_OBSERVER_REGISTRATION:
        put_be(b, (uint32_t)r->endpoint.node_id, 4);
        put_be(b, (uint32_t)r->endpoint.port, 4);
        put_string(b, r->endpoint.host);
        return 0;
    case METADATA_REC_BROKER_FENCE:
        put_be(b, (uint32_t)r->broker_fence.broker_id, 4);
        put_be(b, (uint64_t)r->broker_fence.epoch, 8);
        put_u8(b, r->broker_fence.state);
        return 0;
    case METADATA_REC_REASSIGNMENT:
        put_bytes(b, r->reassignment.topic_id, METADATA_UUID_LEN);
        put_be(b, (uint32_t)r->reassignment.partition, 4);
        put_int_array(b, r->reassignment.replicas, r->reassignment.n_replicas);
        put_int_array(b, r->reassignment.adding, r->reassignment.n_adding);
        put_int_array(b, r->reassignment.removing, r->reassignment.n_removing);
        return 0;
    case METADATA_REC_TOPIC:
        put_string(b, r->topic.name);
        put_bytes(b, r->topic.topic_id, METADATA_UUID_LEN);
        encode_configs(b, r->topic.configs, r->topic.n_configs);
        return 0;
    case METADATA_REC_PARTITION:
        put_bytes(b, r->partition.topic_id, METADATA_UUID_LEN);
        put_be(b, (uint32_t)r->partition.partition, 4);
        put_be(b, (uint32_t)r->partition.leader, 4);
        put_be(b, (uint32_t)r->partition.leader_epoch, 4);
        put_be(b, (uint32_t)r->partition.partition_epoch, 4);
        put_int_array(b, r->partition.replicas, r->partition.n_replicas);
        put_int_array(b, r->partition.isr, r->partition.n_isr);
        return 0;
    case METADATA_REC_PARTITION_CHANGE: {
        const struct metadata_rec_partition_change *c = &r->partition_change;
        put_bytes(b, c->topic_id, METADATA_UUID_LEN);
        put_be(b, (uint32_t)c->partition, 4);
        put_u8(b, (uint8_t)((c->has_leader ? 1 : 0) | (c->has_isr ? 2 : 0) |
                            (c->has_replicas ? 4 : 0)));
        if (c->has_leader)
            put_be(b, (uint32_t)c->leader, 4);
        if (c->has_isr)
            put_int_array(b, c->isr, c->n_isr);
        if (c->has_replicas)
            put_int_array(b, c->replicas, c->n_replicas);
        return 0;
    }
    case METADATA_REC_REMOVE_TOPIC:
        put_bytes(b, r->remove_topic.topic_id, METADATA_UUID_LEN);
        return 0;
    case METADATA_REC_CONFIG:
        put_bytes(b, r->config.topic_id, METADATA_UUID_LEN);
        encode_configs(b, r->config.ops, r->config.n_ops);
        return 0;
    case METADATA_REC_BROKER_CONFIG:
        put_be(b, (uint32_t)r->broker_config.broker_id, 4);
        encode_configs(b, r->broker_config.ops, r->broker_config.n_ops);
        return 0;
    case METADATA_REC_PRODUCER_IDS:
        put_be(b, (uint32_t)r->producer_ids.broker_id, 4);
        put_be(b, (uint64_t)r->producer_ids.next_block_start, 8);
        return 0;
    case METADATA_REC_IMAGE_HEADER:
        put_be(b, r->image_header.version, 8);
        return 0;
    case METADATA_REC_CLIENT_QUOTA:
        encode_client_quota(b, &r->client_quota);
        return 0;
    case METADATA_REC_SCRAM_CREDENTIAL:
        encode_scram(b, &r->scram);
        return 0;
    case METADATA_REC_ACL:
        encode_acl(b, &r->acl);
        return 0;
    }
    return -EINVAL;
}

void metadata_batch_begin(struct metadata_buf *b)
{
    put_u8(b, METADATA_BATCH_MAGIC);
    put_u8(b, METADATA_BATCH_FORMAT);
    put_be(b, 0, 4);
}

/*
 * Appends type, version, length and body. The body is encoded in place first and then moved
 * right by the size of its length prefix, which is only known afterwards.
 */
int metadata_batch_append(struct metadata_buf *b, const struct metadata_record *rec)
{
    put_u8(b, (uint8_t)rec->type);
    put_u8(b, RECORD_VERSION);
    size_t body_start = b->len;
    int rc = encode_body(b, rec);
    if (rc != 0)
        return rc;
    if (b->failed)
        return -ENOMEM;
    size_t body_len = b->len - body_start;
    uint8_t prefix[10];
    size_t plen = uvarint_encode(prefix, body_len);
    buf_reserve(b, plen);
    if (b->failed)
        return -ENOMEM;
    memmove(b->data + body_start + plen, b->data + body_start, body_len);
    memcpy(b->data + body_start, prefix, plen);
    b->len += plen;
    /* Count lives at bytes 2..5; patch it now so a batch is always well-formed. */
    uint32_t count = ((uint32_t)b->data[2] << 24) | ((uint32_t)b->data[3] << 16) |
                     ((uint32_t)b->data[4] << 8) | b->data[5];
    count++;
    for (int i = 0; i < 4; i++)
        b->data[2 + i] = (uint8_t)(count >> (8 * (3 - i)));
    return 0;
}

int metadata_batch_finish(struct metadata_buf *b)
{
    return b->failed ? -ENOMEM : 0;
}

/* ---------- input ---------- */

struct reader {
    const uint8_t *p;
    size_t left;
    int err; /* 0, -EBADMSG or -ENOMEM; sticky */
    struct arena *arena;
};

static bool take(struct reader *r, void *dst, size_t n)
{
    if (r->err)
        return false;
    if (n > r->left) {
        r->err = -EBADMSG;
        return false;
    }
    if (dst && n)
        memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}

static uint64_t get_be(struct reader *r, int width)
{
    uint8_t tmp[8];
    if (!take(r, tmp, (size_t)width))
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v = (v << 8) | tmp[i];
    return v;
}

static int32_t get_i32(struct reader *r)
{
    return (int32_t)(uint32_t)get_be(r, 4);
}

static uint64_t get_uvarint(struct reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t byte;
        if (!take(r, &byte, 1))
            return 0;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return v;
    }
    r->err = -EBADMSG;
    return 0;
}

static void *reader_alloc(struct reader *r, size_t n)
{
    if (r->err)
        return NULL;
    void *p = arena_calloc(r->arena, n ? n : 1, 1);
    if (p == NULL)
        r->err = -ENOMEM;
    return p;
}

static char *get_string_n(struct reader *r, uint64_t n)
{
    if (r->err)
        return NULL;
    if (n > r->left) {
        r->err = -EBADMSG;
        return NULL;
    }
    if (memchr(r->p, 0, n) != NULL) {
        r->err = -EBADMSG;
        return NULL;
    }
    char *s = reader_alloc(r, n + 1);
    if (s == NULL)
        return NULL;
    take(r, s, n);
    s[n] = 0;
    return s;
}

static char *get_string(struct reader *r)
{
    return get_string_n(r, get_uvarint(r));
}

static char *get_opt_string(struct reader *r)
{
    uint64_t n = get_uvarint(r);
    if (n == 0 || r->err)
        return NULL;
    return get_string_n(r, n - 1);
}

/* Checks a count against the bytes left, given each element needs at least `min` bytes. */
static bool count_fits(struct reader *r, uint64_t n, size_t min)
{
    if (r->err)
        return false;
    if (n > UINT32_MAX || n > r->left / min) {
        r->err = -EBADMSG;
        return false;
    }
    return true;
}

static int32_t *get_int_array(struct reader *r, uint32_t *n_out)
{
    uint64_t n = get_uvarint(r);
    *n_out = 0;
    if (!count_fits(r, n, 4))
        return NULL;
    int32_t *v = reader_alloc(r, n * sizeof(int32_t));
    if (v == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++)
        v[i] = get_i32(r);
    *n_out = (uint32_t)n;
    return v;
}

static struct metadata_config_entry *get_configs(struct reader *r, uint32_t *n_out, bool allow_null)
{
    uint64_t n = get_uvarint(r);
    *n_out = 0;
    if (!count_fits(r, n, 2))
        return NULL;
    struct metadata_config_entry *e = reader_alloc(r, n * sizeof(*e));
    if (e == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        e[i].name = get_string(r);
        e[i].value = get_opt_string(r);
        if (!r->err && (e[i].name[0] == 0 || (!allow_null && e[i].value == NULL)))
            r->err = -EBADMSG;
    }
    *n_out = (uint32_t)n;
    return r->err ? NULL : e;
}

static void decode_partition_change(struct reader *r, struct metadata_rec_partition_change *c)
{
    take(r, c->topic_id, METADATA_UUID_LEN);
    c->partition = get_i32(r);
    uint8_t flags = 0;
    take(r, &flags, 1);
    if (flags & ~7u)
        r->err = r->err ? r->err : -EBADMSG;
    c->has_leader = flags & 1;
    c->has_isr = (flags >> 1) & 1;
    c->has_replicas = (flags >> 2) & 1;
    if (c->has_leader)
        c->leader = get_i32(r);
    if (c->has_isr)
        c->isr = get_int_array(r, &c->n_isr);
    if (c->has_replicas)
        c->replicas = get_int_array(r, &c->n_replicas);
}

/* Rejects unknown flag bits, an entity naming no type, and an empty key. */
static void decode_client_quota(struct reader *r, struct metadata_rec_client_quota *q)
{
    uint8_t flags = 0;
    take(r, &flags, 1);
    if (!r->err && ((flags & ~7u) || (flags & 3u) == 0))
        r->err = -EBADMSG;
    q->entity = flags & 3u;
    q->remove = (flags >> 2) & 1u;
    if (q->entity & METADATA_QUOTA_USER)
        q->user = get_opt_string(r);
    if (q->entity & METADATA_QUOTA_CLIENT_ID)
        q->client_id = get_opt_string(r);
    q->key = get_string(r);
    uint64_t bits = get_be(r, 8);
    memcpy(&q->value, &bits, sizeof(bits));
    if (!r->err && q->key[0] == 0)
        r->err = -EBADMSG;
}

/* A uvarint-prefixed byte string of at most max bytes; *n_out its length. */
static uint8_t *get_blob(struct reader *r, uint32_t *n_out, size_t max)
{
    uint64_t n = get_uvarint(r);
    *n_out = 0;
    if (!r->err && (n > max || n > r->left))
        r->err = -EBADMSG;
    uint8_t *v = reader_alloc(r, (size_t)n);
    if (v == NULL || !take(r, v, (size_t)n))
        return NULL;
    *n_out = (uint32_t)n;
    return v;
}

/* Rejects what no validator writes: unknown mechanism, empty name or salt, wrong key size. */
static void decode_scram(struct reader *r, struct metadata_rec_scram_credential *c)
{
    c->name = get_string(r);
    take(r, &c->mechanism, 1);
    take(r, &c->remove, 1);
    if (!r->err && (c->name[0] == 0 || c->remove > 1 || c->mechanism < METADATA_SCRAM_SHA_256 ||
                    c->mechanism > METADATA_SCRAM_SHA_512))
        r->err = -EBADMSG;
    if (r->err || c->remove)
        return;
    c->iterations = get_i32(r);
    c->salt = get_blob(r, &c->salt_len, METADATA_SCRAM_SALT_MAX);
    uint32_t want = c->mechanism == METADATA_SCRAM_SHA_512 ? 64 : 32, server_len = 0;
    c->stored_key = get_blob(r, &c->key_len, METADATA_SCRAM_KEY_MAX);
    c->server_key = get_blob(r, &server_len, METADATA_SCRAM_KEY_MAX);
    if (!r->err &&
        (c->iterations <= 0 || c->salt_len == 0 || c->key_len != want || server_len != want))
        r->err = -EBADMSG;
}

/* A stored binding is always complete: a removal carries only the id. */
static void decode_acl(struct reader *r, struct metadata_rec_acl *a)
{
    take(r, a->id, METADATA_UUID_LEN);
    take(r, &a->remove, 1);
    if (r->err || a->remove > 1) {
        r->err = r->err ? r->err : -EBADMSG;
        return;
    }
    if (a->remove)
        return;
    int8_t codes[4] = {0};
    take(r, codes, 4);
    a->binding.resource_type = codes[0];
    a->binding.pattern_type = codes[1];
    a->binding.operation = codes[2];
    a->binding.permission = codes[3];
    a->binding.resource_name = get_string(r);
    a->binding.principal = get_string(r);
    a->binding.host = get_string(r);
    char msg[64];
    if (!r->err && acl_binding_check(&a->binding, msg, sizeof(msg)) != 0)
        r->err = -EBADMSG;
}

static void decode_body(struct reader *r, struct metadata_record *rec)
{
    switch (rec->type) {
    case METADATA_REC_REGISTER_BROKER:
        rec->broker.broker_id = get_i32(r);
        rec->broker.port = get_i32(r);
        rec->broker.host = get_string(r);
        rec->broker.rack = get_opt_string(r);
        return;
    case METADATA_REC_BROKER_REGISTRATION:
        rec->broker.broker_id = get_i32(r);
        rec->broker.port = get_i32(r);
        rec->broker.host = get_string(r);
        rec->broker.rack = get_opt_string(r);
        rec->broker.epoch = (int64_t)get_be(r, 8);
        take(r, rec->broker.incarnation, METADATA_UUID_LEN);
        take(r, &rec->broker.fenced, 1);
        if (!r->err && rec->broker.fenced > 1)
            r->err = -EBADMSG;
        return;
    case METADATA_REC_CONTROLLER_REGISTRATION:
    case METADATA_REC_OBSERVER_REGISTRATION:
        rec->endpoint.node_id = get_i32(r);
        rec->endpoint.port = get_i32(r);
        rec->endpoint.host = get_string(r);
        return;
    case METADATA_REC_BROKER_FENCE:
        rec->broker_fence.broker_id = get_i32(r);
        rec->broker_fence.epoch = (int64_t)get_be(r, 8);
        take(r, &rec->broker_fence.state, 1);
        if (!r->err && rec->broker_fence.state > METADATA_BROKER_SHUTTING_DOWN)
            r->err = -EBADMSG;
        return;
    case METADATA_REC_REASSIGNMENT:
        take(r, rec->reassignment.topic_id, METADATA_UUID_LEN);
        rec->reassignment.partition = get_i32(r);
        rec->reassignment.replicas = get_int_array(r, &rec->reassignment.n_replicas);
        rec->reassignment.adding = get_int_array(r, &rec->reassignment.n_adding);
        rec->reassignment.removing = get_int_array(r, &rec->reassignment.n_removing);
        return;
    case METADATA_REC_TOPIC:
        rec->topic.name = get_string(r);
        take(r, rec->topic.topic_id, METADATA_UUID_LEN);
        rec->topic.configs = get_configs(r, &rec->topic.n_configs, false);
        if (!r->err && rec->topic.name[0] == 0)
            r->err = -EBADMSG;
        return;
    case METADATA_REC_PARTITION: {
        struct metadata_rec_partition *p = &rec->partition;
        take(r, p->topic_id, METADATA_UUID_LEN);
        p->partition = get_i32(r);
        p->leader = get_i32(r);
        p->leader_epoch = get_i32(r);
        p->partition_epoch = get_i32(r);
        p->replicas = get_int_array(r, &p->n_replicas);
        p->isr = get_int_array(r, &p->n_isr);
        return;
    }
    case METADATA_REC_PARTITION_CHANGE:
        decode_partition_change(r, &rec->partition_change);
        return;
    case METADATA_REC_REMOVE_TOPIC:
        take(r, rec->remove_topic.topic_id, METADATA_UUID_LEN);
        return;
    case METADATA_REC_CONFIG:
        take(r, rec->config.topic_id, METADATA_UUID_LEN);
        rec->config.ops = get_configs(r, &rec->config.n_ops, true);
        return;
    case METADATA_REC_BROKER_CONFIG:
        rec->broker_config.broker_id = get_i32(r);
        rec->broker_config.ops = get_configs(r, &rec->broker_config.n_ops, true);
        return;
    case METADATA_REC_PRODUCER_IDS:
        rec->producer_ids.broker_id = get_i32(r);
        rec->producer_ids.next_block_start = (int64_t)get_be(r, 8);
        return;
    case METADATA_REC_IMAGE_HEADER:
        rec->image_header.version = get_be(r, 8);
        return;
    case METADATA_REC_CLIENT_QUOTA:
        decode_client_quota(r, &rec->client_quota);
        return;
    case METADATA_REC_SCRAM_CREDENTIAL:
        decode_scram(r, &rec->scram);
        return;
    case METADATA_REC_ACL:
        decode_acl(r, &rec->acl);
        return;
    }
    r->err = -EBADMSG;
}

/* Decodes one record; its body must be consumed exactly. */
static void decode_record(struct reader *r, struct metadata_record *rec)
{
    uint8_t type = 0, version = 0;
    take(r, &type, 1);
    take(r, &version, 1);
    uint64_t body_len = get_uvarint(r);
    if (r->err)
        return;
    if (type == 0 || type > METADATA_REC_TYPE_MAX || version != RECORD_VERSION ||
        body_len > r->left) {
        r->err = -EBADMSG;
        return;
    }
    struct reader body = {.p = r->p, .left = (size_t)body_len, .arena = r->arena};
    rec->type = (enum metadata_record_type)type;
    decode_body(&body, rec);
    if (body.err == 0 && body.left != 0)
        body.err = -EBADMSG;
    if (body.err) {
        r->err = body.err;
        return;
    }
    take(r, NULL, (size_t)body_len);
}

static int batch_decode(const uint8_t *data, size_t len, size_t max_padding,
                        struct metadata_batch *out)
{
    memset(out, 0, sizeof(*out));
    out->arena = malloc(sizeof(struct arena));
    if (out->arena == NULL)
        return -ENOMEM;
    arena_init(out->arena, len + 1024);
    struct reader r = {.p = data, .left = len, .arena = out->arena};
    uint8_t magic = 0, format = 0;
    take(&r, &magic, 1);
    take(&r, &format, 1);
    uint64_t count = get_be(&r, 4);
    if (!r.err && (magic != METADATA_BATCH_MAGIC || format != METADATA_BATCH_FORMAT))
        r.err = -EBADMSG;
    /* Every record is at least 3 bytes: type, version, zero length. */
    if (count_fits(&r, count, 3) && count > 0)
        out->records = reader_alloc(&r, count * sizeof(struct metadata_record));
    for (uint64_t i = 0; i < count && !r.err; i++)
        decode_record(&r, &out->records[i]);
    if (!r.err && r.left > max_padding)
        r.err = -EBADMSG;
    for (size_t i = 0; !r.err && i < r.left; i++)
        if (r.p[i] != 0)
            r.err = -EBADMSG;
    if (r.err) {
        metadata_batch_free(out);
        return r.err;
    }
    out->n_records = (size_t)count;
    return 0;
}

int metadata_batch_decode(const uint8_t *data, size_t len, struct metadata_batch *out)
{
    return batch_decode(data, len, 0, out);
}

int metadata_batch_decode_padded(const uint8_t *data, size_t len, struct metadata_batch *out)
{
    return batch_decode(data, len, 7, out);
}

void metadata_batch_free(struct metadata_batch *batch)
{
    if (batch->arena) {
        arena_free(batch->arena);
        free(batch->arena);
    }
    memset(batch, 0, sizeof(*batch));
}

const char *metadata_record_type_name(enum metadata_record_type type)
{
    switch (type) {
    case METADATA_REC_REGISTER_BROKER:
        return "RegisterBroker";
    case METADATA_REC_TOPIC:
        return "Topic";
    case METADATA_REC_PARTITION:
        return "Partition";
    case METADATA_REC_PARTITION_CHANGE:
        return "PartitionChange";
    case METADATA_REC_REMOVE_TOPIC:
        return "RemoveTopic";
    case METADATA_REC_CONFIG:
        return "ConfigChange";
    case METADATA_REC_PRODUCER_IDS:
        return "ProducerIds";
    case METADATA_REC_IMAGE_HEADER:
        return "ImageHeader";
    case METADATA_REC_BROKER_REGISTRATION:
        return "BrokerRegistration";
    case METADATA_REC_BROKER_FENCE:
        return "BrokerFence";
    case METADATA_REC_REASSIGNMENT:
        return "Reassignment";
    case METADATA_REC_BROKER_CONFIG:
        return "BrokerConfig";
    case METADATA_REC_CONTROLLER_REGISTRATION:
        return "ControllerRegistration";
    case METADATA_REC_OBSERVER_REGISTRATION:
        return "ObserverRegistration";
    case METADATA_REC_CLIENT_QUOTA:
        return "ClientQuota";
    case METADATA_REC_SCRAM_CREDENTIAL:
        return "UserScramCredential";
    case METADATA_REC_ACL:
        return "AccessControlEntry";
    }
    return "Unknown";
}
