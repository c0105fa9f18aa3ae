/*
 * Kafka request and response headers (messages/RequestHeader.json, ResponseHeader.json).
 *
 * Request header v0: api_key, api_version, correlation_id; v1 adds client_id (nullable string,
 * always with an int16 length, even in flexible versions); v2 adds a tagged-field section.
 * Response header v0: correlation_id; v1 adds a tagged-field section.
 *
 * Which version applies depends on (api_key, api_version): see the *_header_version functions.
 * An unknown api_key is still readable (v1 layout), so the broker can answer or close.
 */
#ifndef GREGOR_PROTO_HEADER_H
#define GREGOR_PROTO_HEADER_H

#include "proto/codec.h"

struct kproto_request_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    struct kstr client_id;  /* len -1: null (also the value for header v0) */
    int16_t header_version; /* 0, 1 or 2: the layout that was decoded */
};

/*
 * Request header version for a request: 2 when api_version is flexible for that API, else 1;
 * 0 only for ControlledShutdown v0. Unknown keys get 1.
 */
int kproto_request_header_version(int16_t api_key, int16_t api_version);

/*
 * Response header version: 1 when api_version is flexible, else 0. ApiVersions responses
 * always use 0 (KIP-511: a client parses it before it knows what the broker supports).
 */
int kproto_response_header_version(int16_t api_key, int16_t api_version);

/*
 * Decodes a request header from the start of a frame (after the int32 size), choosing the
 * layout from the api key and version it finds. Leaves r at the body. Returns 0 or r->err.
 * client_id slices r's buffer. Unknown tags in v2 are skipped.
 */
int kproto_request_header_decode(struct kreader *r, struct kproto_request_header *h);

/* Encodes h in layout h->header_version (for clients and tests). Returns 0 or w->err. */
int kproto_request_header_encode(struct kwriter *w, const struct kproto_request_header *h);

/* Encodes a response header of the given version (0 or 1). Returns 0 or w->err. */
int kproto_response_header_encode(struct kwriter *w, int header_version, int32_t correlation_id);

/* Decodes a response header of the given version, skipping unknown tags. Returns 0 or r->err. */
int kproto_response_header_decode(struct kreader *r, int header_version, int32_t *correlation_id);

#endif
