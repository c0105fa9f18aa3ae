/* __transaction_state record codec (see state_record.h), built on the generated codecs. */
#include "txn/state_record.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/iochain.h"
#include "proto/gen/api_table.h"
#include "proto/gen/transaction_log_key.h"
#include "record/record_builder.h"

const char *txn_status_name(int status)
{
    static const char *names[] = {"Empty",        "Ongoing",          "PrepareCommit",
                                  "PrepareAbort", "CompleteCommit",   "CompleteAbort",
                                  "Dead",         "PrepareEpochFence"};
    return status >= 0 && status < 8 ? names[status] : "Unknown";
}

/* int16 version + the struct through enc, into a malloc'ed buffer. */
static int encode_versioned(int16_t version, kproto_encode_fn enc, const void *msg, uint8_t **out,
                            int32_t *out_len)
{
    struct iochain chain;
    iochain_init(&chain);
    struct kwriter w;
    kw_init(&w, &chain);
    uint16_t be = htobe16((uint16_t)version);
    int rc = iochain_append(&chain, &be, 2) != 0 ? -ENOMEM : enc(&w, version, msg);
    if (rc == 0 && w.err != 0)
        rc = w.err;
    if (rc == 0 && chain.oom)
        rc = -ENOMEM;
    if (rc == 0 && (*out = malloc(chain.total ? chain.total : 1)) == NULL)
        rc = -ENOMEM;
    if (rc == 0) {
        iochain_flatten(&chain, *out);
        *out_len = (int32_t)chain.total;
    }
    iochain_free(&chain);
    return rc;
}

int16_t txn_state_value_version(const struct kmsg_transaction_log_value *v)
{
    return v->previous_producer_id != -1 || v->next_producer_id != -1 ||
                   v->client_transaction_version != 0
               ? 1
               : 0;
}

int txn_state_record_build(const char *id, const struct kmsg_transaction_log_value *v,
                           int64_t now_ms, uint8_t **out, size_t *out_len)
{
    struct kmsg_transaction_log_key k = {.transactional_id = {id, (int32_t)strlen(id)}};
    uint8_t *key = NULL, *value = NULL;
    int32_t key_len = 0, value_len = -1;
    int rc =
        encode_versioned(0, (kproto_encode_fn)kmsg_transaction_log_key_encode, &k, &key, &key_len);
    if (rc == 0 && v != NULL)
        rc = encode_versioned(txn_state_value_version(v),
                              (kproto_encode_fn)kmsg_transaction_log_value_encode, v, &value,
                              &value_len);
    if (rc == 0) {
        struct record_builder b;
        record_builder_init(&b, RECORD_COMPRESSION_NONE);
        rc = record_builder_add(&b, now_ms, key, key_len, value, value_len, NULL, 0);
        if (rc == 0)
            rc = record_builder_finish(&b, out, out_len);
        record_builder_release(&b);
    }
    free(key);
    free(value);
    return rc;
}

int txn_state_record_decode(const uint8_t *key, int32_t key_len, const uint8_t *value,
                            int32_t value_len, struct arena *arena, struct kstr *id,
                            struct kmsg_transaction_log_value *v, bool *tombstone)
{
    if (key == NULL || key_len < 2)
        return -EBADMSG;
    int16_t kver = (int16_t)((key[0] << 8) | key[1]);
    struct kreader r;
    kr_init(&r, key + 2, (size_t)key_len - 2, arena);
    struct kmsg_transaction_log_key k;
    if (kver < 0 || kver > 1 || kmsg_transaction_log_key_decode(&r, kver, &k) != 0 || r.err != 0)
        return -EBADMSG;
    *id = k.transactional_id;
    *tombstone = value == NULL;
    if (value == NULL)
        return 0;
    if (value_len < 2)
        return -EBADMSG;
    int16_t vver = (int16_t)((value[0] << 8) | value[1]);
    kr_init(&r, value + 2, (size_t)value_len - 2, arena);
    kmsg_transaction_log_value_init(v);
    if (vver < 0 || vver > KMSG_TRANSACTION_LOG_VALUE_MAX_VERSION ||
        kmsg_transaction_log_value_decode(&r, vver, v) != 0 || r.err != 0)
        return -EBADMSG;
    return 0;
}
