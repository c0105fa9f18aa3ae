/*
 * Broker lifecycle: start the subsystems in dependency order (identity, controller, partition
 * logs, network) and stop them in reverse. Start-up failures name the resource that failed.
 *
 * Roles. A node is one code path whatever its process.roles: a controller-only node starts
 * the same subsystems, but without the broker lifecycle thread it never registers as a
 * broker, so nothing is placed on it and its partition registry, fetchers and groups stay
 * idle; dispatch serves it only the controller APIs. Brokers reach it through the endpoint it
 * records in the metadata log on becoming the active controller (ControllerRegistration).
 * A broker-only node runs the controller too, as a libraft standby that is never a candidate
 * (controller.c): it has the metadata image like any node, and registers through
 * controller.quorum.bootstrap.servers until it knows the active controller from the log.
 */
#include "broker/broker.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/broker_metrics.h"
#include "broker/console_api.h"
#include "broker/console_history.h"
#include "broker/console_security.h"
#include "broker/groups.h"
#include "broker/transactions.h"
#include "broker/txn_marker_sender.h"
#include "broker/txn_verifier.h"
#include "broker/txn_offset_commit.h"
#include "broker/cleaner_settings.h"
#include "broker/dispatch.h"
#include "broker/dynamic_threads.h"
#include "broker/gate.h"
#include "broker/forwarder.h"
#include "broker/quota.h"
#include "broker/handlers.h"
#include "broker/isr_sender.h"
#include "broker/lifecycle.h"
#include "broker/replica_fetcher.h"
#include "broker/session.h"
#include "broker/stray_logs.h"
#include "broker/partition.h"
#include "metrics/metrics.h"
#include "storage/flusher.h"

#define GATE_UNFENCE_WAIT_MS 5000

static void broker_on_request(void *ctx, struct net_request *req)
{
    broker_dispatch(ctx, req);
}

/*
 * Kafka prints cluster ids as unpadded URL-safe base64 of 16 bytes (22 chars). A single node
 * (no controller.quorum.voters) takes 16 random bytes. The nodes of a cluster must agree
 * without talking first, so without cluster.id they derive it from controller.quorum.voters
 * (two 64-bit FNV-1a hashes of the spec): every node given the same voter set, broker-only
 * nodes included, has the same cluster id, and a node given another voter set is refused by
 * the controller (INCONSISTENT_CLUSTER_ID).
 */
static void broker_new_cluster_id(const char *voters, char out[23])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[18] = {0};
    if (voters[0] != '\0') {
        uint64_t h1 = 14695981039346656037ull, h2 = 1099511628211ull * 31;
        for (const char *p = voters; *p; p++) {
            h1 = (h1 ^ (uint8_t)*p) * 1099511628211ull;
            h2 = (h2 ^ (uint8_t)*p) * 1099511628211ull + 0x9e3779b97f4a7c15ull;
        }
        for (int i = 0; i < 8; i++) {
            raw[i] = (uint8_t)(h1 >> (8 * i));
            raw[8 + i] = (uint8_t)(h2 >> (8 * i));
        }
    } else if (getrandom(raw, 16, 0) != 16) {
        memset(raw, 0x5a, 16);
    }
    int k = 0;
    for (int i = 0; i < 18 && k < 22; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        for (int j = 3; j >= 0 && k < 22; j--)
            out[k++] = b64[(v >> (6 * j)) & 63];
    }
    out[22] = '\0';
}

/*
 * Reads cluster.id from log.dirs/meta.properties, writing the file (Kafka's format) with a
 * new id on first start. A node.id in the file that differs from the configuration is an error.
 */
