/*
 * The controller thread: a libuv loop driving libraft (raft_uv disk I/O + raft_uv_tcp
 * transport), the raft FSM that turns committed record batches into published images, and the
 * command pipeline.
 *
 * Raft settings (defaults; each overridable in controller_config):
 *  - election timeout 1000 ms (libraft randomizes it to 1-2x): a dead leader is replaced within
 *    ~2 s, Kafka's controller.quorum.election.timeout.ms is also 1000 ms.
 *  - heartbeat 100 ms: 10 heartbeats per election timeout, so a few lost packets never cause an
 *    election; it also paces the leadership check timer below.
 *  - snapshot threshold 4096 entries, trailing 512: an entry is one command (a few hundred
 *    bytes to a few KiB), so the log stays around a few MiB; a snapshot of 10,000 topics is
 *    roughly 1 MiB and cheap to write every few thousand commands; 512 trailing entries let a
 *    briefly lagging follower catch up from the log instead of a snapshot.
 *  - pre-vote on, so a voter returning from a partition does not depose a healthy leader.
 *  - 1 MiB log segments (libraft preallocates; the default 8 MiB is oversized for metadata).
 *
 * Pipeline invariants (controller thread only):
 *  - `image` is the last applied image; the published cell always holds the same image.
 *  - Commands move queue (any thread, under `lock`) -> pending (controller thread) -> proposed
 *    (in_flight > 0) -> completed. A new batch of pending commands is validated only when
 *    nothing is in flight, against a scratch clone of `image`, so validation sees every earlier
 *    command. done() is called exactly once per accepted command.
 *  - The leader serves commands only after a barrier in its own term has applied (`active`),
 *    so validation never misses entries committed by a previous leader.
 *
 * Broker-only nodes (Kafka's metadata observers) are libraft standbys: members of the raft
 * configuration that replicate the log and apply it like voters but neither vote nor count for
 * the quorum. So the metadata log lives in libraft on every node, and a broker-only node runs
 * this same controller, which simply never becomes leader. Their addresses come from the
 * metadata log (ObserverRegistration, written with the BrokerRegistration); the active
 * controller reconciles the raft configuration with them, one libraft change at a time
 * (raft_add as spare, then raft_assign to standby; an address that changed is removed and
 * added again). A new active controller picks up where the last one stopped, since both the
 * image and the configuration are replicated. Standbys are never removed: a dead one costs the
 * leader a reconnect attempt per heartbeat, and it catches up when it returns.
 */
#include "cluster/controller.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <raft.h>
#include <signal.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "base/logger.h"
#include "cluster/commands.h"
#include "cluster/image_cell.h"
#include "cluster/liveness.h"
#include "cluster/quorum.h"

#define DEFAULT_ELECTION_TIMEOUT_MS 1000
#define DEFAULT_HEARTBEAT_TIMEOUT_MS 100
#define DEFAULT_SNAPSHOT_THRESHOLD 4096
#define DEFAULT_SNAPSHOT_TRAILING 512
#define SEGMENT_SIZE (1024 * 1024)
#define MAX_COMMANDS_PER_BATCH 1024
#define CLOSE_GRACE_MS 5000
#define CLOSE_IDLE_TICKS 10
#define LOG_SUB "controller"
#define DEFAULT_SESSION_TIMEOUT_MS 9000
#define DEFAULT_IMBALANCE_CHECK_MS 300000
#define SWEEP_INTERVAL_MS 250
#define MAX_REBALANCE_CHANGES 1000

struct controller {
    /* configuration, immutable after start */
    int32_t node_id;
    struct command_defaults defaults;
    unsigned election_timeout_ms, heartbeat_timeout_ms, snapshot_threshold, snapshot_trailing;
    controller_image_listener_fn on_image;
    void *on_image_arg;
    struct quorum quorum;
    char dir[PATH_MAX];
    char address[QUORUM_ADDRESS_MAX]; /* raft address of this node */
    char bind[QUORUM_ADDRESS_MAX];    /* "" = bind `address` */
    char endpoint_host[256];          /* Kafka-protocol endpoint; "" = none */
    int32_t endpoint_port;

    pthread_t thread;

    /* `lock` guards the start handshake, the submission queue and `stopping`. */
    pthread_mutex_t lock;
    pthread_cond_t started_cond;
    int start_state; /* 0 starting, 1 running, <0 failed */
    char start_err[PATH_MAX + 512];
    struct command *queue_head, *queue_tail;
    bool stopping;

    /* published state, read by any thread */
    struct image_cell cell;
    atomic_int leader_id;
    atomic_bool active;

    /* controller thread only */
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t timer;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    bool raft_initialized;
    bool closing;      /* stop requested: no new proposals */
    bool raft_closing; /* raft_close called */
    /* raft_uv's close, wrapped so that libraft's close callback runs once (see io_close). */
    void (*uv_io_close)(struct raft_io *io, raft_io_close_cb cb);
    raft_io_close_cb io_close_cb;
    bool io_closed;
    uint64_t close_deadline;
    unsigned idle_ticks; /* consecutive 5 ms closing ticks with raft_idle() */
    struct metadata_image *image;
    struct command *pending_head, *pending_tail;
    unsigned in_flight;
    bool barrier_in_flight;
    struct raft_barrier barrier;
    bool observer;         /* broker-only: a standby, never bootstraps */
    bool change_in_flight; /* a raft configuration change (standby reconcile) */
    struct raft_change change;
    raft_term active_term;
    /* broker sessions and the housekeeping they drive (active controller only) */
    struct liveness live;
    bool unclean_leader_election;
    bool auto_leader_rebalance;
    unsigned imbalance_check_ms;
    uint64_t next_sweep_ms, next_rebalance_ms;
    bool internal_busy; /* a fence or rebalance command is pending or in flight */

