/*
 * Hand-written byte vectors, checked byte for byte in both directions: these catch mistakes
 * that a round trip through our own encoder and decoder cannot (both sides wrong the same way).
 */
#include "test.h"

#include "proto/codec.h"
#include "proto/gen/api_versions.h"
#include "proto/gen/metadata.h"
#include "proto/gen/produce.h"
#include "proto/header.h"

struct enc {
    struct iochain ch;
    struct kwriter w;
    uint8_t buf[4096];
    size_t len;
};

static void enc_begin(struct enc *e)
{
    iochain_init(&e->ch);
    kw_init(&e->w, &e->ch);
}

/* Flattens what was written; returns 0 or the writer's error. */
static int enc_end(struct enc *e)
{
    int err = e->w.err;
    e->len = e->ch.total;
    if (err == 0 && (e->len > sizeof(e->buf) || iochain_flatten(&e->ch, e->buf) != 0))
        err = -EIO;
    iochain_free(&e->ch);
    return err;
}

#define CHECK_BYTES(e, vec)                                                                        \
    do {                                                                                           \
        CHECK_EQ_INT((e)->len, sizeof(vec));                                                       \
        CHECK_MEM((e)->buf, vec, sizeof(vec));                                                     \
    } while (0)

static int str_is(struct kstr s, const char *lit)
{
    return s.len == (int32_t)strlen(lit) && memcmp(s.ptr, lit, (size_t)s.len) == 0;
}

/* ---- ApiVersions ---------------------------------------------------------------------------- */

/* Request header v1 (key 18, v0, correlation 1, client "abc") and an empty v0 body. */
static const uint8_t api_versions_v0_request[] = {
    0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x03, 'a', 'b', 'c',
};

TEST(test_proto_api_versions_v0_request)
{
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    kr_init(&r, api_versions_v0_request, sizeof(api_versions_v0_request), &a);
    struct kproto_request_header h;
    CHECK_EQ_INT(kproto_request_header_decode(&r, &h), 0);
    CHECK_EQ_INT(h.api_key, 18);
    CHECK_EQ_INT(h.api_version, 0);
    CHECK_EQ_INT(h.correlation_id, 1);
    CHECK_EQ_INT(h.header_version, 1);
    CHECK(str_is(h.client_id, "abc"));
    struct kmsg_api_versions_request req;
    CHECK_EQ_INT(kmsg_api_versions_request_decode(&r, 0, &req), 0);
    CHECK(r.p == r.end);

    struct enc e;
    enc_begin(&e);
    kproto_request_header_encode(&e.w, &h);
    kmsg_api_versions_request_encode(&e.w, 0, &req);
    CHECK_EQ_INT(enc_end(&e), 0);
    CHECK_BYTES(&e, api_versions_v0_request);
    arena_free(&a);
}

/* Header v2 (flexible: tagged section after the int16-length client id), compact body. */
static const uint8_t api_versions_v3_request[] = {
    0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, /* key 18, v3, correlation 7 */
    0x00, 0x03, 'a',  'b',  'c',                    /* client id: int16 length */
    0x00,                                           /* header tagged fields */
    0x07, 'g',  'r',  'e',  'g',  'o',  'r',        /* ClientSoftwareName (compact) */
    0x04, '1',  '.',  '0',                          /* ClientSoftwareVersion */
    0x00,                                           /* body tagged fields */
};

TEST(test_proto_api_versions_v3_request)
{
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    kr_init(&r, api_versions_v3_request, sizeof(api_versions_v3_request), &a);
    struct kproto_request_header h;
    CHECK_EQ_INT(kproto_request_header_decode(&r, &h), 0);
    CHECK_EQ_INT(h.header_version, 2);
    CHECK_EQ_INT(h.correlation_id, 7);
    struct kmsg_api_versions_request req;
    CHECK_EQ_INT(kmsg_api_versions_request_decode(&r, h.api_version, &req), 0);
    CHECK(r.p == r.end);
    CHECK(str_is(req.client_software_name, "gregor"));
    CHECK(str_is(req.client_software_version, "1.0"));
    /* slices point into the frame, no copies */
    CHECK((const uint8_t *)req.client_software_name.ptr == api_versions_v3_request + 15);

    struct enc e;
    enc_begin(&e);
    kproto_request_header_encode(&e.w, &h);
    kmsg_api_versions_request_encode(&e.w, 3, &req);
    CHECK_EQ_INT(enc_end(&e), 0);
    CHECK_BYTES(&e, api_versions_v3_request);
    arena_free(&a);
}