static int broker_load_identity(struct broker *b, char *err, size_t errlen)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/meta.properties", b->cfg.log_dirs);
    struct properties props;
    properties_init(&props);
    int rc = properties_load(&props, path, NULL);
    if (rc == 0) {
        const char *cid = properties_get(&props, "cluster.id");
        const char *nid = properties_get(&props, "node.id");
        if (nid && atoi(nid) != b->cfg.node_id) {
            snprintf(err, errlen, "node.id %d does not match node.id=%s in %s", b->cfg.node_id, nid,
                     path);
            properties_free(&props);
            return -EINVAL;
        }
        snprintf(b->cluster_id, sizeof(b->cluster_id), "%s", cid ? cid : "");
        if (cid && b->cfg.cluster_id[0] && strcmp(cid, b->cfg.cluster_id) != 0) {
            snprintf(err, errlen, "cluster.id %s does not match cluster.id=%s in %s",
                     b->cfg.cluster_id, cid, path);
            properties_free(&props);
            return -EINVAL;
        }
    }
    properties_free(&props);
    if (b->cluster_id[0] != '\0')
        return 0;
    if (b->cfg.cluster_id[0] != '\0')
        snprintf(b->cluster_id, sizeof(b->cluster_id), "%s", b->cfg.cluster_id);
    else
        broker_new_cluster_id(b->cfg.controller_quorum_voters, b->cluster_id);
    char tmp[1110];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        snprintf(err, errlen, "log.dirs '%s': cannot write meta.properties: %s", b->cfg.log_dirs,
                 strerror(errno));
        return -errno;
    }
    fprintf(f, "#\nversion=1\ncluster.id=%s\nnode.id=%d\n", b->cluster_id, b->cfg.node_id);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "log.dirs '%s': cannot write meta.properties", b->cfg.log_dirs);
        return -EIO;
    }
    return 0;
}

static void broker_set_advertised(struct broker *b)
{
    const struct listener_config *adv = config_advertised_listener(&b->cfg);
    const char *host = adv->host[0] ? adv->host : "";
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0) {
        if (gethostname(b->advertised_host, sizeof(b->advertised_host)) != 0)
            snprintf(b->advertised_host, sizeof(b->advertised_host), "localhost");
    } else {
        snprintf(b->advertised_host, sizeof(b->advertised_host), "%s", host);
    }
    b->advertised_port = adv->port;
}

/* A connection limit: this broker's dynamic value, else the cluster default's, else the
 * static property; 0 = unlimited (Kafka's default is Int.MaxValue). */
static int broker_connection_limit(const struct broker *b, const struct metadata_image *img,
                                   const char *name, int32_t static_value)
{
    const char *v = metadata_image_broker_config(img, b->cfg.node_id, name);
    if (v == NULL)
        v = metadata_image_broker_config(img, -1, name);
    long long x = v ? strtoll(v, NULL, 10) : static_value;
    return x <= 0 || x >= INT32_MAX ? 0 : (int)x;
}

/* Dynamic max.connections / max.connections.per.ip (KIP-226's DynamicConnectionQuota). */
static void broker_apply_connection_limits(struct broker *b, const struct metadata_image *prev,
                                           const struct metadata_image *next)
{
    if (prev != NULL && metadata_image_broker_configs_equal(prev, next))
        return;
    net_server_set_connection_limits(
        b->net, broker_connection_limit(b, next, "max.connections", b->cfg.max_connections),
        broker_connection_limit(b, next, "max.connections.per.ip", b->cfg.max_connections_per_ip));
}

/*
 * A new incarnation id for this process start: random, or (getrandom failing) the clocks and
 * the pid, which still differ from every earlier start of this node.
 */
static void broker_new_incarnation(struct broker *b)
{
    if (getrandom(b->incarnation, sizeof(b->incarnation), 0) == (ssize_t)sizeof(b->incarnation))
        return;
    uint64_t parts[2] = {(uint64_t)clock_wall_ms() << 20 ^ (uint64_t)getpid(), clock_mono_ns()};
    static_assert(sizeof(parts) == sizeof(b->incarnation), "incarnation is 16 bytes");
    memcpy(b->incarnation, parts, sizeof(parts));
}

/*
 * Whether IMG holds this process's own broker registration. A restarting node replays its
 * metadata log from disk and receives what it missed from the leader; until its registration
 * of this start is applied, the images it sees are older than the cluster's present (it may be
 * named leader of partitions that moved away while it was down). Kafka's broker likewise
 * publishes metadata only once it has caught up to its registration. A controller-only node
 * hosts no partitions and follows at once.
 */
