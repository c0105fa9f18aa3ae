/*
 * Partitions this broker hosts: a registry from (topic, index) to the partition's log and the
 * per-partition state the data path needs (leader epoch, effective topic configs, fetches
 * waiting for data).
 *
 * Threads. The registry is changed only by the controller thread (metadata image listener) and
 * at start/stop. I/O workers look partitions up under a read lock and hold a reference while
 * they use one; a deleted partition stays usable by its holders and its log is closed when the
 * last reference goes. Partition fields other than `waiters` are written before the partition is
 * published (or atomically) and read without locks.
 */
#ifndef GREGOR_BROKER_PARTITION_H
#define GREGOR_BROKER_PARTITION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/replica_set.h"
#include "cluster/image.h"
#include "net/net.h"
#include "storage/log.h"

struct broker;
struct partition_registry;

/* Kafka error code for a storage result: 0, a LOG_ERR_* or a negative errno (disk full, I/O
 * error: KAFKA_STORAGE_ERROR). Any thread. */
int16_t partition_error_from_storage(int err);
struct producer_state;

/* A fetch (or other delayed operation) waiting for data on a partition. */
struct partition_waiter {
    struct partition_waiter *next, *prev;
    bool linked;                                /* in a waiter list; guarded by that list's mutex */
    void (*notify)(struct partition_waiter *w); /* called by the appending thread, unlocked */
    void *arg;
};

/* A list of waiters with its own lock (a partition's fetches; the broker's stop list). */
struct waiter_list {
    pthread_mutex_t mu;
    struct partition_waiter *head;
};

void waiter_list_init(struct waiter_list *l);
void waiter_list_destroy(struct waiter_list *l);
void waiter_list_add(struct waiter_list *l, struct partition_waiter *w);
void waiter_list_remove(struct waiter_list *l, struct partition_waiter *w);
/* Calls every waiter's notify (which must only post work: it runs under the list's lock). */
void waiter_list_notify(struct waiter_list *l);

struct partition {
    atomic_int refs;
    struct partition_registry *reg;
    char *topic;
    int32_t index;
    uint8_t topic_id[METADATA_UUID_LEN];
    struct log *log;
    /* Traffic for metrics: relaxed atomic adds on the data path, summed per topic at scrape. */
    atomic_llong bytes_in, records_in;   /* appended by Produce (batch bytes as received) */
    atomic_llong bytes_out, records_out; /* sent by Fetch (records: offsets past fetch offset) */
    atomic_int leader_epoch;
    atomic_int leader; /* node id of the leader per the image; -1 none */
    /* Effective topic configs the data path reads on every request. */
    atomic_bool log_append_time;      /* message.timestamp.type=LogAppendTime */
    atomic_int max_message_bytes;     /* max.message.bytes */
    atomic_int min_insync_replicas;   /* min.insync.replicas */
    atomic_int isr_size;              /* in-sync replicas (image or AlterPartition answer) */
    atomic_int compression_codec;     /* compression.type as a codec; -1 = producer */
    atomic_bool compact;              /* cleanup.policy has compact: records need keys */
    _Atomic int64_t ts_before_max_ms; /* message.timestamp.before.max.ms */
    _Atomic int64_t ts_after_max_ms;  /* message.timestamp.after.max.ms */
    /* Retired (topic deleted, or no longer a replica here): set under follow_mu, after which no
     * append or follower write touches the log; `trash` is its renamed directory (NULL: the
     * rename failed and the original path is removed), deleted with the last reference. */
    atomic_bool deleted;
    char *trash;
    struct waiter_list waiters; /* fetches waiting for appends */
    /* Idempotent producers (broker/producer_append.h): producer_mu guards `producers` and is
     * held across check + append + update of a producer's batch. */
    pthread_mutex_t producer_mu;
    struct producer_state *producers;
    _Atomic int64_t producer_segment_base; /* newest segment appended to, to notice rolls */
    /* Transactions (written under producer_mu): aborted ones for read_committed fetches, and
     * the first offset of the oldest open one (-1 none), read atomically for the LSO. */
    struct txn_index *txns;
    _Atomic int64_t first_unstable;
    /* Markers recorded here (under producer_mu): a KIP-890 verification holds while it has
     * not moved (partition_append.h). */
    uint64_t txn_markers;
    struct replica_set rs; /* replicas, ISR, high watermark (broker/replica_set.h) */
    /* Held by the replica fetcher across its leader/epoch check and the append or truncation
     * it makes, and by the image listener while it changes leader and leader_epoch: a
     * follower never appends what an old leader sent after this node took over. */
    pthread_mutex_t follow_mu;
};

int partition_registry_open(struct broker *b, struct partition_registry **out, char *err,
                            size_t errlen);
/* Writes checkpoints and the clean-shutdown marker, closes every log. After the network stopped. */
void partition_registry_close(struct partition_registry *reg);

/* Image listener: opens logs of new partitions, retires deleted ones, applies config changes.
 * Controller thread. */
void partition_registry_on_image(void *arg, const struct metadata_image *prev,
                                 const struct metadata_image *next);

/* The partition, with a reference the caller must drop with partition_put(); NULL if this
 * broker does not host it. `topic` is NUL-terminated. Any thread. */
struct partition *partition_get(struct partition_registry *reg, const char *topic, int32_t index);
struct partition *partition_get_by_id(struct partition_registry *reg, const uint8_t *topic_id,
                                      int32_t index);
void partition_put(struct partition *p);

/* Waiter list: add/remove on any thread; partition_notify_waiters() after an append. */
void partition_add_waiter(struct partition *p, struct partition_waiter *w);
void partition_remove_waiter(struct partition *p, struct partition_waiter *w);
void partition_notify_waiters(struct partition *p);

/* The log flusher shared by every partition (acks=all waits on it). */
struct log_flusher *partition_registry_flusher(struct partition_registry *reg);

/* Count of hosted partitions (metrics). */
size_t partition_registry_count(struct partition_registry *reg);

/* Calls fn(p, arg) for every hosted partition under the registry's read lock: fn must be
 * short and must not call back into the registry. Any thread (metrics scrapes). */
void partition_registry_each(struct partition_registry *reg,
                             void (*fn)(struct partition *p, void *arg), void *arg);

#endif