/* An unknown tag (9, three bytes) in the body's tagged section is skipped. */
TEST(test_proto_unknown_tagged_field_is_skipped)
{
    static const uint8_t body[] = {
        0x07, 'g',  'r', 'e', 'g', 'o', 'r', 0x04, '1', '.', '0', 0x02, /* two tagged fields */
        0x09, 0x03, 'x', 'y', 'z',                                      /* unknown tag 9 */
        0x7f, 0x00,                                                     /* unknown tag 127, empty */
    };
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    kr_init(&r, body, sizeof(body), &a);
    struct kmsg_api_versions_request req;
    CHECK_EQ_INT(kmsg_api_versions_request_decode(&r, 3, &req), 0);
    CHECK(r.p == r.end);
    CHECK(str_is(req.client_software_name, "gregor"));
    CHECK(str_is(req.client_software_version, "1.0"));

    /* a tag whose size runs past the frame is an error */
    static const uint8_t bad[] = {0x01, 'x', 0x01, 'y', 0x01, 0x09, 0x05, 'x'};
    kr_init(&r, bad, sizeof(bad), &a);
    CHECK_EQ_INT(kmsg_api_versions_request_decode(&r, 3, &req), -EBADMSG);
    arena_free(&a);
}

static const uint8_t api_versions_v0_response[] = {
    0x00, 0x00,                         /* ErrorCode */
    0x00, 0x00, 0x00, 0x02,             /* ApiKeys: 2 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, /* Produce 0-11 */
    0x00, 0x12, 0x00, 0x00, 0x00, 0x04, /* ApiVersions 0-4 */
};

static const uint8_t api_versions_v3_response[] = {
    0x00, 0x00,                                     /* ErrorCode */
    0x03,                                           /* ApiKeys: compact 2+1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x00,       /* Produce 0-11, no tags */
    0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x00,       /* ApiVersions 0-4, no tags */
    0x00, 0x00, 0x00, 0x00,                         /* ThrottleTimeMs */
    0x02,                                           /* two tagged fields */
    0x00, 0x08,                                     /* tag 0 SupportedFeatures, 8 bytes */
    0x02, 0x02, 'x',  0x00, 0x00, 0x00, 0x01, 0x00, /* [{x, 0, 1}] */
    0x01, 0x08,                                     /* tag 1 FinalizedFeaturesEpoch */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
};

static void fill_api_versions_response(struct kmsg_api_versions_response *resp,
                                       struct kmsg_api_versions_response_api_version *keys)
{
    kmsg_api_versions_response_init(resp);
    kmsg_api_versions_response_api_version_init(&keys[0]);
    kmsg_api_versions_response_api_version_init(&keys[1]);
    keys[0].api_key = 0;
    keys[0].max_version = 11;
    keys[1].api_key = 18;
    keys[1].max_version = 4;
    resp->api_keys.n = 2;
    resp->api_keys.v = keys;
}

