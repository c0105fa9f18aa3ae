/*
 * The records of __consumer_offsets in Kafka's own format (protocol notes, section 10):
 * key = int16 record type + key struct at that version, value = int16 version + value struct,
 * null value = tombstone. Offset commits use key type 1 and value version 3, group metadata key
 * type 2 and value version 3, as Kafka 3.9 writes them; replay reads every version Kafka wrote.
 * Consumer groups of KIP-848 use key types 3-8 with value version 0 (consumer_records.c).
 *
 * Pure functions, any thread. Buffers returned by the *_encode functions are malloc'ed and
 * owned by the caller.
 */
#ifndef GREGOR_GROUP_OFFSETS_LOG_H
#define GREGOR_GROUP_OFFSETS_LOG_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "proto/gen/api_table.h"
#include "proto/gen/group_metadata_value.h"
#include "proto/gen/offset_commit_value.h"

#define OFFSETS_TOPIC "__consumer_offsets"

/* Java's String.hashCode over the UTF-16 code units of the UTF-8 string s[0..len). */
int32_t offsets_java_string_hash(const char *s, size_t len);
/* abs(hash) % n, with abs(INT32_MIN) taken as 0: the __consumer_offsets partition of a group. */
int32_t offsets_partition_for(const char *group, size_t len, int32_t n);

/* One key/value pair to write; value NULL (value_len -1) = tombstone. */
struct offsets_kv {
    uint8_t *key;
    int32_t key_len;
    uint8_t *value;
    int32_t value_len;
};

/* Encodes an offset commit key (type 1) and, unless v is NULL, its value (version 3). 0 or
 * -ENOMEM; the pair's buffers are malloc'ed. */
int offsets_encode_commit(struct offsets_kv *kv, const char *group, const char *topic,
                          int32_t partition, const struct kmsg_offset_commit_value *v);
/* Encodes a group metadata key (type 2) and, unless v is NULL, its value (version 3). */
int offsets_encode_group(struct offsets_kv *kv, const char *group,
                         const struct kmsg_group_metadata_value *v);
/* Encodes msg at `version` behind a big-endian int16 `prefix` into a malloc'ed *out (the
 * framing of record keys and values, and of the consumer protocol's embedded messages). */
int offsets_encode(int16_t prefix, int16_t version, kproto_encode_fn enc, const void *msg,
                   uint8_t **out, int32_t *out_len);
/* Encodes key type `key_type` (the key struct at that version) through key_enc and, unless
 * value is NULL (a tombstone), value version `value_version` through value_enc. 0 or a
 * negative error (kv freed). */
int offsets_encode_kv(struct offsets_kv *kv, int16_t key_type, kproto_encode_fn key_enc,
                      const void *key, int16_t value_version, kproto_encode_fn value_enc,
                      const void *value);
void offsets_kv_free(struct offsets_kv *kv);

/* Builds one uncompressed magic-2 batch holding the pairs, timestamps = now_ms.
 * 0 and *out (malloc'ed) or a negative error. */
int offsets_build_batch(const struct offsets_kv *kvs, size_t n, int64_t now_ms, uint8_t **out,
                        size_t *out_len);

/* A decoded record of the topic. Strings point into the record or arena. */
enum offsets_record_kind {
    OFFSETS_RECORD_COMMIT,
    OFFSETS_RECORD_GROUP,
    OFFSETS_RECORD_CONSUMER, /* key types 3-8: a KIP-848 consumer group record */
    OFFSETS_RECORD_OTHER
};
struct offsets_record {
    enum offsets_record_kind kind;
    int16_t key_type;
    struct kstr group, topic;
    struct kstr member_id; /* kind CONSUMER, key types 5, 7, 8 */
    /* kind CONSUMER, not tombstone: the value's version and its bytes after the version */
    int16_t value_version;
    const uint8_t *value;
    int32_t value_len;
    int32_t partition;
    bool tombstone;
    struct kmsg_offset_commit_value commit;       /* kind COMMIT, not tombstone */
    struct kmsg_group_metadata_value group_value; /* kind GROUP, not tombstone */
};

/* Decodes one record's key and value. 0, or -EBADMSG for bytes that are not a valid record
 * of this topic (the caller skips it with a log line). */
int offsets_decode_record(const uint8_t *key, int32_t key_len, const uint8_t *value,
                          int32_t value_len, struct arena *arena, struct offsets_record *out);

#endif
