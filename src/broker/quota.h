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
 * response carries throttle_time_ms (byte-rate quotas) and its connection is muted for that
 * long (net_conn_mute); request quota throttles are bounded by one window, as in Kafka.
 *
 * Cost: with no quota in the image, quota_active() is one relaxed atomic load and nothing else
 * runs. With quotas, each connection caches its resolved quotas (one allocation per
 * connection, net_conn_cache), re-resolved only when the image's quotas_version or the client
 * id changes; a request then takes its sensor's lock once.
 *
 * Requests between brokers (broker-to-controller APIs, transaction markers, follower fetches)
 * are exempt, as Kafka exempts ClusterAction requests.
 *
 * Sensors live until the broker stops (Kafka expires a sensor after an hour without use; Gregor
 * does not yet).
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

struct quota_manager *quota_manager_new(int samples, int64_t window_ms);
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
 * Worker thread, after r's handler returned (r may be gone): records the handler time since
 * start_ns against request_percentage and mutes conn when over it.
 */
void quota_after_handler(struct quota_conn *qc, struct net_conn *conn, int64_t start_ns);

/*
 * Worker thread: records `bytes` of a client fetch response against consumer_byte_rate.
 * Returns the throttle time (0: within quota); when > 0 the connection is muted and, as
 * Kafka does, the caller answers without records and the bytes are not counted.
 */
int32_t quota_record_fetch(struct broker_req *r, int64_t bytes);

#endif