TEST(test_proto_api_versions_v0_and_v3_response)
{
    struct kmsg_api_versions_response resp;
    struct kmsg_api_versions_response_api_version keys[2];
    struct kmsg_api_versions_response_supported_feature_key feat;
    fill_api_versions_response(&resp, keys);

    struct enc e;
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_api_versions_response_encode(&e.w, 0, &resp), 0);
    CHECK_EQ_INT(enc_end(&e), 0);
    CHECK_BYTES(&e, api_versions_v0_response);

    kmsg_api_versions_response_supported_feature_key_init(&feat);
    feat.name = KSTR_LIT("x");
    feat.max_version = 1;
    resp.supported_features.n = 1;
    resp.supported_features.v = &feat;
    resp.finalized_features_epoch = 5;
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_api_versions_response_encode(&e.w, 3, &resp), 0);
    CHECK_EQ_INT(enc_end(&e), 0);
    CHECK_BYTES(&e, api_versions_v3_response);

    /* and back */
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    struct kmsg_api_versions_response d;
    kr_init(&r, api_versions_v3_response, sizeof(api_versions_v3_response), &a);
    CHECK_EQ_INT(kmsg_api_versions_response_decode(&r, 3, &d), 0);
    CHECK(r.p == r.end);
    CHECK_EQ_INT(d.api_keys.n, 2);
    CHECK_EQ_INT(d.api_keys.v[1].api_key, 18);
    CHECK_EQ_INT(d.api_keys.v[1].max_version, 4);
    CHECK_EQ_INT(d.supported_features.n, 1);
    CHECK(str_is(d.supported_features.v[0].name, "x"));
    CHECK_EQ_INT(d.finalized_features_epoch, 5);
    CHECK_EQ_INT(d.finalized_features.n, 0); /* absent tag: default */
    CHECK(!d.zk_migration_ready);

    kr_init(&r, api_versions_v0_response, sizeof(api_versions_v0_response), &a);
    CHECK_EQ_INT(kmsg_api_versions_response_decode(&r, 0, &d), 0);
    CHECK(r.p == r.end);
    CHECK_EQ_INT(d.api_keys.n, 2);
    CHECK_EQ_INT(d.throttle_time_ms, 0);
    CHECK_EQ_INT(d.finalized_features_epoch, -1); /* not in v0: default */
    arena_free(&a);
}

/* ApiVersions responses always use response header v0, even when the body is flexible. */
TEST(test_proto_header_versions)
{
    CHECK_EQ_INT(kproto_response_header_version(18, 3), 0);
    CHECK_EQ_INT(kproto_response_header_version(18, 0), 0);
    CHECK_EQ_INT(kproto_request_header_version(18, 3), 2);
    CHECK_EQ_INT(kproto_request_header_version(18, 2), 1);
    CHECK_EQ_INT(kproto_request_header_version(7, 0), 0); /* ControlledShutdown v0 */
    CHECK_EQ_INT(kproto_request_header_version(7, 1), 1);
    CHECK_EQ_INT(kproto_request_header_version(7, 3), 2);
    CHECK_EQ_INT(kproto_request_header_version(3, 9), 2);
    CHECK_EQ_INT(kproto_request_header_version(3, 8), 1);
    CHECK_EQ_INT(kproto_response_header_version(3, 9), 1);
    CHECK_EQ_INT(kproto_response_header_version(3, 8), 0);
    CHECK_EQ_INT(kproto_request_header_version(17, 1), 1);  /* SaslHandshake: never flexible */
    CHECK_EQ_INT(kproto_request_header_version(999, 5), 1); /* unknown key: v1 layout */
    CHECK_EQ_INT(kproto_request_header_version(-1, 0), 1);
    CHECK_EQ_INT(kproto_response_header_version(999, 5), 0);
}

TEST(test_proto_unknown_api_key_header_is_readable)
{
    static const uint8_t frame[] = {0x03, 0xe7, 0x00, 0x05, 0x00, 0x00,
                                    0x00, 0x09, 0xff, 0xff, 0xde, 0xad};
    struct kreader r;
    kr_init(&r, frame, sizeof(frame), NULL);
    struct kproto_request_header h;
    CHECK_EQ_INT(kproto_request_header_decode(&r, &h), 0);
    CHECK_EQ_INT(h.api_key, 999);
    CHECK_EQ_INT(h.correlation_id, 9);
    CHECK_EQ_INT(h.client_id.len, -1); /* null client id */
    CHECK(r.p == frame + 10);
}

