/*
 * Client quota enforcement (KIP-13 / KIP-124 / KIP-219 semantics, quotas from KIP-546's
 * metadata records): which quota applies to a request, the rate it adds to, and how long the
 * client is throttled.
 *
 * A request's quota for each key is the value of the first entity in Kafka's precedence order
 * that sets the key: /users/U/clients/C, /users/U/clients/<default>, /users/U,
 * /users/<default>/clients/C, /users/<default>/clients/<default>, /users/<default>,
 * /clients/C, /clients/<default> (U: the principal's name, ANONYMOUS without authentication;
 * C: the header's client id, "" when null). Requests share a sensor (a measured rate) when
 * they matched the same entity types with the same user and client id, as Kafka's metric tags.
 *
 * What is measured: producer_byte_rate counts produce request bytes (the frame size);
 * consumer_byte_rate the record bytes of client fetch responses (a fetch over its quota is
 * answered without records, Kafka's throttled fetch); request_percentage the time a worker
 * thread spends in a request's handler (dispatch to the handler's return, so waiting in
 * purgatory is not counted), as a percentage of one thread per second. A throttled request's
 * response carries throttle_time_ms (byte-rate and request quotas, the largest) and its
 * connection is muted for that long (net_conn_mute); request quota throttles are bounded by one
 * window, as in Kafka.
 *
 * Cost: with no quota in the image, quota_active() is one relaxed atomic load and nothing else
 * runs. With quotas, each connection caches its resolved quotas (one allocation per
 * connection, net_conn_cache), re-resolved only when the image's quotas_version or the client
 * id changes; a request then takes its sensor's lock once.
 *
 * Requests between brokers (broker-to-controller APIs, transaction markers, follower fetches)
 * are exempt, as Kafka exempts ClusterAction requests.
 *
 * Sensors expire: one that no open connection uses and that recorded nothing for
 * quota.inactive.sensor.expiration.ms (Kafka's fixed hour) is dropped, so many short-lived
 * client ids do not grow memory without bound (quota_sensor_count, a /metrics gauge).
 *
 * controller_mutation_rate (KIP-599) is a token bucket (Kafka's TokenBucket: credits refill at
 * the quota per second up to quota.window.num * quota.window.size.seconds * quota): CreateTopics,
 * CreatePartitions and DeleteTopics record the partitions they create or delete
 * (mutation_quota.c).
 *
 * Threads: quota_on_image on the controller thread; the rest on the connection's worker.
 */
#ifndef GREGOR_BROKER_QUOTA_H
#define GREGOR_BROKER_QUOTA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/image.h"
#include "proto/codec.h"

struct broker_req;
struct net_conn;
struct quota_manager;
struct quota_conn;

/* expire_ms: an unused sensor no connection points at is dropped after this long (Kafka's
 * InactiveSensorExpirationTimeSeconds, 3600 s). */
struct quota_manager *quota_manager_new(int samples, int64_t window_ms, int64_t expire_ms);
void quota_manager_free(struct quota_manager *qm);

/* Controller thread, after each publish: notes whether any quota exists and its version. */
void quota_on_image(struct quota_manager *qm, const struct metadata_image *next);

/* Any thread: true when the image holds at least one client quota. */
bool quota_active(const struct quota_manager *qm);

/*
 * The quota for `key` applying to (user, client_id) in img, Kafka's precedence order: its
 * value, and the entity types (METADATA_QUOTA_*) of the entity it came from. Returns false
 * when no entity sets the key.
 */
bool quota_resolve(const struct metadata_image *img, enum metadata_quota_key key, const char *user,
                   const char *client_id, double *bound, uint8_t *entity);

/*
 * Worker thread, before r's handler: resolves r's quotas (cached per connection), records a
 * produce request's bytes and returns the connection's quota state for quota_after_handler, or
 * NULL when no quota applies. Sets r->throttle_ms and mutes the connection when the produce
 * rate is over its quota.
 */
struct quota_conn *quota_before_handler(struct broker_req *r);

/*
 * Worker thread, once per request with r->quota set (then cleared): records r's handler time
 * so far (since dispatch) against request_percentage; over the quota, mutes the connection and
 * raises r->throttle_ms (the response's throttle_time_ms, bounded by one window as in Kafka's
 * ClientRequestQuotaManager).
 */
void quota_charge_request(struct broker_req *r);

/*
 * Worker thread: records `bytes` of a client fetch response against consumer_byte_rate.
 * Returns the throttle time (0: within quota); when > 0 the connection is muted and, as
 * Kafka does, the caller answers without records and the bytes are not counted.
 */
int32_t quota_record_fetch(struct broker_req *r, int64_t bytes);

/* Worker thread: the connection is closing; its cache drops its sensor references (the cache
 * memory itself is freed by net). NULL is a no-op. */
void quota_conn_close(struct quota_conn *qc);

/* Sensors in the table (drops expired ones first). Any thread. */
int64_t quota_sensor_count(struct quota_manager *qm);

/* Worker thread: the controller_mutation_rate throttle time of r's client now (0: under its
 * quota or none applies). */
int32_t quota_mutation_throttle(struct broker_req *r);
/* Worker thread: records `mutations` partitions created or deleted by r; over the quota, mutes
 * the connection and raises r->throttle_ms. */
void quota_mutation_record(struct broker_req *r, double mutations);

#endif
