/*
 * Request/response headers. Written by hand rather than generated: the header version is
 * chosen from the API table (with Kafka's two exceptions) and ClientId ignores the flexible
 * encoding, which is simpler to state here than to special-case in the generator.
 */
#include "proto/header.h"

#include "proto/gen/api_table.h"

int kproto_request_header_version(int16_t api_key, int16_t api_version)
{
    if (api_key == KPROTO_API_CONTROLLED_SHUTDOWN && api_version == 0)
        return 0;
    const struct kproto_api *api = kproto_api_lookup(api_key);
    if (api == NULL || api->first_flexible < 0)
        return 1;
    return api_version >= api->first_flexible ? 2 : 1;
}

int kproto_response_header_version(int16_t api_key, int16_t api_version)
{
    if (api_key == KPROTO_API_API_VERSIONS)
        return 0;
    const struct kproto_api *api = kproto_api_lookup(api_key);
    if (api == NULL || api->first_flexible < 0)
        return 0;
    return api_version >= api->first_flexible ? 1 : 0;
}

int kproto_request_header_decode(struct kreader *r, struct kproto_request_header *h)
{
    h->api_key = kr_int16(r);
    h->api_version = kr_int16(r);
    h->correlation_id = kr_int32(r);
    h->client_id = KSTR_NULL;
    h->header_version = (int16_t)kproto_request_header_version(h->api_key, h->api_version);
    if (h->header_version >= 1)
        h->client_id = kr_string(r, false, true);
    if (h->header_version >= 2)
        kr_skip_tags(r);
    return r->err;
}

int kproto_request_header_encode(struct kwriter *w, const struct kproto_request_header *h)
{
    kw_int16(w, h->api_key);
    kw_int16(w, h->api_version);
    kw_int32(w, h->correlation_id);
    if (h->header_version >= 1)
        kw_string(w, h->client_id, false, true);
    if (h->header_version >= 2)
        kw_uvarint(w, 0);
    return w->err;
}

int kproto_response_header_encode(struct kwriter *w, int header_version, int32_t correlation_id)
{
    kw_int32(w, correlation_id);
    if (header_version >= 1)
        kw_uvarint(w, 0);
    return w->err;
}

int kproto_response_header_decode(struct kreader *r, int header_version, int32_t *correlation_id)
{
    *correlation_id = kr_int32(r);
    if (header_version >= 1)
        kr_skip_tags(r);
    return r->err;
}