    /* raft state for DescribeQuorum, copied on every tick; guarded by `lock` */
    struct {
        int32_t leader_id;
        int32_t term;
        int64_t commit;
        size_t n;
        struct controller_voter_state voters[CONTROLLER_MAX_QUORUM_MEMBERS];
    } qs;
};

/* ---------- image publication ---------- */

/* Makes `next` (caller's reference, now owned) the current image and tells the listener. */
static void publish(struct controller *ctl, struct metadata_image *next)
{
    struct metadata_image *prev = ctl->image;
    ctl->image = next;
    image_cell_publish(&ctl->cell, metadata_image_ref(next));
    if (ctl->on_image)
        ctl->on_image(ctl->on_image_arg, prev, next);
    metadata_image_release(prev);
}

const struct metadata_image *metadata_image_acquire(struct controller *ctl)
{
    return image_cell_acquire(&ctl->cell);
}

/* ---------- FSM ---------- */

/*
 * Applies one committed batch. A batch this node cannot decode (written by a newer version) or
 * a record that does not fit is skipped, identically on every node; running out of memory
 * half-way would make this replica diverge, so it aborts instead.
 */
static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct controller *ctl = fsm->data;
    *result = NULL;
    struct metadata_batch batch;
    int rc = metadata_batch_decode_padded(buf->base, buf->len, &batch);
    if (rc == -EBADMSG) {
        logger_error(LOG_SUB, "skipping undecodable metadata entry %llu (%zu bytes)",
                     raft_last_applied(&ctl->raft) + 1, buf->len);
        return 0;
    }
    struct metadata_image *next = rc == 0 ? image_clone(ctl->image) : NULL;
    for (size_t i = 0; next && i < batch.n_records; i++) {
        rc = image_apply(next, &batch.records[i]);
        if (rc > 0)
            logger_warn(LOG_SUB, "skipped %s record that does not fit the image",
                        metadata_record_type_name(batch.records[i].type));
        if (rc < 0)
            break;
    }
    if (next == NULL || rc < 0) {
        logger_error(LOG_SUB, "out of memory applying metadata entry; stopping");
        abort();
    }
    metadata_batch_free(&batch);
    next->version = raft_last_applied(&ctl->raft) + 1;
    publish(ctl, next);
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct controller *ctl = fsm->data;
    struct metadata_buf out = {0};
    if (image_encode(ctl->image, &out) != 0) {
        metadata_buf_free(&out);
        return RAFT_NOMEM;
    }
    struct raft_buffer *b = raft_malloc(sizeof(*b));
    void *data = raft_malloc(out.len);
    if (b == NULL || data == NULL) {
        raft_free(b);
        raft_free(data);
        metadata_buf_free(&out);
        return RAFT_NOMEM;
    }
    memcpy(data, out.data, out.len);
    b->base = data;
    b->len = out.len;
    metadata_buf_free(&out);
    *bufs = b;
    *n_bufs = 1;
    logger_info(LOG_SUB, "snapshot of image version %llu: %zu bytes, %zu topics",
                (unsigned long long)ctl->image->version, b->len, ctl->image->n_topics);
    return 0;
}

/* fsm version 2: raft calls this once it no longer needs the snapshot buffers. */
static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    for (unsigned i = 0; *bufs && i < *n_bufs; i++)
        raft_free((*bufs)[i].base);
    raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* Replaces the image with the snapshot's; the FSM owns buf->base on success. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct controller *ctl = fsm->data;
    int err = 0;
    struct metadata_image *img = image_decode(buf->base, buf->len, &err);
    if (img == NULL) {
        logger_error(LOG_SUB, "cannot restore metadata snapshot (%zu bytes): %s", buf->len,
                     strerror(-err));
        return err == -ENOMEM ? RAFT_NOMEM : RAFT_CORRUPT;
    }
    raft_free(buf->base);
    logger_info(LOG_SUB, "restored snapshot: image version %llu, %zu topics",
                (unsigned long long)img->version, img->n_topics);
    publish(ctl, img);
    return 0;
}

/* ---------- command pipeline ---------- */

static void complete(struct command *cmd)
{
    cmd->done(cmd->done_arg, &cmd->result);
    command_free(cmd);
}

static void fail_list(struct command *head, int16_t code, const char *message)
{
    while (head) {
        struct command *next = head->next;
        command_fail(head, code, message);
        complete(head);
        head = next;
    }
}

static void fail_pending(struct controller *ctl, int16_t code, const char *message)
{
    struct command *head = ctl->pending_head;
    ctl->pending_head = ctl->pending_tail = NULL;
    fail_list(head, code, message);
}

static void not_controller(struct controller *ctl)
{
    char msg[128];
    int32_t leader = atomic_load(&ctl->leader_id);
    snprintf(msg, sizeof(msg), "This node (%d) is not the active controller; the leader is %d",
             ctl->node_id, leader);
    fail_pending(ctl, KAFKA_ERR_NOT_CONTROLLER, msg);
}

static void pump(struct controller *ctl);

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct command *cmd = req->data;
    struct controller *ctl = cmd->ctl;
    ctl->in_flight--;
    if (status != 0) {
        if (!ctl->closing)
            logger_warn(LOG_SUB, "proposal failed: %s", raft_strerror(status));
        command_fail(cmd, KAFKA_ERR_NOT_CONTROLLER, raft_strerror(status));
    } else {
        cmd->result.image_version = ctl->image->version;
    }
    complete(cmd);
    /* A failed proposal is libraft failing its requests while it tears down the leader state
     * (leadership lost): raft_state() still says leader there, and a raft_barrier or
     * raft_apply from inside this callback reads the freed state (libraft 0.15: SEGV seen when
     * a paused active controller resumed). The timer's next tick pumps instead. */
    if (ctl->in_flight == 0 && status == 0)
        pump(ctl);
}

