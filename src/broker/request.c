/* Request completion helpers: response framing (size prefix + header + body) and closing. */
#include "broker/request.h"

#include <endian.h>
#include <string.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/quota.h"
#include "metrics/metrics.h"

/* Counts r as completed (before the net call that may free it). */
static void broker_req_done(struct broker_req *r, bool failed)
{
    if (r->quota != NULL)
        quota_charge_request(r);
    if (r->handler_pending != NULL)
        *r->handler_pending = false;
    metrics_count_request(r->b->metrics, net_worker_index(net_request_worker(r->nr)),
                          r->hdr.api_key, clock_mono_ns() - r->start_ns, failed || r->failed);
}

/*
 * A quota throttle (r->throttle_ms, the largest of the request's throttles) written into the
 * response's throttle_time_ms when that is the body's first field, as for most APIs: handlers
 * need not know about request quotas. Produce (whose field comes later) sets its own.
 */
static void broker_patch_throttle(struct broker_req *r, int16_t version, int hv,
                                  struct iochain *chain)
{
    if (r->throttle_ms <= 0)
        return;
    const struct kproto_api *api = kproto_api_lookup(r->hdr.api_key);
    if (api == NULL || api->throttle_first_from < 0 || version < api->throttle_first_from)
        return;
    size_t pos = 4 + 4 + (hv >= 1 ? 1 : 0);
    uint32_t be = htobe32((uint32_t)r->throttle_ms);
    if (chain->total >= pos + 4)
        iochain_patch(chain, pos, &be, 4);
}

void broker_reply_version(struct broker_req *r, int16_t version, kproto_encode_fn enc,
                          const void *msg)
{
    struct iochain chain;
    iochain_init(&chain);
    struct kwriter w;
    kw_init(&w, &chain);
    uint8_t *size = iochain_reserve(&chain, 4);
    int hv = kproto_response_header_version(r->hdr.api_key, version);
    kproto_response_header_encode(&w, hv, r->hdr.correlation_id);
    if (r->quota != NULL)
        quota_charge_request(r); /* before the body: its throttle time goes in */
    int rc = size ? enc(&w, version, msg) : -ENOMEM;
    if (rc != 0 || w.err != 0) {
        logger_error("broker", "cannot encode response to api %d v%d from %s: %d", r->hdr.api_key,
                     version, net_conn_peer(r->nr->conn), rc ? rc : w.err);
        iochain_free(&chain);
        broker_req_done(r, true);
        net_request_close(r->nr);
        return;
    }
    uint32_t be = htobe32((uint32_t)(chain.total - 4));
    iochain_patch(&chain, 0, &be, 4);
    broker_patch_throttle(r, version, hv, &chain);
    broker_req_done(r, false);
    if (r->close_after)
        net_request_reply_close(r->nr, &chain);
    else
        net_request_reply(r->nr, &chain);
}

void broker_reply(struct broker_req *r, kproto_encode_fn enc, const void *msg)
{
    broker_reply_version(r, r->hdr.api_version, enc, msg);
}

void broker_reply_raw(struct broker_req *r, const uint8_t *resp, size_t len)
{
    struct iochain chain;
    iochain_init(&chain);
    uint32_t be = htobe32((uint32_t)len);
    if (iochain_append(&chain, &be, 4) != 0 || iochain_append(&chain, resp, len) != 0) {
        iochain_free(&chain);
        broker_req_done(r, true);
        net_request_close(r->nr);
        return;
    }
    /* A relayed answer: this broker's throttle (recorded before relaying) goes in. */
    if (r->quota != NULL)
        quota_charge_request(r);
    broker_patch_throttle(r, r->hdr.api_version,
                          kproto_response_header_version(r->hdr.api_key, r->hdr.api_version),
                          &chain);
    broker_req_done(r, false);
    net_request_reply(r->nr, &chain);
}

void broker_reply_none(struct broker_req *r)
{
    broker_req_done(r, false);
    net_request_noreply(r->nr);
}

void broker_close(struct broker_req *r, const char *why)
{
    logger_warn("broker", "closing connection %s: %s (api %d v%d, correlation %d)",
                net_conn_peer(r->nr->conn), why, r->hdr.api_key, r->hdr.api_version,
                r->hdr.correlation_id);
    broker_req_done(r, true);
    net_request_close(r->nr);
}

int broker_decode(struct broker_req *r, kproto_decode_fn dec, void *out)
{
    int rc = dec(&r->body, r->hdr.api_version, out);
    if (rc != 0 || r->body.err != 0) {
        broker_close(r, "malformed request body");
        return rc ? rc : r->body.err;
    }
    return 0;
}

char *broker_str(struct broker_req *r, struct kstr s)
{
    return s.len < 0 ? NULL : arena_strndup(r->arena, s.ptr, (size_t)s.len);
}

char *broker_name(struct broker_req *r, struct kstr s)
{
    return arena_strndup(r->arena, s.len > 0 ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
}

struct kstr broker_kstr(struct broker_req *r, const char *s)
{
    if (s == NULL)
        return KSTR_NULL;
    size_t n = strlen(s);
    char *c = arena_strndup(r->arena, s, n);
    return c ? (struct kstr){c, (int32_t)n} : KSTR_NULL;
}

struct karray_int32 broker_ids(struct broker_req *r, const int32_t *ids, uint32_t n)
{
    struct karray_int32 a = {0, NULL};
    if (n == 0)
        return a;
    a.v = arena_alloc(r->arena, n * sizeof(int32_t));
    if (a.v == NULL)
        return a;
    memcpy(a.v, ids, n * sizeof(int32_t));
    a.n = (int32_t)n;
    return a;
}