static bool broker_image_caught_up(const struct broker *b, const struct metadata_image *img)
{
    if (!broker_has_broker_role(b))
        return true;
    const struct metadata_broker *mb = metadata_image_broker(img, b->cfg.node_id);
    return mb != NULL && memcmp(mb->incarnation, b->incarnation, sizeof(b->incarnation)) == 0;
}

/* Controller thread, after each publish: the partition registry (once caught up, see above),
 * the client quotas and the connection limits. */
static void broker_on_image(void *arg, const struct metadata_image *prev,
                            const struct metadata_image *next)
{
    struct broker *b = arg;
    if (!b->image_followed && broker_image_caught_up(b, next)) {
        b->image_followed = true;
        logger_info("broker",
                    "node %d caught up with the metadata log at version %llu; its "
                    "partitions follow the metadata from here",
                    b->cfg.node_id, (unsigned long long)next->version);
        stray_logs_sweep(b->parts, next);
        partition_registry_on_image(b->parts, NULL, next); /* the first image it sees */
    } else if (b->image_followed) {
        partition_registry_on_image(b->parts, prev, next);
    }
    quota_on_image(b->quotas, next);
    broker_apply_connection_limits(b, prev, next);
    if (prev == NULL || !metadata_image_broker_configs_equal(prev, next)) {
        dynamic_threads_apply(b, next);
        cleaner_settings_apply(b, next);
    }
}

static int broker_start_controller(struct broker *b, char *err, size_t errlen)
{
    const struct listener_config *cl = config_controller_listener(&b->cfg);
    bool observer = !(b->cfg.roles & CONFIG_ROLE_CONTROLLER);
    char bind[300] = "";
    if (observer)
        snprintf(bind, sizeof(bind), "%s", b->cfg.metadata_observer_listener);
    else if (cl)
        snprintf(bind, sizeof(bind), "%s:%d", cl->host[0] ? cl->host : "0.0.0.0", cl->port);
    struct controller_config cc = {
        .listener = bind[0] ? bind : NULL,
        .observer = observer,
        .unclean_leader_election = b->cfg.unclean_leader_election_enable,
        .broker_session_timeout_ms = (unsigned)b->cfg.broker_session_timeout_ms,
        .leader_imbalance_check_ms =
            (unsigned)(b->cfg.leader_imbalance_check_interval_seconds * 1000),
        .auto_leader_rebalance = b->cfg.auto_leader_rebalance_enable,
        .node_id = b->cfg.node_id,
        .endpoint_host = b->advertised_host,
        .endpoint_port = b->advertised_port,
        .data_dir = b->cfg.metadata_log_dir[0] ? b->cfg.metadata_log_dir : b->cfg.log_dirs,
        .quorum_voters = b->cfg.controller_quorum_voters,
        .default_num_partitions = b->cfg.num_partitions,
        .default_replication_factor = b->cfg.default_replication_factor,
        .on_image = broker_on_image,
        .on_image_arg = b,
    };
    return controller_start(&cc, &b->ctl, err, errlen);
}

static int broker_start_network(struct broker *b, char *err, size_t errlen)
{
    struct net_config nc = {
        .num_workers = b->cfg.num_io_threads,
        .max_frame_bytes = b->cfg.socket_request_max_bytes,
        .idle_ms = b->cfg.connections_max_idle_ms,
        .local_send_copy = b->cfg.fetch_local_copy_enable,
        .max_connections = b->cfg.max_connections == INT32_MAX ? 0 : b->cfg.max_connections,
        .max_connections_per_ip =
            b->cfg.max_connections_per_ip == INT32_MAX ? 0 : b->cfg.max_connections_per_ip,
    };
    int rc = broker_listeners_open(b, &nc, err, errlen);
    if (rc != 0)
        return rc;
    struct net_handler h = {.on_request = broker_on_request,
                            .on_open = session_on_open,
                            .on_close = session_on_close,
                            .ctx = b};
    rc = net_server_start(&nc, &h, &b->net);
    if (rc != 0) {
        /* net logged which address failed; name every client listener here */
        char names[512] = "";
        size_t at = 0;
        for (int i = 0; i < b->n_listeners && at < sizeof(names); i++) {
            const struct listener_config *l = b->listeners[i].cfg;
            at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s://%s:%d", i ? "," : "",
                                   l->name, l->host, l->port);
        }
        snprintf(err, errlen, "cannot listen on listener%s %s: %s", b->n_listeners > 1 ? "s" : "",
                 names, strerror(-rc));
        return rc;
    }
    broker_listeners_bound(b);
    return 0;
}