/*
 * Proposes the encoded batch for `cmd`. Returns 0 or a raft error (cmd not yet completed).
 *
 * The entry is zero-padded to a multiple of 8 bytes: libraft 0.15 writes an entry's data padded
 * to 8 bytes in its segment files but its loader advances by the unpadded length, so any other
 * length makes the log unreadable after a restart ("entries count ... in preamble is too high").
 */
static int propose(struct controller *ctl, struct command *cmd, const struct metadata_buf *out)
{
    size_t len = (out->len + 7) & ~(size_t)7;
    struct raft_buffer buf = {raft_calloc(1, len), len};
    if (buf.base == NULL)
        return RAFT_NOMEM;
    memcpy(buf.base, out->data, out->len);
    cmd->apply.data = cmd;
    int rv = raft_apply(&ctl->raft, &cmd->apply, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        return rv;
    }
    ctl->in_flight++;
    return 0;
}

/*
 * Validates and proposes one command. A failed proposal leaves the scratch image ahead of the
 * log, so the caller must stop validating against it (returns false).
 */
static bool process(struct controller *ctl, struct command *cmd, struct metadata_image *scratch)
{
    struct metadata_buf out = {0};
    metadata_batch_begin(&out);
    int n = command_validate(cmd, scratch, &ctl->defaults, &out);
    int rv = 0;
    if (n < 0) {
        command_fail(cmd, KAFKA_ERR_UNKNOWN_SERVER_ERROR, "Out of memory in the controller");
    } else if (n > 0) {
        rv = metadata_batch_finish(&out) == 0 ? propose(ctl, cmd, &out) : RAFT_NOMEM;
    }
    metadata_buf_free(&out);
    if (n > 0 && rv == 0)
        return true;
    if (rv != 0)
        command_fail(cmd, KAFKA_ERR_NOT_CONTROLLER, raft_strerror(rv));
    else
        cmd->result.image_version = ctl->image->version;
    complete(cmd);
    return n >= 0 && rv == 0;
}

/* A new active controller gives every registered broker a full session (as Kafka does). */
static void start_sessions(struct controller *ctl)
{
    uint64_t now = uv_now(&ctl->loop);
    liveness_clear(&ctl->live);
    for (size_t i = 0; i < ctl->image->n_brokers; i++)
        liveness_assume(&ctl->live, ctl->image->brokers[i].id, now);
    ctl->next_sweep_ms = now + SWEEP_INTERVAL_MS;
    ctl->next_rebalance_ms = now + ctl->imbalance_check_ms;
}

static void enqueue_internal(struct controller *ctl, struct command *cmd);

/* Records this node's Kafka-protocol endpoint (a no-op command when the image has it). */
static void register_endpoint(struct controller *ctl)
{
    if (ctl->endpoint_host[0] == '\0')
        return;
    enqueue_internal(
        ctl, command_new_register_controller(ctl->node_id, ctl->endpoint_host, ctl->endpoint_port));
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct controller *ctl = req->data;
    ctl->barrier_in_flight = false;
    /* A barrier still in flight when the close began: closing already failed what was
     * pending and nothing pumps any more, so an endpoint registered now would leak. */
    if (status == 0 && !ctl->closing && raft_state(&ctl->raft) == RAFT_LEADER) {
        ctl->active_term = ctl->raft.current_term;
        atomic_store(&ctl->active, true);
        start_sessions(ctl);
        register_endpoint(ctl);
        logger_info(LOG_SUB, "node %d is the active controller (term %llu, image version %llu)",
                    ctl->node_id, ctl->active_term, (unsigned long long)ctl->image->version);
    }
    if (status == 0) /* as in apply_cb: not from inside libraft's leader teardown */
        pump(ctl);
}

static bool is_active(struct controller *ctl)
{
    return raft_state(&ctl->raft) == RAFT_LEADER && ctl->active_term == ctl->raft.current_term;
}

static void ensure_barrier(struct controller *ctl)
{
    if (ctl->barrier_in_flight || ctl->closing)
        return;
    ctl->barrier.data = ctl;
    if (raft_barrier(&ctl->raft, &ctl->barrier, barrier_cb) == 0)
        ctl->barrier_in_flight = true;
}

static void close_raft(struct controller *ctl);

/*
 * True when libraft has nothing in progress that its close path mishandles: no proposal or
 * barrier in flight and no libuv request active on the loop (libraft's disk writes, segment
 * preparation and network writes are all libuv requests). active_reqs is a public field of
 * uv_loop_t; there is no accessor for it.
 */
static bool raft_idle(struct controller *ctl)
{
    return ctl->in_flight == 0 && !ctl->barrier_in_flight && !ctl->change_in_flight &&
           ctl->loop.active_reqs.count == 0;
}

static void pump(struct controller *ctl)
{
    if (ctl->closing)
        return; /* the closing timer decides when raft_close is safe */
    if (ctl->in_flight > 0 || ctl->pending_head == NULL)
        return;
    if (raft_state(&ctl->raft) != RAFT_LEADER) {
        not_controller(ctl);
        return;
    }
    if (!is_active(ctl)) {
        ensure_barrier(ctl);
        return;
    }
    struct metadata_image *scratch = image_clone(ctl->image);
    if (scratch == NULL)
        return; /* retried on the next tick */
    ctl->defaults.now_ms = uv_now(&ctl->loop);
    ctl->defaults.live = &ctl->live;
    bool ok = true;
    for (int i = 0; ok && i < MAX_COMMANDS_PER_BATCH && ctl->pending_head; i++) {
        struct command *cmd = ctl->pending_head;
        ctl->pending_head = cmd->next;
        if (ctl->pending_head == NULL)
            ctl->pending_tail = NULL;
        cmd->next = NULL;
        ok = process(ctl, cmd, scratch);
    }
    metadata_image_release(scratch);
    if (!ok)
        not_controller(ctl);
}