TEST(test_proto_response_header_v1_with_tagged_fields)
{
    static const uint8_t hdr[] = {
        0x00, 0x00, 0x00, 0x2a, /* correlation 42 */
        0x02,                   /* two tagged fields */
        0x05, 0x01, 0xff,       /* tag 5, one byte */
        0x07, 0x00,             /* tag 7, empty */
        0xbe, 0xef,             /* body */
    };
    struct kreader r;
    kr_init(&r, hdr, sizeof(hdr), NULL);
    int32_t corr = 0;
    CHECK_EQ_INT(kproto_response_header_decode(&r, 1, &corr), 0);
    CHECK_EQ_INT(corr, 42);
    CHECK(r.p == hdr + 10);

    struct enc e;
    enc_begin(&e);
    kproto_response_header_encode(&e.w, 1, 42);
    kproto_response_header_encode(&e.w, 0, 42);
    CHECK_EQ_INT(enc_end(&e), 0);
    static const uint8_t want[] = {0, 0, 0, 0x2a, 0x00, 0, 0, 0, 0x2a};
    CHECK_BYTES(&e, want);
}

TEST(test_proto_request_header_v2_skips_header_tags)
{
    static const uint8_t frame[] = {
        0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, /* Metadata v12 */
        0xff, 0xff,                                     /* null client id */
        0x01, 0x03, 0x02, 0xaa, 0xbb,                   /* header tag 3, two bytes */
        0x00, 0x01, 0x00, 0x00,                         /* body: null topics, true, false */
    };
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    kr_init(&r, frame, sizeof(frame), &a);
    struct kproto_request_header h;
    CHECK_EQ_INT(kproto_request_header_decode(&r, &h), 0);
    CHECK_EQ_INT(h.header_version, 2);
    CHECK(r.p == frame + 15);
    struct kmsg_metadata_request req;
    CHECK_EQ_INT(kmsg_metadata_request_decode(&r, h.api_version, &req), 0);
    CHECK(r.p == r.end);
    CHECK_EQ_INT(req.topics.n, -1);
    arena_free(&a);
}

/* ---- Metadata ------------------------------------------------------------------------------- */

static const uint8_t metadata_v0_request[] = {
    0x00, 0x00, 0x00, 0x01, 0x00, 0x03, 'f', 'o', 'o',
};

TEST(test_proto_metadata_v0_request)
{
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    kr_init(&r, metadata_v0_request, sizeof(metadata_v0_request), &a);
    struct kmsg_metadata_request req;
    CHECK_EQ_INT(kmsg_metadata_request_decode(&r, 0, &req), 0);
    CHECK(r.p == r.end);
    CHECK_EQ_INT(req.topics.n, 1);
    CHECK(str_is(req.topics.v[0].name, "foo"));
    CHECK(req.allow_auto_topic_creation); /* v4+ only: default true */

    struct enc e;
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_metadata_request_encode(&e.w, 0, &req), 0);
    CHECK_EQ_INT(enc_end(&e), 0);
    CHECK_BYTES(&e, metadata_v0_request);

    /* null topics ("all topics") exists from v1; in v0 it cannot be encoded */
    req.topics.n = -1;
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_metadata_request_encode(&e.w, 0, &req), -EINVAL);
    enc_end(&e);
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_metadata_request_encode(&e.w, 1, &req), 0);
    CHECK_EQ_INT(enc_end(&e), 0);
    static const uint8_t v1_null[] = {0xff, 0xff, 0xff, 0xff};
    CHECK_BYTES(&e, v1_null);
    /* and a null count in v0 is rejected by the decoder */
    kr_init(&r, v1_null, sizeof(v1_null), &a);
    CHECK_EQ_INT(kmsg_metadata_request_decode(&r, 0, &req), -EBADMSG);
    arena_free(&a);
}

