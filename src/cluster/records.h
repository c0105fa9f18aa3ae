/*
 * Metadata records: the commands stored in the cluster metadata raft log, and the
 * compact versioned binary encoding they travel in.
 *
 * One raft entry holds one record batch:
 *
 *   batch  := magic:u8 (0x47 'G') format:u8 (1) count:u32 record{count}
 *   record := type:u8 version:u8 body_len:uvarint body[body_len]
 *
 * Integers in bodies are fixed-width big-endian; lengths and counts are unsigned LEB128
 * varints; strings are uvarint length + bytes (no NUL, no terminator); an optional string
 * (rack, a deleted config value) is uvarint (length + 1) with 0 meaning absent. A decoder
 * rejects: a wrong magic or format, an unknown type, a version newer than it knows, a body
 * that is not consumed exactly, a length or count larger than the bytes left, a string
 * containing NUL, and trailing bytes after the last record. Every record type is at version 1.
 *
 * The same batch format serializes a whole metadata image for raft snapshots (image.c), so
 * the snapshot and the log share one decoder.
 */
#ifndef GREGOR_CLUSTER_RECORDS_H
#define GREGOR_CLUSTER_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "security/acl.h"

struct arena;

#define METADATA_BATCH_MAGIC 0x47
#define METADATA_BATCH_FORMAT 1
#define METADATA_UUID_LEN 16
#define METADATA_PRODUCER_ID_BLOCK 1000

enum metadata_record_type {
    METADATA_REC_REGISTER_BROKER = 1,
    METADATA_REC_TOPIC = 2,
    METADATA_REC_PARTITION = 3,
    METADATA_REC_PARTITION_CHANGE = 4,
    METADATA_REC_REMOVE_TOPIC = 5,
    METADATA_REC_CONFIG = 6,
    METADATA_REC_PRODUCER_IDS = 7,
    /* Snapshot only: the image version the snapshot was taken at. */
    METADATA_REC_IMAGE_HEADER = 8,
    /* A broker registration with epoch, incarnation and fencing state (supersedes type 1). */
    METADATA_REC_BROKER_REGISTRATION = 9,
    /* A broker fenced, unfenced or in controlled shutdown (Kafka's BrokerRegistrationChange). */
    METADATA_REC_BROKER_FENCE = 10,
    /* A partition's replica set during a reassignment (Kafka's adding/removing replicas). */
    METADATA_REC_REASSIGNMENT = 11,
    /* Dynamic broker configs (KIP-226) of one broker or the cluster-wide default. */
    METADATA_REC_BROKER_CONFIG = 12,
    /* A controller voter's Kafka-protocol endpoint (Kafka's RegisterControllerRecord, KIP-919). */
    METADATA_REC_CONTROLLER_REGISTRATION = 13,
    /* Where a broker-only node receives the metadata log (its libraft standby address). */
    METADATA_REC_OBSERVER_REGISTRATION = 14,
    /* An ACL added or removed by id (Kafka's AccessControlEntry / RemoveAccessControlEntry). */
    METADATA_REC_ACL = 15,
    /*
     * A user's SCRAM credential for one mechanism, or its removal (Kafka's
     * UserScramCredentialRecord and RemoveUserScramCredentialRecord, KIP-554).
     */
    METADATA_REC_SCRAM_CREDENTIAL = 16,
    /* One client quota value of a user / client-id entity (Kafka's ClientQuotaRecord, KIP-546). */
    METADATA_REC_CLIENT_QUOTA = 17,
    METADATA_REC_TYPE_MAX = 17,
};

/* A config key and value; value NULL means "delete the key" in a config change. */
struct metadata_config_entry {
    char *name;
    char *value;
};

/*
 * A broker registration. Type 1 (RegisterBroker, written by older versions) carries only id,
 * port, host and rack; it decodes with epoch 0, a zero incarnation and fenced = 0. Type 9
 * (BrokerRegistration) carries every field.
 */
struct metadata_rec_broker {
    int32_t broker_id;
    int32_t port;
    char *host;
    char *rack;    /* NULL if none */
    int64_t epoch; /* broker epoch: grows with every registration of any broker */
    uint8_t incarnation[METADATA_UUID_LEN];
    uint8_t fenced; /* 1: registered fenced (a broker starts fenced until caught up) */
};