/* ---------- loop callbacks ---------- */

/*
 * libraft 0.15's raft_uv can report its close twice when a disk operation failed earlier (seen
 * when the metadata log's disk filled up and the next segment could not be prepared): libraft
 * then frees its state twice. raft_close reaches raft_uv through io->close, which we wrap so
 * libraft's callback runs exactly once.
 */
static void io_closed_once(struct raft_io *io)
{
    struct raft *raft = io->data;
    struct controller *ctl = raft->data;
    if (ctl->io_closed) {
        logger_warn(LOG_SUB, "libraft reported its I/O closed twice; ignoring the second");
        return;
    }
    ctl->io_closed = true;
    ctl->io_close_cb(io);
}

static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct raft *raft = io->data;
    struct controller *ctl = raft->data;
    ctl->io_close_cb = cb;
    ctl->uv_io_close(io, io_closed_once);
}

/*
 * raft_close is done; our handles go next. raft_uv_close/raft_uv_tcp_close free libraft's I/O
 * state and run only after the loop has drained (controller_main): libraft 0.15 can still have
 * segment work in the threadpool when it reports the close complete.
 */
static void close_handles_cb(struct raft *raft)
{
    struct controller *ctl = raft->data;
    uv_close((uv_handle_t *)&ctl->async, NULL);
    uv_close((uv_handle_t *)&ctl->timer, NULL);
}

static void free_raft_io(struct controller *ctl)
{
    raft_uv_close(&ctl->io);
    raft_uv_tcp_close(&ctl->transport);
}

/*
 * libraft 0.15 has two shutdown defects: raft_close while proposals are still being appended
 * dereferences NULL in its entry refcount table, and a disk write or segment preparation still
 * in the libuv threadpool at close time closes its writer twice (uv_poll_stop assertion,
 * canonical/raft#224). Kernel AIO writes are invisible to raft_idle(), so closing waits until
 * raft_idle() has held for CLOSE_IDLE_TICKS consecutive 5 ms ticks (or CLOSE_GRACE_MS have
 * passed) before calling raft_close. This narrows the window; it cannot close it.
 */
static void close_raft(struct controller *ctl)
{
    if (ctl->raft_closing)
        return;
    ctl->raft_closing = true;
    if (!raft_idle(ctl))
        logger_warn(LOG_SUB, "closing raft while busy (%u proposal(s) in flight)", ctl->in_flight);
    uv_timer_stop(&ctl->timer);
    raft_close(&ctl->raft, close_handles_cb);
}

static void timer_cb(uv_timer_t *handle);

static void begin_close(struct controller *ctl)
{
    if (ctl->closing)
        return;
    ctl->closing = true;
    ctl->close_deadline = uv_now(&ctl->loop) + CLOSE_GRACE_MS;
    atomic_store(&ctl->active, false);
    atomic_store(&ctl->leader_id, -1);
    fail_pending(ctl, KAFKA_ERR_NOT_CONTROLLER, "The controller is shutting down");
    uv_timer_start(&ctl->timer, timer_cb, 5, 5); /* poll for raft_idle() */
    pump(ctl);
}

static void async_cb(uv_async_t *handle)
{
    struct controller *ctl = handle->data;
    pthread_mutex_lock(&ctl->lock);
    struct command *head = ctl->queue_head, *tail = ctl->queue_tail;
    ctl->queue_head = ctl->queue_tail = NULL;
    bool stopping = ctl->stopping;
    pthread_mutex_unlock(&ctl->lock);
    if (head) {
        if (ctl->pending_tail)
            ctl->pending_tail->next = head;
        else
            ctl->pending_head = head;
        ctl->pending_tail = tail;
    }
    if (stopping)
        begin_close(ctl);
    else
        pump(ctl);
}

static void internal_done(void *arg, const struct controller_result *res)
{
    struct controller *ctl = arg;
    ctl->internal_busy = false;
    if (res->error_code != 0 && res->error_code != KAFKA_ERR_ELECTION_NOT_NEEDED && !ctl->closing)
        logger_warn(LOG_SUB, "internal command failed: %d %s", res->error_code,
                    res->error_message ? res->error_message : "");
}

/* Queues an internal command (controller thread); it runs in order with client commands. */
static void enqueue_internal(struct controller *ctl, struct command *cmd)
{
    if (cmd == NULL)
        return;
    cmd->ctl = ctl;
    cmd->done = internal_done;
    cmd->done_arg = ctl;
    if (ctl->pending_tail)
        ctl->pending_tail->next = cmd;
    else
        ctl->pending_head = cmd;
    ctl->pending_tail = cmd;
    ctl->internal_busy = true;
}

/*
 * Active controller only: fences the first broker whose session expired (one at a time: each
 * fence re-elects leaders against the image the previous one produced), then, every
 * leader.imbalance.check.interval, moves leadership back to preferred replicas.
 */