static const uint8_t metadata_v0_response[] = {
    0x00, 0x00, 0x00, 0x01,                         /* Brokers: 1 */
    0x00, 0x00, 0x00, 0x01,                         /* NodeId 1 */
    0x00, 0x01, 'h',                                /* Host */
    0x00, 0x00, 0x23, 0x84,                         /* Port 9092 */
    0x00, 0x00, 0x00, 0x01,                         /* Topics: 1 */
    0x00, 0x00,                                     /* ErrorCode */
    0x00, 0x03, 'f',  'o',  'o',                    /* Name */
    0x00, 0x00, 0x00, 0x01,                         /* Partitions: 1 */
    0x00, 0x00,                                     /* ErrorCode */
    0x00, 0x00, 0x00, 0x00,                         /* PartitionIndex */
    0x00, 0x00, 0x00, 0x01,                         /* LeaderId */
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, /* ReplicaNodes [1] */
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, /* IsrNodes [1] */
};

TEST(test_proto_metadata_v0_response)
{
    struct kmsg_metadata_response resp;
    struct kmsg_metadata_response_broker broker;
    struct kmsg_metadata_response_topic topic;
    struct kmsg_metadata_response_partition part;
    int32_t one[1] = {1};

    kmsg_metadata_response_init(&resp);
    kmsg_metadata_response_broker_init(&broker);
    kmsg_metadata_response_topic_init(&topic);
    kmsg_metadata_response_partition_init(&part);
    broker.node_id = 1;
    broker.host = KSTR_LIT("h");
    broker.port = 9092;
    part.leader_id = 1;
    part.replica_nodes = (struct karray_int32){1, one};
    part.isr_nodes = (struct karray_int32){1, one};
    topic.name = KSTR_LIT("foo");
    topic.partitions.n = 1;
    topic.partitions.v = &part;
    resp.brokers.n = 1;
    resp.brokers.v = &broker;
    resp.topics.n = 1;
    resp.topics.v = &topic;

    struct enc e;
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_metadata_response_encode(&e.w, 0, &resp), 0);
    CHECK_EQ_INT(enc_end(&e), 0);
    CHECK_BYTES(&e, metadata_v0_response);

    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    struct kmsg_metadata_response d;
    kr_init(&r, metadata_v0_response, sizeof(metadata_v0_response), &a);
    CHECK_EQ_INT(kmsg_metadata_response_decode(&r, 0, &d), 0);
    CHECK(r.p == r.end);
    CHECK_EQ_INT(d.brokers.v[0].port, 9092);
    CHECK_EQ_INT(d.brokers.v[0].rack.len, -1);
    CHECK_EQ_INT(d.controller_id, -1);
    CHECK_EQ_INT(d.topics.v[0].partitions.v[0].leader_epoch, -1);
    CHECK_EQ_INT(d.topics.v[0].partitions.v[0].isr_nodes.n, 1);
    CHECK_EQ_INT(d.topics.v[0].partitions.v[0].isr_nodes.v[0], 1);
    CHECK_EQ_INT(d.topics.v[0].topic_authorized_operations, INT32_MIN);
    arena_free(&a);
}

