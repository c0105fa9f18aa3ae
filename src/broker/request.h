/*
 * A request as the broker's handlers see it: the decoded header, a reader positioned at the
 * body, and the network request it came from. Lives in the network request's arena, so it is
 * freed with it. Handlers run on the connection's worker thread and complete the request with
 * exactly one of broker_reply(), broker_reply_none() or broker_close().
 */
#ifndef GREGOR_BROKER_REQUEST_H
#define GREGOR_BROKER_REQUEST_H

#include "net/net.h"
#include "proto/codec.h"
#include "proto/gen/api_table.h"
#include "proto/header.h"

struct broker;

struct broker_req {
    struct broker *b;
    struct net_request *nr;
    struct kproto_request_header hdr;
    struct kreader body; /* positioned after the header */
    struct arena *arena;
    int64_t start_ns;    /* clock_mono_ns() at dispatch, for the latency metric */
    bool failed;         /* set by a handler whose response carries errors (metrics) */
    bool no_forward;     /* forwarding to the controller failed: handle locally */
    bool close_after;    /* close the connection once the response is written (SASL refusals) */
    int32_t throttle_ms; /* quota throttle time for the response's throttle_time_ms (quota.c) */
    /* request_percentage: the connection's quotas while the request's handler time is not yet
     * charged (quota_charge_request), and, while the handler runs, a flag of the dispatcher's
     * that completing r clears (r may not be touched after its handler if it completed). */
    struct quota_conn *quota;
    bool *handler_pending;
    const void *decoded; /* the decoded request, for per-partition callbacks (optional) */
};

typedef void (*broker_handler_fn)(struct broker_req *r);

/* Encodes msg with enc as the response to r (header chosen by api key/version) and sends it. */
void broker_reply(struct broker_req *r, kproto_encode_fn enc, const void *msg);

/* Same with an explicit response version (ApiVersions answers unsupported versions with v0). */
void broker_reply_version(struct broker_req *r, int16_t version, kproto_encode_fn enc,
                          const void *msg);

/* Sends `len` bytes of a complete response (header + body, no size prefix) as r's response. */
void broker_reply_raw(struct broker_req *r, const uint8_t *resp, size_t len);

/* Completes r without a response (produce acks=0). */
void broker_reply_none(struct broker_req *r);

/* Completes r by closing the connection (undecodable request); logs why. */
void broker_close(struct broker_req *r, const char *why);

/* Decodes r's body with dec into out (allocated by the caller); on failure closes the connection
 * with a log line and returns < 0 (r is then completed). */
int broker_decode(struct broker_req *r, kproto_decode_fn dec, void *out);

/* A NUL-terminated copy of s in r's arena; NULL for a null string (or out of memory). */
char *broker_str(struct broker_req *r, struct kstr s);

/* Like broker_str, but a null string becomes "" (topic names used as lookup keys). */
char *broker_name(struct broker_req *r, struct kstr s);

/* A copy of n ids in r's arena (an empty array when n is 0 or on allocation failure). */
struct karray_int32 broker_ids(struct broker_req *r, const int32_t *ids, uint32_t n);

/* A copy of the C string s in r's arena as a kstr; KSTR_NULL for NULL. */
struct kstr broker_kstr(struct broker_req *r, const char *s);

#endif