static void housekeeping(struct controller *ctl)
{
    uint64_t now = uv_now(&ctl->loop);
    if (ctl->internal_busy || now < ctl->next_sweep_ms)
        return;
    ctl->next_sweep_ms = now + SWEEP_INTERVAL_MS;
    for (size_t i = 0; i < ctl->image->n_brokers; i++) {
        const struct metadata_broker *b = &ctl->image->brokers[i];
        if (b->state == METADATA_BROKER_FENCED || liveness_alive(&ctl->live, b->id, now))
            continue;
        logger_warn(LOG_SUB, "broker %d missed its heartbeats for %llu ms: fencing it", b->id,
                    (unsigned long long)ctl->live.session_timeout_ms);
        enqueue_internal(ctl, command_new_fence_broker(b->id));
        return;
    }
    if (ctl->auto_leader_rebalance && now >= ctl->next_rebalance_ms) {
        ctl->next_rebalance_ms = now + ctl->imbalance_check_ms;
        enqueue_internal(ctl, command_new_elect_preferred(NULL, -1, MAX_REBALANCE_CHANGES));
    }
}

static void change_cb(struct raft_change *req, int status)
{
    struct controller *ctl = req->data;
    ctl->change_in_flight = false;
    if (status != 0 && !ctl->closing)
        logger_warn(LOG_SUB, "raft configuration change failed: %s", raft_strerror(status));
}

static const struct raft_server *raft_member(struct controller *ctl, int32_t id)
{
    for (unsigned i = 0; i < ctl->raft.configuration.n; i++)
        if (ctl->raft.configuration.servers[i].id == (raft_id)id)
            return &ctl->raft.configuration.servers[i];
    return NULL;
}

/*
 * Active controller: the next libraft change that brings the raft configuration in line with
 * the observers the image lists (see the top of this file). Voters are never touched.
 */
static void reconcile_standbys(struct controller *ctl)
{
    if (ctl->change_in_flight || ctl->closing)
        return;
    for (size_t i = 0; i < ctl->image->n_observers; i++) {
        const struct metadata_endpoint *o = &ctl->image->observers[i];
        if (quorum_find(&ctl->quorum, o->id) != NULL)
            continue;
        char address[QUORUM_ADDRESS_MAX];
        snprintf(address, sizeof(address), "%s:%d", o->host, o->port);
        const struct raft_server *srv = raft_member(ctl, o->id);
        int rv = -1;
        const char *what = NULL;
        ctl->change.data = ctl;
        if (srv == NULL) {
            rv = raft_add(&ctl->raft, &ctl->change, (raft_id)o->id, address, change_cb);
            what = "adding";
        } else if (strcmp(srv->address, address) != 0) {
            rv = raft_remove(&ctl->raft, &ctl->change, (raft_id)o->id, change_cb);
            what = "removing (its address changed)";
        } else if (srv->role == RAFT_SPARE) {
            rv = raft_assign(&ctl->raft, &ctl->change, (raft_id)o->id, RAFT_STANDBY, change_cb);
            what = "making a standby of";
        } else {
            continue;
        }
        if (rv == 0) {
            ctl->change_in_flight = true;
            logger_info(LOG_SUB, "metadata quorum: %s broker-only node %d at %s", what, o->id,
                        address);
        } else if (rv != RAFT_CANTCHANGE) {
            logger_warn(LOG_SUB, "metadata quorum: %s node %d failed: %s", what, o->id,
                        raft_strerror(rv));
        }
        return;
    }
}

/* Copies what DescribeQuorum reports; libraft's state is only readable on this thread. */
static void copy_quorum_state(struct controller *ctl)
{
    pthread_mutex_lock(&ctl->lock);
    raft_id lid = 0;
    const char *addr = NULL;
    raft_leader(&ctl->raft, &lid, &addr);
    ctl->qs.leader_id = lid ? (int32_t)lid : -1;
    ctl->qs.term = (int32_t)ctl->raft.current_term;
    ctl->qs.commit = (int64_t)ctl->raft.commit_index;
    ctl->qs.n = 0;
    bool leader = raft_state(&ctl->raft) == RAFT_LEADER;
    for (unsigned i = 0; i < ctl->raft.configuration.n && ctl->qs.n < CONTROLLER_MAX_QUORUM_MEMBERS;
         i++) {
        const struct raft_server *srv = &ctl->raft.configuration.servers[i];
        if (srv->role == RAFT_SPARE)
            continue;
        int64_t leo = -1;
        if (leader && ctl->raft.leader_state.progress)
            leo = (int64_t)ctl->raft.leader_state.progress[i].match_index;
        if (srv->id == (raft_id)ctl->node_id)
            leo = (int64_t)raft_last_index(&ctl->raft);
        ctl->qs.voters[ctl->qs.n++] =
            (struct controller_voter_state){(int32_t)srv->id, leo, srv->role == RAFT_STANDBY};
    }
    pthread_mutex_unlock(&ctl->lock);
}

/* Publishes leadership for other threads and reacts to becoming or ceasing to be leader. */
static void timer_cb(uv_timer_t *handle)
{
    struct controller *ctl = handle->data;
    if (ctl->closing) {
        ctl->idle_ticks = raft_idle(ctl) ? ctl->idle_ticks + 1 : 0;
        if (ctl->idle_ticks >= CLOSE_IDLE_TICKS || uv_now(&ctl->loop) >= ctl->close_deadline)
            close_raft(ctl);
        return;
    }
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(&ctl->raft, &id, &address);
    atomic_store(&ctl->leader_id, id ? (int32_t)id : -1);
    bool active = is_active(ctl);
    atomic_store(&ctl->active, active);
    if (raft_state(&ctl->raft) == RAFT_LEADER && !active)
        ensure_barrier(ctl);
    copy_quorum_state(ctl);
    if (active) {
        housekeeping(ctl);
        reconcile_standbys(ctl);
    }
    pump(ctl);
}

/* ---------- start / stop ---------- */

