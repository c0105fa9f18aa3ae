/* Transaction marker records; see control_record.h for the layout. */
#include "record/control_record.h"

#include "record/byteorder.h"
#include "record/record_batch.h"
#include "record/record_builder.h"
#include "record/varint.h"

int control_marker_parse(const uint8_t *p, size_t len, struct control_marker *out)
{
    const uint8_t *end = p + len;
    int32_t rec_len, off_delta, key_len, value_len;
    int64_t ts_delta;
    size_t n;
    if ((n = varint_read(p, end, &rec_len)) == 0)
        return RECORD_ERR_CORRUPT;
    p += n;
    if (p >= end)
        return RECORD_ERR_CORRUPT;
    p++; /* record attributes */
    if ((n = varlong_read(p, end, &ts_delta)) == 0)
        return RECORD_ERR_CORRUPT;
    p += n;
    if ((n = varint_read(p, end, &off_delta)) == 0)
        return RECORD_ERR_CORRUPT;
    p += n;
    if ((n = varint_read(p, end, &key_len)) == 0 || key_len < 4 || end - (p + n) < key_len)
        return RECORD_ERR_CORRUPT;
    p += n;
    out->type = (int16_t)be16_load(p + 2);
    p += key_len;
    out->coordinator_epoch = -1;
    if ((n = varint_read(p, end, &value_len)) != 0 && value_len >= 6 && end - (p + n) >= value_len)
        out->coordinator_epoch = (int32_t)be32_load(p + n + 2);
    return 0;
}

int control_marker_build(int64_t pid, int16_t epoch, const struct control_marker *m, int64_t now_ms,
                         uint8_t **out, size_t *out_len)
{
    uint8_t key[4], value[6];
    be16_store(key, 0);
    be16_store(key + 2, (uint16_t)m->type);
    be16_store(value, 0);
    be32_store(value + 2, (uint32_t)m->coordinator_epoch);
    struct record_builder b;
    record_builder_init(&b, RECORD_COMPRESSION_NONE);
    b.attributes = RECORD_ATTR_TRANSACTIONAL | RECORD_ATTR_CONTROL;
    b.producer_id = pid;
    b.producer_epoch = epoch;
    b.base_sequence = -1;
    int rc = record_builder_add(&b, now_ms, key, sizeof(key), value, sizeof(value), NULL, 0);
    if (rc == 0)
        rc = record_builder_finish(&b, out, out_len);
    record_builder_release(&b);
    return rc;
}