TEST(test_proto_metadata_v12_request)
{
    static const uint8_t all_topics[] = {0x00, 0x01, 0x00, 0x00};
    static const uint8_t two_topics[] = {
        0x03,                                                                /* Topics: 2 */
        0,    0,    0,    0,   0,    0, 0, 0, 0, 0,  0,  0,  0,  0,  0,  0,  /* TopicId zero */
        0x04, 'f',  'o',  'o', 0x00,                                         /* Name, tags */
        1,    2,    3,    4,   5,    6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* TopicId */
        0x00, 0x00,                                                          /* Name null, tags */
        0x00, 0x01, 0x00, /* AllowAutoTopicCreation false, IncludeTopicAuthorizedOps, tags */
    };
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    struct kmsg_metadata_request req;

    kr_init(&r, all_topics, sizeof(all_topics), &a);
    CHECK_EQ_INT(kmsg_metadata_request_decode(&r, 12, &req), 0);
    CHECK(r.p == r.end);
    CHECK_EQ_INT(req.topics.n, -1);
    CHECK(req.allow_auto_topic_creation);
    CHECK(!req.include_topic_authorized_operations);

    kr_init(&r, two_topics, sizeof(two_topics), &a);
    CHECK_EQ_INT(kmsg_metadata_request_decode(&r, 12, &req), 0);
    CHECK(r.p == r.end);
    CHECK_EQ_INT(req.topics.n, 2);
    CHECK(str_is(req.topics.v[0].name, "foo"));
    CHECK(kproto_uuid_is_zero(req.topics.v[0].topic_id));
    CHECK_EQ_INT(req.topics.v[1].name.len, -1);
    CHECK_EQ_INT(req.topics.v[1].topic_id.b[15], 16);
    CHECK(!req.allow_auto_topic_creation);
    CHECK(req.include_topic_authorized_operations);

    struct enc e;
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_metadata_request_encode(&e.w, 12, &req), 0);
    CHECK_EQ_INT(enc_end(&e), 0);
    CHECK_BYTES(&e, two_topics);

    /* a null topic name is only valid from v10 */
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_metadata_request_encode(&e.w, 9, &req), -EINVAL);
    enc_end(&e);

    /* unknown tag inside an array element is skipped too */
    static const uint8_t nested_tag[] = {
        0x02, 0,    0,    0, 0,    0,   0,    0,    0,    0,    0,    0, 0,
        0,    0,    0,    0, 0x02, 'x', 0x01, 0x0a, 0x02, 0xaa, 0xbb, /* Name "x", tag 10 (2 bytes)
                                                                       */
        0x01, 0x00, 0x00,
    };
    kr_init(&r, nested_tag, sizeof(nested_tag), &a);
    CHECK_EQ_INT(kmsg_metadata_request_decode(&r, 12, &req), 0);
    CHECK(r.p == r.end);
    CHECK(str_is(req.topics.v[0].name, "x"));
    arena_free(&a);
}

/* ---- Produce -------------------------------------------------------------------------------- */

static const uint8_t produce_v3_request[] = {
    0xff, 0xff,             /* TransactionalId null */
    0xff, 0xff,             /* Acks -1 */
    0x00, 0x00, 0x75, 0x30, /* TimeoutMs 30000 */
    0x00, 0x00, 0x00, 0x01, /* TopicData: 1 */
    0x00, 0x01, 't',        /* Name */
    0x00, 0x00, 0x00, 0x01, /* PartitionData: 1 */
    0x00, 0x00, 0x00, 0x02, /* Index 2 */
    0x00, 0x00, 0x00, 0x04, /* Records: 4 bytes */
    0xde, 0xad, 0xbe, 0xef,
};

TEST(test_proto_produce_v3_request_records_are_slices)
{
    struct arena a;
    arena_init(&a, 0);
    struct kreader r;
    struct kmsg_produce_request req;
    kr_init(&r, produce_v3_request, sizeof(produce_v3_request), &a);
    CHECK_EQ_INT(kmsg_produce_request_decode(&r, 3, &req), 0);
    CHECK(r.p == r.end);
    CHECK_EQ_INT(req.transactional_id.len, -1);
    CHECK_EQ_INT(req.acks, -1);
    CHECK_EQ_INT(req.timeout_ms, 30000);
    CHECK_EQ_INT(req.topic_data.n, 1);
    CHECK(str_is(req.topic_data.v[0].name, "t"));
    const struct kmsg_produce_request_partition_produce_data *p =
        &req.topic_data.v[0].partition_data.v[0];
    CHECK_EQ_INT(p->index, 2);
    CHECK_EQ_INT(p->records.len, 4);
    CHECK(p->records.data == produce_v3_request + 27);
    CHECK(p->records.files == NULL);

    struct enc e;
    enc_begin(&e);
    CHECK_EQ_INT(kmsg_produce_request_encode(&e.w, 3, &req), 0);
    CHECK_EQ_INT(enc_end(&e), 0);
    CHECK_BYTES(&e, produce_v3_request);

    /* a records length past the end of the frame is rejected */
    uint8_t bad[sizeof(produce_v3_request)];
    memcpy(bad, produce_v3_request, sizeof(bad));
    bad[26] = 0x05;
    kr_init(&r, bad, sizeof(bad), &a);
    CHECK_EQ_INT(kmsg_produce_request_decode(&r, 3, &req), -EBADMSG);
    arena_free(&a);
}

TEST_MAIN