static int make_dirs(const char *data_dir, char *dir, size_t len)
{
    if (mkdir(data_dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    if ((size_t)snprintf(dir, len, "%s/__cluster_metadata", data_dir) >= len)
        return -ENAMETOOLONG;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int bootstrap(struct controller *ctl)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    if (ctl->quorum.n == 0)
        rv = raft_configuration_add(&conf, (raft_id)ctl->node_id, ctl->address, RAFT_VOTER);
    for (size_t i = 0; rv == 0 && i < ctl->quorum.n; i++)
        rv = raft_configuration_add(&conf, (raft_id)ctl->quorum.voters[i].id,
                                    ctl->quorum.voters[i].address, RAFT_VOTER);
    if (rv == 0) {
        rv = raft_bootstrap(&ctl->raft, &conf);
        if (rv == RAFT_CANTBOOTSTRAP)
            rv = 0; /* already has state on disk */
        else if (rv == 0)
            logger_info(LOG_SUB, "bootstrapped metadata quorum with %u voter(s)", conf.n);
    }
    raft_configuration_close(&conf);
    return rv;
}

static void tune_raft(struct controller *ctl)
{
    raft_set_election_timeout(&ctl->raft, ctl->election_timeout_ms);
    raft_set_heartbeat_timeout(&ctl->raft, ctl->heartbeat_timeout_ms);
    raft_set_snapshot_threshold(&ctl->raft, ctl->snapshot_threshold);
    raft_set_snapshot_trailing(&ctl->raft, ctl->snapshot_trailing);
    raft_set_pre_vote(&ctl->raft, true);
}

/* Sets up libraft on the loop; on failure everything set up so far is closed again. */
static int raft_setup(struct controller *ctl)
{
    int rv = raft_uv_tcp_init(&ctl->transport, &ctl->loop);
    if (rv != 0) {
        snprintf(ctl->start_err, sizeof(ctl->start_err), "raft transport: %s", raft_strerror(rv));
        return rv;
    }
    if (ctl->bind[0] && (rv = raft_uv_tcp_set_bind_address(&ctl->transport, ctl->bind)) != 0) {
        snprintf(ctl->start_err, sizeof(ctl->start_err), "bad controller.listener %s: %s",
                 ctl->bind, raft_strerror(rv));
        raft_uv_tcp_close(&ctl->transport);
        return rv;
    }
    rv = raft_uv_init(&ctl->io, &ctl->loop, ctl->dir, &ctl->transport);
    if (rv != 0) {
        snprintf(ctl->start_err, sizeof(ctl->start_err), "raft storage in %s: %s", ctl->dir,
                 ctl->io.errmsg);
        raft_uv_tcp_close(&ctl->transport);
        return rv;
    }
    ctl->uv_io_close = ctl->io.close;
    ctl->io.close = io_close;
    raft_uv_set_segment_size(&ctl->io, SEGMENT_SIZE);
    /* Never rename a segment it cannot read and carry on without its entries. */
    raft_uv_set_auto_recovery(&ctl->io, false);
    ctl->fsm = (struct raft_fsm){.version = 2,
                                 .data = ctl,
                                 .apply = fsm_apply,
                                 .snapshot = fsm_snapshot,
                                 .restore = fsm_restore,
                                 .snapshot_finalize = fsm_snapshot_finalize};
    rv = raft_init(&ctl->raft, &ctl->io, &ctl->fsm, (raft_id)ctl->node_id, ctl->address);
    if (rv != 0) {
        snprintf(ctl->start_err, sizeof(ctl->start_err), "raft init: %s", raft_errmsg(&ctl->raft));
        raft_uv_close(&ctl->io);
        raft_uv_tcp_close(&ctl->transport);
        return rv;
    }
    ctl->raft.data = ctl;
    ctl->raft_initialized = true;
    tune_raft(ctl);
    rv = ctl->observer ? 0 : bootstrap(ctl);
    if (rv == 0)
        rv = raft_start(&ctl->raft);
    if (rv != 0)
        snprintf(ctl->start_err, sizeof(ctl->start_err), "raft start: %s (%s)", raft_strerror(rv),
                 raft_errmsg(&ctl->raft));
    return rv;
}

static void report_start(struct controller *ctl, int state)
{
    pthread_mutex_lock(&ctl->lock);
    ctl->start_state = state;
    pthread_cond_signal(&ctl->started_cond);
    pthread_mutex_unlock(&ctl->lock);
}

static void *controller_main(void *arg)
{
    struct controller *ctl = arg;
    /*
     * A write to a voter that has gone away raises SIGPIPE on the writing thread; with it
     * blocked here the write fails with EPIPE and libraft reconnects, whatever the process's
     * disposition for SIGPIPE is.
     */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    int rv = raft_setup(ctl);
    if (rv != 0) {
        logger_error(LOG_SUB, "%s", ctl->start_err);
        if (ctl->raft_initialized) {
            ctl->closing = ctl->raft_closing = true;
            raft_close(&ctl->raft, close_handles_cb);
        } else {
            uv_close((uv_handle_t *)&ctl->async, NULL);
            uv_close((uv_handle_t *)&ctl->timer, NULL);
        }
        uv_run(&ctl->loop, UV_RUN_DEFAULT);
        if (ctl->raft_initialized)
            free_raft_io(ctl);
        uv_loop_close(&ctl->loop);
        report_start(ctl, -EIO);
        return NULL;
    }
    uv_timer_start(&ctl->timer, timer_cb, ctl->heartbeat_timeout_ms, ctl->heartbeat_timeout_ms);
    logger_info(LOG_SUB, "node %d controller started at %s (data in %s)", ctl->node_id,
                ctl->address, ctl->dir);
    report_start(ctl, 1);
    uv_run(&ctl->loop, UV_RUN_DEFAULT);
    free_raft_io(ctl);
    if (uv_loop_close(&ctl->loop) != 0)
        logger_error(LOG_SUB, "controller loop closed with live handles");
    return NULL;
}

/* Copies and checks the configuration; returns 0 or -EINVAL with the reason in err. */
static int configure(struct controller *ctl, const struct controller_config *cfg, char *err,
                     size_t errlen)
{
    if (cfg->node_id <= 0 || cfg->data_dir == NULL) {
        snprintf(err, errlen, "controller: node.id must be > 0 and a data dir given");
        return -EINVAL;
    }
    ctl->node_id = cfg->node_id;
    int rc = quorum_parse(cfg->quorum_voters, &ctl->quorum, err, errlen);
    if (rc)
        return rc;
    const struct quorum_voter *self = quorum_find(&ctl->quorum, cfg->node_id);
    const char *listener = cfg->listener && cfg->listener[0] ? cfg->listener : NULL;
    ctl->observer = cfg->observer;
    if (cfg->observer && (self != NULL || ctl->quorum.n == 0 || listener == NULL)) {
        snprintf(err, errlen,
                 "controller: a broker-only node (%d) must not be one of "
                 "controller.quorum.voters, which must be set, and needs a metadata listener",
                 cfg->node_id);
        return -EINVAL;
    }
    if (!cfg->observer && ctl->quorum.n > 0 && self == NULL) {
        snprintf(err, errlen,
                 "controller: node.id %d is not in controller.quorum.voters (a node with the "
                 "controller role is a voter)",
                 cfg->node_id);
        return -EINVAL;
    }
    snprintf(ctl->address, sizeof(ctl->address), "%s",
             self ? self->address : (listener ? listener : "127.0.0.1:0"));
    if (self && listener)
        snprintf(ctl->bind, sizeof(ctl->bind), "%s", listener);
    ctl->defaults.num_partitions =
        cfg->default_num_partitions > 0 ? cfg->default_num_partitions : 1;
    ctl->defaults.replication_factor =
        cfg->default_replication_factor > 0 ? cfg->default_replication_factor : 1;
    ctl->election_timeout_ms =
        cfg->election_timeout_ms ? cfg->election_timeout_ms : DEFAULT_ELECTION_TIMEOUT_MS;
    ctl->heartbeat_timeout_ms =
        cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : DEFAULT_HEARTBEAT_TIMEOUT_MS;
    ctl->snapshot_threshold =
        cfg->snapshot_threshold ? cfg->snapshot_threshold : DEFAULT_SNAPSHOT_THRESHOLD;
    ctl->snapshot_trailing =
        cfg->snapshot_trailing ? cfg->snapshot_trailing : DEFAULT_SNAPSHOT_TRAILING;
    ctl->on_image = cfg->on_image;
    ctl->on_image_arg = cfg->on_image_arg;
    if (cfg->endpoint_host)
        snprintf(ctl->endpoint_host, sizeof(ctl->endpoint_host), "%s", cfg->endpoint_host);
    ctl->endpoint_port = cfg->endpoint_port;
    ctl->unclean_leader_election = cfg->unclean_leader_election;
    ctl->defaults.unclean_leader_election = cfg->unclean_leader_election;
    ctl->auto_leader_rebalance = cfg->auto_leader_rebalance;
    ctl->imbalance_check_ms = cfg->leader_imbalance_check_ms ? cfg->leader_imbalance_check_ms
                                                             : DEFAULT_IMBALANCE_CHECK_MS;
    liveness_init(&ctl->live, cfg->broker_session_timeout_ms ? cfg->broker_session_timeout_ms
                                                             : DEFAULT_SESSION_TIMEOUT_MS);
    rc = make_dirs(cfg->data_dir, ctl->dir, sizeof(ctl->dir));
    if (rc) {
        snprintf(err, errlen, "controller: cannot create %s/__cluster_metadata: %s", cfg->data_dir,
                 strerror(-rc));
        return rc;
    }
    return 0;
}

static void controller_free(struct controller *ctl)
{
    image_cell_destroy(&ctl->cell);
    metadata_image_release(ctl->image);
    pthread_mutex_destroy(&ctl->lock);
    pthread_cond_destroy(&ctl->started_cond);
    free(ctl);
}

static int loop_setup(struct controller *ctl)
{
    int rc = uv_loop_init(&ctl->loop);
    if (rc)
        return rc;
    uv_async_init(&ctl->loop, &ctl->async, async_cb);
    uv_timer_init(&ctl->loop, &ctl->timer);
    ctl->async.data = ctl;
    ctl->timer.data = ctl;
    return 0;
}

int controller_start(const struct controller_config *cfg, struct controller **out, char *err,
                     size_t errlen)
{
    struct controller *ctl = calloc(1, sizeof(*ctl));
    if (ctl == NULL)
        return -ENOMEM;
    pthread_mutex_init(&ctl->lock, NULL);
    pthread_cond_init(&ctl->started_cond, NULL);
    atomic_init(&ctl->leader_id, -1);
    atomic_init(&ctl->active, false);
    ctl->image = image_new();
    if (ctl->image == NULL) {
        controller_free(ctl);
        return -ENOMEM;
    }
    image_cell_init(&ctl->cell, metadata_image_ref(ctl->image));
    int rc = configure(ctl, cfg, err, errlen);
    if (rc == 0 && loop_setup(ctl) != 0)
        rc = -ENOMEM;
    if (rc == 0 && pthread_create(&ctl->thread, NULL, controller_main, ctl) != 0) {
        uv_close((uv_handle_t *)&ctl->async, NULL);
        uv_close((uv_handle_t *)&ctl->timer, NULL);
        uv_run(&ctl->loop, UV_RUN_DEFAULT);
        uv_loop_close(&ctl->loop);
        rc = -EAGAIN;
    }
    if (rc != 0) {
        controller_free(ctl);
        return rc;
    }
    pthread_mutex_lock(&ctl->lock);
    while (ctl->start_state == 0)
        pthread_cond_wait(&ctl->started_cond, &ctl->lock);
    pthread_mutex_unlock(&ctl->lock);
    if (ctl->start_state < 0) {
        snprintf(err, errlen, "controller: %s", ctl->start_err);
        pthread_join(ctl->thread, NULL);
        controller_free(ctl);
        return -EIO;
    }
    *out = ctl;
    return 0;
}

void controller_stop(struct controller *ctl)
{
    if (ctl == NULL)
        return;
    pthread_mutex_lock(&ctl->lock);
    ctl->stopping = true;
    pthread_mutex_unlock(&ctl->lock);
    uv_async_send(&ctl->async);
    pthread_join(ctl->thread, NULL);
    /* Commands queued after the loop's last drain never reached it, and anything a callback
     * left pending on the loop side after the close began is failed here too. */
    fail_pending(ctl, KAFKA_ERR_NOT_CONTROLLER, "The controller is shutting down");
    fail_list(ctl->queue_head, KAFKA_ERR_NOT_CONTROLLER, "The controller is shutting down");
    controller_free(ctl);
}

bool controller_is_active(struct controller *ctl)
{
    return atomic_load(&ctl->active);
}

int32_t controller_leader_id(struct controller *ctl)
{
    return atomic_load(&ctl->leader_id);
}

/* ---------- submission ---------- */

static int submit(struct controller *ctl, struct command *cmd, controller_done_fn done, void *arg)
{
    if (cmd == NULL)
        return -ENOMEM;
    cmd->ctl = ctl;
    cmd->done = done;
    cmd->done_arg = arg;
    pthread_mutex_lock(&ctl->lock);
    if (ctl->stopping) {
        pthread_mutex_unlock(&ctl->lock);
        command_free(cmd);
        return -ESHUTDOWN;
    }
    if (ctl->queue_tail)
        ctl->queue_tail->next = cmd;
    else
        ctl->queue_head = cmd;
    ctl->queue_tail = cmd;
    pthread_mutex_unlock(&ctl->lock);
    uv_async_send(&ctl->async);
    return 0;
}

int controller_create_topics(struct controller *ctl, const struct controller_new_topic *topics,
                             size_t n, bool validate_only, controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_create_topics(topics, n, validate_only), done, arg);
}

int controller_delete_topics(struct controller *ctl, const struct controller_topic_ref *topics,
                             size_t n, controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_delete_topics(topics, n), done, arg);
}