enum metadata_broker_state {
    METADATA_BROKER_UNFENCED = 0,
    METADATA_BROKER_FENCED = 1,
    METADATA_BROKER_SHUTTING_DOWN = 2, /* controlled shutdown in progress: leads nothing new */
};

/* Applies only when epoch matches the broker's current registration. */
struct metadata_rec_broker_fence {
    int32_t broker_id;
    int64_t epoch;
    uint8_t state; /* enum metadata_broker_state */
};

/*
 * A node's endpoint. ControllerRegistration: where a controller voter answers the Kafka
 * protocol (brokers send it BrokerRegistration, BrokerHeartbeat, AlterPartition and forwarded
 * admin requests); a controller writes its own when it becomes active and the image holds
 * another endpoint (or none) for it. ObserverRegistration: where a broker-only node's libraft
 * transport listens, written with its registration; the active controller makes that address
 * a raft standby (it replicates the metadata log without voting).
 */
struct metadata_rec_endpoint {
    int32_t node_id;
    int32_t port;
    char *host;
};

struct metadata_rec_topic {
    char *name;
    uint8_t topic_id[METADATA_UUID_LEN];
    uint32_t n_configs;
    struct metadata_config_entry *configs; /* initial overrides, values never NULL */
};

struct metadata_rec_partition {
    uint8_t topic_id[METADATA_UUID_LEN];
    int32_t partition;
    int32_t leader;
    int32_t leader_epoch;
    int32_t partition_epoch;
    uint32_t n_replicas;
    uint32_t n_isr;
    int32_t *replicas;
    int32_t *isr;
};

/*
 * A partition change, as Kafka's PartitionChangeRecord: only the fields present change.
 * Applying it bumps partition_epoch, and leader_epoch when the leader changes.
 */
struct metadata_rec_partition_change {
    uint8_t topic_id[METADATA_UUID_LEN];
    int32_t partition;
    uint8_t has_leader;
    uint8_t has_isr;
    uint8_t has_replicas;
    int32_t leader;
    uint32_t n_isr;
    uint32_t n_replicas;
    int32_t *isr;
    int32_t *replicas;
};

/* Sets replicas, adding and removing together; empty adding and removing end a reassignment. */
struct metadata_rec_reassignment {
    uint8_t topic_id[METADATA_UUID_LEN];
    int32_t partition;
    uint32_t n_replicas, n_adding, n_removing;
    int32_t *replicas, *adding, *removing;
};

struct metadata_rec_remove_topic {
    uint8_t topic_id[METADATA_UUID_LEN];
};

/* Set (value != NULL) or delete (value == NULL) topic config keys, in order. */
struct metadata_rec_config {
    uint8_t topic_id[METADATA_UUID_LEN];
    uint32_t n_ops;
    struct metadata_config_entry *ops;
};

/* Set (value != NULL) or delete (value == NULL) dynamic broker config keys, in order, of
 * broker `broker_id`, or of the cluster-wide default when broker_id is -1 (Kafka's BROKER
 * resource "" ). */
struct metadata_rec_broker_config {
    int32_t broker_id;
    uint32_t n_ops;
    struct metadata_config_entry *ops;
};

struct metadata_rec_producer_ids {
    int32_t broker_id;
    int64_t next_block_start; /* first producer id not yet handed out after this block */
};

/* Which entity types a client quota entity names (Kafka's ClientQuotaEntity). */
#define METADATA_QUOTA_USER 1u
#define METADATA_QUOTA_CLIENT_ID 2u

/*
 * Sets (remove == 0) or removes one quota key of a client quota entity. `entity` holds the
 * METADATA_QUOTA_* types present (at least one); a present type's name NULL is its default
 * entity (Kafka's <default>). Encoded as flags:u8 (user, client-id, remove bits), the present
 * names as optional strings, key, value as the IEEE-754 bits of a double (u64).
 */
