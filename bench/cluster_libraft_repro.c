/*
 * Minimal reproducer for a libraft 0.15.0 (Debian 12) defect: a log entry whose length is not
 * a multiple of 8 bytes is written fine, but after a restart raft_start fails with
 * "load closed segment ...: entries count N in preamble is too high" (or, with auto-recovery
 * on, the segment is renamed corrupt-* and committed entries silently vanish).
 *
 *   cc -o /tmp/repro bench/cluster_libraft_repro.c -lraft -luv && /tmp/repro 20   # fails
 *   /tmp/repro 24                                                                   # works
 *
 * Gregor's controller pads every entry to 8 bytes (src/cluster/controller.c, propose()).
 */
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    struct raft_apply req;
    uv_timer_t timer;
    int applied;
};

static int apply_cb_fsm(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    ((struct node *)fsm->data)->applied++;
    *result = NULL;
    return 0;
}

static void closed(struct raft *r)
{
    struct node *n = r->data;
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->transport);
}

static void close_later(uv_timer_t *t)
{
    struct node *n = t->data;
    uv_close((uv_handle_t *)t, NULL);
    raft_close(&n->raft, closed);
}

/*
 * Closing right here, inside the apply callback, instead aborts in uv_poll_stop
 * ("!uv__is_closing(handle)", canonical/raft#224): the second defect Gregor works around.
 */
static void applied(struct raft_apply *req, int status, void *result)
{
    struct node *n = req->data;
    printf("apply status %d\n", status);
    uv_timer_init(&n->loop, &n->timer);
    n->timer.data = n;
    uv_timer_start(&n->timer, close_later, 200, 0);
}

/* Starts a one-voter node in dir; proposes one entry of `len` bytes if len > 0. */
static int run(const char *dir, size_t len)
{
    struct node n;
    memset(&n, 0, sizeof(n));
    uv_loop_init(&n.loop);
    raft_uv_tcp_init(&n.transport, &n.loop);
    raft_uv_init(&n.io, &n.loop, dir, &n.transport);
    raft_uv_set_auto_recovery(&n.io, false);
    n.fsm = (struct raft_fsm){.version = 1, .data = &n, .apply = apply_cb_fsm};
    raft_init(&n.raft, &n.io, &n.fsm, 1, "127.0.0.1:0");
    n.raft.data = &n;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    raft_configuration_add(&conf, 1, "127.0.0.1:0", RAFT_VOTER);
    raft_bootstrap(&n.raft, &conf); /* RAFT_CANTBOOTSTRAP on the second run */
    raft_configuration_close(&conf);
    int rv = raft_start(&n.raft);
    if (rv != 0) {
        printf("raft_start: %s\n", raft_errmsg(&n.raft));
        raft_close(&n.raft, closed);
    } else if (len > 0) {
        struct raft_buffer buf = {raft_calloc(1, len), len};
        n.req.data = &n;
        /* single voter: leader after the first tick */
        while (raft_state(&n.raft) != RAFT_LEADER)
            uv_run(&n.loop, UV_RUN_ONCE);
        raft_apply(&n.raft, &n.req, &buf, 1, applied);
    } else {
        raft_close(&n.raft, closed);
    }
    uv_run(&n.loop, UV_RUN_DEFAULT);
    uv_loop_close(&n.loop);
    return rv;
}

int main(int argc, char **argv)
{
    size_t len = argc > 1 ? (size_t)atoi(argv[1]) : 20;
    char dir[] = "/tmp/raft-repro-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    run(dir, len);
    run(dir, len);
    int rv = run(dir, 0);
    printf("entry length %zu: restart %s\n", len, rv == 0 ? "OK" : "FAILED");
    return rv == 0 ? 0 : 1;
}