int controller_create_partitions(struct controller *ctl,
                                 const struct controller_partition_increase *topics, size_t n,
                                 bool validate_only, controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_create_partitions(topics, n, validate_only), done, arg);
}

int controller_alter_configs(struct controller *ctl, const struct controller_config_alter *topics,
                             size_t n, bool incremental, bool validate_only,
                             controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_alter_configs(topics, n, incremental, validate_only), done, arg);
}

int controller_alter_client_quotas(struct controller *ctl,
                                   const struct controller_quota_alter *entries, size_t n,
                                   bool validate_only, controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_alter_client_quotas(entries, n, validate_only), done, arg);
}

int controller_alter_acls(struct controller *ctl, const struct controller_acl_change *changes,
                          size_t n, controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_alter_acls(changes, n), done, arg);
}

int controller_register_broker(struct controller *ctl,
                               const struct controller_broker_registration *reg,
                               controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_register_broker(reg), done, arg);
}

int controller_broker_heartbeat(struct controller *ctl, int32_t broker_id, int64_t broker_epoch,
                                int64_t metadata_offset, bool want_fence, bool want_shutdown,
                                controller_done_fn done, void *arg)
{
    struct command_heartbeat hb = {broker_id, broker_epoch, metadata_offset, want_fence,
                                   want_shutdown};
    return submit(ctl, command_new_broker_heartbeat(&hb), done, arg);
}