struct metadata_rec_client_quota {
    uint8_t entity;
    char *user;      /* when entity has METADATA_QUOTA_USER; NULL = default user */
    char *client_id; /* when entity has METADATA_QUOTA_CLIENT_ID; NULL = default client */
    char *key;
    double value; /* ignored when remove */
    uint8_t remove;
};

#define METADATA_SCRAM_SHA_256 1 /* Kafka's ScramMechanism type codes */
#define METADATA_SCRAM_SHA_512 2
#define METADATA_SCRAM_SALT_MAX 128
#define METADATA_SCRAM_KEY_MAX 64

/*
 * Set (remove == 0) or delete (remove == 1) the credential of user `name` for `mechanism`.
 * Stored as RFC 5802 keeps it: salt, iterations, StoredKey and ServerKey, never a password or
 * SaltedPassword. A removal carries only name and mechanism (the other fields are zero/NULL).
 * key_len is the mechanism's digest length (32 or 64); salt_len is 1..METADATA_SCRAM_SALT_MAX.
 */
struct metadata_rec_scram_credential {
    char *name;
    uint8_t mechanism; /* METADATA_SCRAM_SHA_256 or _512 */
    uint8_t remove;
    int32_t iterations;
    uint32_t salt_len;
    uint32_t key_len;
    uint8_t *salt;
    uint8_t *stored_key;
    uint8_t *server_key;
};

/*
 * An ACL binding added under a fresh id, or (remove = 1) the binding with that id removed; a
 * removal carries no binding. Strings as security/acl.h's struct acl_binding.
 */
struct metadata_rec_acl {
    uint8_t id[METADATA_UUID_LEN];
    uint8_t remove;
    struct acl_binding binding;
};

struct metadata_rec_image_header {
    uint64_t version;
};

struct metadata_record {
    enum metadata_record_type type;
    union {
        struct metadata_rec_broker broker;
        struct metadata_rec_topic topic;
        struct metadata_rec_partition partition;
        struct metadata_rec_partition_change partition_change;
        struct metadata_rec_remove_topic remove_topic;
        struct metadata_rec_config config;
        struct metadata_rec_broker_config broker_config;
        struct metadata_rec_producer_ids producer_ids;
        struct metadata_rec_image_header image_header;
        struct metadata_rec_broker_fence broker_fence;
        struct metadata_rec_reassignment reassignment;
        struct metadata_rec_endpoint endpoint; /* CONTROLLER_ / OBSERVER_REGISTRATION */
        struct metadata_rec_client_quota client_quota;
        struct metadata_rec_scram_credential scram;
        struct metadata_rec_acl acl;
    };
};

/*
 * A growable output buffer. Encoders append; on allocation failure `failed` is set and later
 * appends are ignored, so a caller checks once at the end. The buffer owns `data` (malloc).
 */
struct metadata_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed;
};

void metadata_buf_free(struct metadata_buf *b);

/*
 * Batch encoding: begin writes the header with a zero count, append adds one record,
 * finish patches the count. Returns 0 or -ENOMEM (also -EINVAL for an unknown record type).
 */
void metadata_batch_begin(struct metadata_buf *b);
int metadata_batch_append(struct metadata_buf *b, const struct metadata_record *rec);
int metadata_batch_finish(struct metadata_buf *b);

/*
 * A decoded batch. All strings and arrays live in memory owned by the batch; release with
 * metadata_batch_free. Strings are NUL-terminated copies.
 */
struct metadata_batch {
    struct metadata_record *records;
    size_t n_records;
    struct arena *arena; /* private */
};

/*
 * Decodes a batch from `data`/`len` (not retained). Returns 0, -EBADMSG for malformed or
 * unsupported input, or -ENOMEM. On error `out` holds nothing to free.
 */
int metadata_batch_decode(const uint8_t *data, size_t len, struct metadata_batch *out);
/*
 * As metadata_batch_decode, but accepts up to 7 zero bytes after the last record: raft log
 * entries are padded to a multiple of 8 bytes (libraft 0.15's segment loader does not handle
 * other lengths, see controller.c).
 */
int metadata_batch_decode_padded(const uint8_t *data, size_t len, struct metadata_batch *out);
void metadata_batch_free(struct metadata_batch *batch);

const char *metadata_record_type_name(enum metadata_record_type type);

#endif