/* Counters exist from the start (handlers and the flusher bump them); the HTTP endpoint only
 * with metrics.listener, started once the broker serves. */
static int broker_create_metrics(struct broker *b, char *err, size_t errlen)
{
    b->metrics = metrics_create();
    if (b->metrics == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int n;
    const struct broker_api *apis = broker_apis(&n);
    for (int i = 0; i < n; i++)
        metrics_track_api(b->metrics, apis[i].key);
    return 0;
}

static int broker_start_metrics(struct broker *b, char *err, size_t errlen)
{
    struct log_flush_observer obs = {metrics_observe_fsync, b->metrics};
    log_flusher_set_observer(partition_registry_flusher(b->parts), &obs);
    if (b->cfg.metrics_listener[0] == '\0')
        return 0;
    struct metrics_source src = broker_metrics_source(b);
    return metrics_serve(b->metrics, b->cfg.metrics_listener, &src, err, errlen);
}

/* The web console, with console.listener, once everything it reads exists. */
static int broker_start_console(struct broker *b, char *err, size_t errlen)
{
    if (b->cfg.console_listener[0] == '\0')
        return 0;
    b->console_history = console_history_start(b, b->cfg.console_sample_interval_ms);
    if (b->console_history == NULL) {
        snprintf(err, errlen, "cannot start the console's sampling thread");
        return -ENOMEM;
    }
    struct console_source src = broker_console_source(b);
    if (src.login != NULL && !console_security_has_users(b))
        logger_warn("console",
                    "security is on (a SASL listener or an authorizer) but no SASL listener has "
                    "users: nobody can sign in to the console");
    return console_serve(b->cfg.console_listener, &src, &b->console, err, errlen);
}

int broker_start(const struct broker_config *cfg, struct broker **out, char *err, size_t errlen)
{
    struct broker *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    b->cfg = *cfg;
    pthread_mutex_init(&b->pid_pool.mu, NULL);
    broker_set_advertised(b);
    pthread_mutex_init(&b->gate.mu, NULL);
    waiter_list_init(&b->parked);
    /* Listen first (requests are held by the gate) so clients can connect at once, then
     * recover the logs and load the metadata log. */
    b->quotas =
        quota_manager_new(cfg->quota_window_num, (int64_t)cfg->quota_window_size_seconds * 1000,
                          cfg->quota_inactive_sensor_expiration_ms);
    int rc = b->quotas ? broker_create_metrics(b, err, errlen) : -ENOMEM;
    if (b->quotas == NULL)
        snprintf(err, errlen, "out of memory");
    if (rc == 0)
        rc = broker_authorizer_start(b, err, errlen);
    if (rc == 0)
        rc = broker_load_identity(b, err, errlen);
    if (rc == 0)
        rc = interbroker_security_init(&b->interbroker, &b->cfg, err, errlen);
    if (rc == 0)
        rc = broker_start_network(b, err, errlen);
    if (rc == 0)
        rc = partition_registry_open(b, &b->parts, err, errlen);
    if (rc == 0 && ((rc = replica_fetchers_create(b)) != 0 || (rc = isr_sender_start(b)) != 0))
        snprintf(err, errlen, "cannot start the replication threads");
    if (rc == 0) {
        broker_new_incarnation(b);
        rc = broker_start_controller(b, err, errlen);
    }
    if (rc == 0 && ((rc = groups_start(b)) != 0 || (rc = txn_start(b)) != 0 ||
                    (rc = txn_offsets_start(b)) != 0 || (rc = txn_marker_sender_start(b)) != 0 ||
                    (rc = txn_verifier_start(b)) != 0))
        snprintf(err, errlen, "out of memory");
    if (rc == 0 && ((rc = forwarder_start(b)) != 0 ||
                    (broker_has_broker_role(b) && (rc = lifecycle_start(b)) != 0)))
        snprintf(err, errlen, "cannot start the broker lifecycle threads");
    if (rc == 0)
        rc = broker_start_metrics(b, err, errlen);
    if (rc == 0)
        rc = broker_start_console(b, err, errlen);
    if (rc != 0) {
        broker_gate_fail(b);
        broker_stop(b);
        return rc;
    }
    /* Requests wait (bounded) until this broker is registered and unfenced, so a single node
     * never answers its first requests as a cluster without brokers. */
    if (broker_has_broker_role(b) && !lifecycle_wait_unfenced(b, GATE_UNFENCE_WAIT_MS))
        logger_warn("broker", "node %d is not unfenced yet (no active controller?); serving anyway",
                    b->cfg.node_id);
    broker_gate_open(b);
    logger_info("broker",
                "node %d (process.roles=%s) of cluster %s listening on %s:%d (advertised %s:%d), "
                "data in %s",
                b->cfg.node_id, b->cfg.process_roles, b->cluster_id, b->listeners[0].cfg->host,
                net_server_port(b->net), b->advertised_host, b->advertised_port, b->cfg.log_dirs);
    *out = b;
    return 0;
}

void broker_stop(struct broker *b)
{
    if (b == NULL)
        return;
    /* Controlled shutdown first, while this broker still serves what it leads. */
    lifecycle_stop(b);
    replica_fetchers_stop(b);
    /* Long-polling fetches answer now with what they have, as Kafka does on shutdown. */
    atomic_store(&b->stopping, true);
    waiter_list_notify(&b->parked);
    console_stop(b->console); /* like scrapes, console requests read everything below */
    b->console = NULL;
    console_history_stop(b->console_history); /* before the network its admin client uses */
    b->console_history = NULL;
    metrics_stop_serving(b->metrics); /* scrapes read everything below */
    groups_shutdown(b);
    txn_marker_sender_stop(b); /* abandoned markers answer while the workers run */
    txn_verifier_stop(b);      /* so do waiting verifications */
    txn_shutdown(b);           /* no coordinator op in flight once the logs close */
    forwarder_stop(b);
    net_server_stop(b->net);
    forwarder_free(b);  /* after the workers: a request may still look at b->fwd until then */
    isr_sender_stop(b); /* after the workers (they kick it), before the controller */
    /* The controller before the groups: its completions (e.g. creating __consumer_offsets)
     * still reach the group state. */
    if (b->ctl)
        controller_stop(b->ctl);
    lifecycle_free(b);
    replica_fetchers_free(b); /* after the controller: its image listener calls in */
    groups_stop(b);           /* before the logs close: loader threads read them */
    txn_offsets_stop(b);
    partition_registry_close(b->parts);
    /* Last: the controller, the ISR sender and the flusher could post to a worker until now
     * (refused once the network stopped, but into memory that must still be there). */
    net_server_free(b->net);
    txn_stop(b); /* after the workers' timers are gone (the timeout sweep's is in it) */
    broker_listeners_close(b); /* TLS contexts and users, once no worker uses them */
    interbroker_security_free(&b->interbroker); /* every client thread has stopped */
    broker_authorizer_stop(b);
    pthread_mutex_destroy(&b->pid_pool.mu);
    pthread_mutex_destroy(&b->gate.mu);
    waiter_list_destroy(&b->parked);
    metrics_free(b->metrics);      /* after the flusher (its observer) and the workers stopped */
    quota_manager_free(b->quotas); /* after the workers and the controller */
    free(b);
}