int controller_elect_preferred(struct controller *ctl, const char *topic, int32_t partition,
                               controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_elect_preferred(topic, partition, INT32_MAX), done, arg);
}

int controller_elect_leaders(struct controller *ctl, int8_t type,
                             const struct controller_partition_ref *parts, size_t n, bool all,
                             controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_elect_leaders(type, parts, n, all), done, arg);
}

int controller_alter_scram(struct controller *ctl, const struct controller_scram_change *changes,
                           size_t n, controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_alter_scram(changes, n), done, arg);
}

int controller_alter_reassignments(struct controller *ctl,
                                   const struct controller_reassignment *items, size_t n,
                                   controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_reassign(items, n), done, arg);
}

int controller_alter_partition(struct controller *ctl, const struct controller_alter_partition *req,
                               controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_alter_partition(req), done, arg);
}

size_t controller_quorum_state(struct controller *ctl, struct controller_voter_state *out,
                               size_t max, int32_t *leader_id, int32_t *leader_epoch,
                               int64_t *high_watermark)
{
    pthread_mutex_lock(&ctl->lock);
    size_t n = ctl->qs.n < max ? ctl->qs.n : max;
    memcpy(out, ctl->qs.voters, n * sizeof(*out));
    *leader_id = ctl->qs.leader_id;
    *leader_epoch = ctl->qs.term;
    *high_watermark = ctl->qs.commit;
    pthread_mutex_unlock(&ctl->lock);
    return n;
}

int controller_allocate_producer_ids(struct controller *ctl, int32_t broker_id,
                                     controller_done_fn done, void *arg)
{
    return submit(ctl, command_new_allocate_producer_ids(broker_id), done, arg);
}
