/*
 * Configuration APIs: DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44).
 * Topic resources (type 2) are described with Kafka's sources and synonyms (topic override,
 * dynamic broker config, static broker property, default) and altered through the controller's
 * metadata log. Broker resources (type 4: a broker id, or "" for the cluster-wide default) hold
 * the dynamic broker configs (KIP-226), altered through the metadata log too and applied by
 * every broker at once (the topic settings they stand for are recomputed).
 */
#include <stdio.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/async.h"
#include "broker/forwarder.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/topic_settings.h"
#include "cluster/broker_dynamic.h"
#include "cluster/topic_config.h"
#include "broker/dynamic_threads.h"
#include "proto/gen/alter_configs.h"
#include "proto/gen/describe_configs.h"
#include "proto/gen/errors.h"
#include "proto/gen/incremental_alter_configs.h"

#define RESOURCE_TOPIC 2
#define RESOURCE_BROKER 4

static bool cfg_key_wanted(const struct karray_str *keys, const char *name)
{
    if (keys->n < 0)
        return true;
    for (int32_t i = 0; i < keys->n; i++)
        if ((size_t)keys->v[i].len == strlen(name) &&
            memcmp(keys->v[i].ptr, name, (size_t)keys->v[i].len) == 0)
            return true;
    return false;
}

static void
describe_topic_entry(struct broker_req *r, const struct metadata_image *img,
                     const struct metadata_topic *t, const struct topic_config_def *def,
                     bool synonyms,
                     struct kmsg_describe_configs_response_describe_configs_resource_result *o)
{
    struct topic_config_value v;
    struct topic_settings_source src = {&r->b->cfg, img};
    topic_config_resolve(def, metadata_topic_config(t, def->name), topic_settings_broker_lookup,
                         &src, &v);
    kmsg_describe_configs_response_describe_configs_resource_result_init(o);
    o->name = broker_kstr(r, def->name);
    o->value = broker_kstr(r, v.value);
    o->is_default = v.is_default;
    o->config_source = (int8_t)v.source;
    o->config_type = (int8_t)def->type;
    o->documentation = KSTR_NULL;
    if (!synonyms || v.n_synonyms == 0)
        return;
    o->synonyms.v = arena_calloc(r->arena, v.n_synonyms, sizeof(*o->synonyms.v));
    if (o->synonyms.v == NULL)
        return;
    o->synonyms.n = (int32_t)v.n_synonyms;
    for (unsigned i = 0; i < v.n_synonyms; i++) {
        o->synonyms.v[i].name = broker_kstr(r, v.synonyms[i].name);
        o->synonyms.v[i].value = broker_kstr(r, v.synonyms[i].value);
        o->synonyms.v[i].source = (int8_t)v.synonyms[i].source;
    }
}

static void describe_topic(struct broker_req *r, const struct metadata_image *img,
                           const struct kmsg_describe_configs_request_describe_configs_resource *rs,
                           bool synonyms,
                           struct kmsg_describe_configs_response_describe_configs_result *res)
{
    char *name = broker_name(r, rs->resource_name);
    const struct metadata_topic *t = name ? metadata_image_topic_by_name(img, name) : NULL;
    if (t == NULL) {
        res->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        res->error_message = broker_kstr(r, "Topic does not exist");
        return;
    }
    size_t n = topic_config_count();
    res->configs.v = arena_calloc(r->arena, n + 1, sizeof(*res->configs.v));
    if (res->configs.v == NULL)
        return;
    res->configs.n = 0;
    for (size_t i = 0; i < n; i++) {
        const struct topic_config_def *def = topic_config_at(i);
        if (cfg_key_wanted(&rs->configuration_keys, def->name))
            describe_topic_entry(r, img, t, def, synonyms, &res->configs.v[res->configs.n++]);
    }
}

static void
describe_broker_entry(struct broker_req *r, const char *name, const char *value, int8_t source,
                      bool read_only,
                      struct kmsg_describe_configs_response_describe_configs_resource_result *o)
{
    kmsg_describe_configs_response_describe_configs_resource_result_init(o);
    o->name = broker_kstr(r, name);
    o->value = broker_kstr(r, value);
    o->read_only = read_only;
    o->config_source = source;
    o->config_type = TOPIC_CONFIG_STRING;
    o->documentation = KSTR_NULL;
}

/* True for the broker properties that can change at run time (KIP-226): those a topic config
 * defaults from (Kafka's DynamicLogConfig). */
static bool broker_config_is_dynamic(const char *name)
{
    if (broker_dynamic_def(name) != NULL)
        return true;
    for (size_t i = 0; i < topic_config_count(); i++) {
        const char *syn = topic_config_at(i)->broker_synonym;
        if (syn && strcmp(syn, name) == 0)
            return true;
    }
    return false;
}

/* Dynamic keys of `set` that are no Gregor property (so the loop over the properties did not
 * list them) and that `shadow` does not set, appended with `source`. */
static void describe_broker_dynamic_only(
    struct broker_req *r, const struct kmsg_describe_configs_request_describe_configs_resource *rs,
    const struct metadata_broker_configs *set, int8_t source,
    const struct metadata_broker_configs *shadow,
    struct kmsg_describe_configs_response_describe_configs_result *res)
{
    char buf[1024];
    for (uint32_t i = 0; set && i < set->n_configs; i++) {
        const char *name = set->configs[i].name;
        bool shadowed = false;
        for (uint32_t j = 0; shadow && j < shadow->n_configs; j++)
            shadowed |= strcmp(shadow->configs[j].name, name) == 0;
        if (shadowed || !cfg_key_wanted(&rs->configuration_keys, name) ||
            config_describe(&r->b->cfg, name, buf, sizeof(buf)) == 0)
            continue;
        describe_broker_entry(r, name, set->configs[i].value, source, false,
                              &res->configs.v[res->configs.n++]);
    }
}

/*
 * A BROKER resource: "" lists the cluster-wide dynamic defaults (Kafka's
 * DYNAMIC_DEFAULT_BROKER_CONFIG); this broker's id lists every property with its effective
 * value: a dynamic per-broker value (DYNAMIC_BROKER_CONFIG), else the dynamic default, else the
 * static configuration (STATIC_BROKER_CONFIG). Another broker's id is Kafka's INVALID_REQUEST
 * (clients send it to that broker).
 */
static void
describe_broker(struct broker_req *r, const struct metadata_image *img,
                const struct kmsg_describe_configs_request_describe_configs_resource *rs,
                struct kmsg_describe_configs_response_describe_configs_result *res)
{
    char *rname = broker_name(r, rs->resource_name);
    char self[16];
    snprintf(self, sizeof(self), "%d", r->b->cfg.node_id);
    const struct metadata_broker_configs *dflt = metadata_image_broker_configs(img, -1);
    if (rname != NULL && rname[0] == '\0') {
        uint32_t n = dflt ? dflt->n_configs : 0;
        res->configs.v = arena_calloc(r->arena, n + 1, sizeof(*res->configs.v));
        if (res->configs.v == NULL)
            return;
        for (uint32_t i = 0; i < n; i++)
            if (cfg_key_wanted(&rs->configuration_keys, dflt->configs[i].name))
                describe_broker_entry(r, dflt->configs[i].name, dflt->configs[i].value,
                                      TOPIC_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER, false,
                                      &res->configs.v[res->configs.n++]);
        return;
    }
    if (rname == NULL || strcmp(rname, self) != 0) {
        res->error_code = KAFKA_ERR_INVALID_REQUEST;
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "Unexpected broker id, expected %s or empty string, but "
                 "received %s",
                 self, rname ? rname : "null");
        res->error_message = broker_kstr(r, msg);
        return;
    }
    const struct metadata_broker_configs *mine =
        metadata_image_broker_configs(img, r->b->cfg.node_id);
    size_t n = 0;
    while (config_property_name(n))
        n++;
    size_t extra = (dflt ? dflt->n_configs : 0) + (mine ? mine->n_configs : 0);
    res->configs.v = arena_calloc(r->arena, n + extra + 1, sizeof(*res->configs.v));
    if (res->configs.v == NULL)
        return;
    res->configs.n = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = config_property_name(i);
        if (!cfg_key_wanted(&rs->configuration_keys, name))
            continue;
        bool dyn = broker_config_is_dynamic(name);
        const char *v = metadata_image_broker_config(img, r->b->cfg.node_id, name);
        int8_t src = TOPIC_CONFIG_SOURCE_DYNAMIC_BROKER;
        if (v == NULL && (v = metadata_image_broker_config(img, -1, name)) != NULL)
            src = TOPIC_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER;
        char buf[1024];
        if (v == NULL) {
            if (config_describe(&r->b->cfg, name, buf, sizeof(buf)) != 0)
                continue;
            v = buf;
            src = TOPIC_CONFIG_SOURCE_STATIC_BROKER;
        }
        describe_broker_entry(r, name, v, src, !dyn, &res->configs.v[res->configs.n++]);
    }
    describe_broker_dynamic_only(r, rs, mine, TOPIC_CONFIG_SOURCE_DYNAMIC_BROKER, NULL, res);
    describe_broker_dynamic_only(r, rs, dflt, TOPIC_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER, mine,
                                 res);
}

/*
 * Kafka's checks: `op` (DESCRIBE_CONFIGS, ALTER_CONFIGS) on the topic, or on the cluster for a
 * BROKER resource. Returns the resource's error, 0 when allowed (or not a topic or broker).
 */
static int16_t config_resource_denied(struct broker_req *r, int8_t type, struct kstr name, int op)
{
    if (!broker_authorizer_on(r->b))
        return 0;
    if (type == RESOURCE_BROKER)
        return broker_authorize_cluster(r, op) ? 0 : KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED;
    if (type != RESOURCE_TOPIC)
        return 0;
    char *topic = broker_name(r, name);
    return topic && broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, topic, op)
               ? 0
               : KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
}

void handle_describe_configs(struct broker_req *r)
{
    struct kmsg_describe_configs_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_configs_request_decode, &req) != 0)
        return;
    struct kmsg_describe_configs_response resp;
    kmsg_describe_configs_response_init(&resp);
    int32_t n = req.resources.n > 0 ? req.resources.n : 0;
    resp.results.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp.results.v));
    if (resp.results.v == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    resp.results.n = n;
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    for (int32_t i = 0; i < n; i++) {
        const struct kmsg_describe_configs_request_describe_configs_resource *rs =
            &req.resources.v[i];
        struct kmsg_describe_configs_response_describe_configs_result *res = &resp.results.v[i];
        kmsg_describe_configs_response_describe_configs_result_init(res);
        res->resource_type = rs->resource_type;
        res->resource_name = rs->resource_name;
        res->error_code = config_resource_denied(r, rs->resource_type, rs->resource_name,
                                                 ACL_OPERATION_DESCRIBE_CONFIGS);
        if (res->error_code != 0) {
            res->configs.n = 0;
            continue;
        }
        if (rs->resource_type == RESOURCE_TOPIC) {
            describe_topic(r, img, rs, req.include_synonyms, res);
        } else if (rs->resource_type == RESOURCE_BROKER) {
            describe_broker(r, img, rs, res);
        } else {
            res->error_code = KAFKA_ERR_INVALID_REQUEST;
            res->error_message = broker_kstr(r, "Unsupported resource type");
        }
    }
    metadata_image_release(img);
    broker_reply(r, (kproto_encode_fn)kmsg_describe_configs_response_encode, &resp);
}

/* ---- AlterConfigs / IncrementalAlterConfigs: one shape for both responses ---- */

struct alter_state {
    bool incremental;
    int32_t n;
    int32_t *topic_index; /* response index -> index among topic resources, or -1 */
    struct kmsg_alter_configs_response plain;
    struct kmsg_incremental_alter_configs_response inc;
};

static void alter_set_result(struct broker_req *r, struct alter_state *st, int32_t i, int16_t code,
                             const char *msg)
{
    if (st->incremental) {
        st->inc.responses.v[i].error_code = code;
        st->inc.responses.v[i].error_message = broker_kstr(r, msg);
    } else {
        st->plain.responses.v[i].error_code = code;
        st->plain.responses.v[i].error_message = broker_kstr(r, msg);
    }
}

static void alter_reply(struct broker_req *r, struct alter_state *st)
{
    if (st->incremental)
        broker_reply(r, (kproto_encode_fn)kmsg_incremental_alter_configs_response_encode, &st->inc);
    else
        broker_reply(r, (kproto_encode_fn)kmsg_alter_configs_response_encode, &st->plain);
}

static void alter_done(struct broker_async *a)
{
    struct alter_state *st = a->arg;
    for (int32_t i = 0; i < st->n; i++) {
        int32_t k = st->topic_index[i];
        if (k < 0)
            continue;
        if (a->error_code != 0)
            alter_set_result(a->r, st, i, a->error_code, a->error_message);
        else if ((size_t)k < a->n_topics)
            alter_set_result(a->r, st, i, a->topics[k].error_code, a->topics[k].error_message);
    }
    alter_reply(a->r, st);
}

/* Common tail: submit the topic resources collected in alters[0..nt). */
static void alter_submit(struct broker_req *r, struct alter_state *st,
                         struct controller_config_alter *alters, size_t nt, bool validate_only)
{
    if (nt == 0) {
        alter_reply(r, st);
        return;
    }
    struct broker_async *a = broker_async_new(r, alter_done, st);
    if (a == NULL || controller_alter_configs(r->b->ctl, alters, nt, st->incremental, validate_only,
                                              broker_async_done, a) != 0) {
        broker_async_free(a);
        for (int32_t i = 0; i < st->n; i++)
            if (st->topic_index[i] >= 0)
                alter_set_result(r, st, i, KAFKA_ERR_NOT_CONTROLLER, NULL);
        alter_reply(r, st);
    }
}

/* The controller's results for the resources relayed by alter_relay_allowed, merged with the
 * ones answered here (denied, invalid). */
static void alter_subset_done(struct broker_req *r, void *arg, int err, struct kreader *body)
{
    struct alter_state *st = arg;
    struct kmsg_alter_configs_response pc;
    struct kmsg_incremental_alter_configs_response ic;
    int32_t m = 0;
    if (err == 0 && st->incremental)
        err = kmsg_incremental_alter_configs_response_decode(body, r->hdr.api_version, &ic);
    else if (err == 0)
        err = kmsg_alter_configs_response_decode(body, r->hdr.api_version, &pc);
    if (err == 0)
        m = st->incremental ? ic.responses.n : pc.responses.n;
    for (int32_t i = 0; i < st->n; i++) {
        int32_t k = st->topic_index[i];
        if (k < 0)
            continue;
        if (err != 0 || k >= m) {
            alter_set_result(r, st, i, KAFKA_ERR_NOT_CONTROLLER, NULL);
        } else if (st->incremental) {
            st->inc.responses.v[i].error_code = ic.responses.v[k].error_code;
            st->inc.responses.v[i].error_message = ic.responses.v[k].error_message;
        } else {
            st->plain.responses.v[i].error_code = pc.responses.v[k].error_code;
            st->plain.responses.v[i].error_message = pc.responses.v[k].error_message;
        }
    }
    alter_reply(r, st);
}

/* Some resources were answered here (denied): the nt others go to the active controller when
 * it is elsewhere. req is the decoded AlterConfigs or IncrementalAlterConfigs request. */
static bool alter_relay_allowed(struct broker_req *r, struct alter_state *st, const void *req,
                                size_t nt)
{
    if (st->incremental) {
        struct kmsg_incremental_alter_configs_request q =
            *(const struct kmsg_incremental_alter_configs_request *)req;
        const struct kmsg_incremental_alter_configs_request_alter_configs_resource *all =
            q.resources.v;
        q.resources.v = arena_calloc(r->arena, nt, sizeof(*q.resources.v));
        if (q.resources.v == NULL)
            return false;
        q.resources.n = 0;
        for (int32_t i = 0; i < st->n; i++)
            if (st->topic_index[i] >= 0)
                q.resources.v[q.resources.n++] = all[i];
        return forwarder_relay_subset(r, &q, alter_subset_done, st);
    }
    struct kmsg_alter_configs_request q = *(const struct kmsg_alter_configs_request *)req;
    const struct kmsg_alter_configs_request_alter_configs_resource *all = q.resources.v;
    q.resources.v = arena_calloc(r->arena, nt, sizeof(*q.resources.v));
    if (q.resources.v == NULL)
        return false;
    q.resources.n = 0;
    for (int32_t i = 0; i < st->n; i++)
        if (st->topic_index[i] >= 0)
            q.resources.v[q.resources.n++] = all[i];
    return forwarder_relay_subset(r, &q, alter_subset_done, st);
}

/* True when the principal may not alter some resource of r (decoded from a copy of the body,
 * so that r can still be relayed when every resource is allowed). */
static bool alter_any_denied(struct broker_req *r, bool incremental)
{
    if (!broker_authorizer_on(r->b))
        return false;
    struct kreader copy = r->body;
    if (incremental) {
        struct kmsg_incremental_alter_configs_request q;
        if (kmsg_incremental_alter_configs_request_decode(&copy, r->hdr.api_version, &q) != 0)
            return false;
        for (int32_t i = 0; i < q.resources.n; i++)
            if (config_resource_denied(r, q.resources.v[i].resource_type,
                                       q.resources.v[i].resource_name, ACL_OPERATION_ALTER_CONFIGS))
                return true;
        return false;
    }
    struct kmsg_alter_configs_request q;
    if (kmsg_alter_configs_request_decode(&copy, r->hdr.api_version, &q) != 0)
        return false;
    for (int32_t i = 0; i < q.resources.n; i++)
        if (config_resource_denied(r, q.resources.v[i].resource_type,
                                   q.resources.v[i].resource_name, ACL_OPERATION_ALTER_CONFIGS))
            return true;
    return false;
}

/* Kafka's half/double rule on the thread counts set in one BROKER resource (checked here, on
 * the broker that received the change, against its own counts). */
static bool alter_threads_refused(struct broker_req *r, const struct controller_config_change *ch,
                                  int32_t n, char *why, size_t len)
{
    for (int32_t j = 0; j < n; j++)
        if (ch[j].op == CONTROLLER_CONFIG_SET && ch[j].name != NULL &&
            dynamic_threads_refuse(r->b, ch[j].name, ch[j].value, why, len))
            return true;
    return false;
}

static bool threads_refused(struct broker_req *r, struct kstr name, struct kstr value, bool set)
{
    char why[256];
    if (!set || name.len < 0 || !broker_dynamic_is_thread_count(broker_str(r, name)))
        return false;
    return dynamic_threads_refuse(r->b, broker_str(r, name), broker_str(r, value), why,
                                  sizeof(why));
}

/* True when some BROKER resource of r breaks the thread-count rule: then r is answered here
 * (that resource refused) instead of being relayed to the controller as it is. */
static bool alter_any_threads_refused(struct broker_req *r, bool incremental)
{
    struct kreader copy = r->body;
    if (incremental) {
        struct kmsg_incremental_alter_configs_request q;
        if (kmsg_incremental_alter_configs_request_decode(&copy, r->hdr.api_version, &q) != 0)
            return false;
        for (int32_t i = 0; i < q.resources.n; i++)
            for (int32_t j = 0; q.resources.v[i].resource_type == RESOURCE_BROKER &&
                                j < q.resources.v[i].configs.n;
                 j++)
                if (threads_refused(
                        r, q.resources.v[i].configs.v[j].name, q.resources.v[i].configs.v[j].value,
                        q.resources.v[i].configs.v[j].config_operation == CONTROLLER_CONFIG_SET))
                    return true;
        return false;
    }
    struct kmsg_alter_configs_request q;
    if (kmsg_alter_configs_request_decode(&copy, r->hdr.api_version, &q) != 0)
        return false;
    for (int32_t i = 0; i < q.resources.n; i++)
        for (int32_t j = 0;
             q.resources.v[i].resource_type == RESOURCE_BROKER && j < q.resources.v[i].configs.n;
             j++)
            if (threads_refused(r, q.resources.v[i].configs.v[j].name,
                                q.resources.v[i].configs.v[j].value,
                                q.resources.v[i].configs.v[j].value.len >= 0))
                return true;
    return false;
}

void handle_alter_configs(struct broker_req *r)
{
    if (!alter_any_denied(r, false) && !alter_any_threads_refused(r, false) && forwarder_relay(r))
        return;
    struct kmsg_alter_configs_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_alter_configs_request_decode, &req) != 0)
        return;
    struct alter_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    int32_t n = req.resources.n > 0 ? req.resources.n : 0;
    struct controller_config_alter *alters = arena_calloc(r->arena, (size_t)n + 1, sizeof(*alters));
    if (st != NULL)
        kmsg_alter_configs_response_init(&st->plain);
    if (st == NULL || alters == NULL ||
        (st->topic_index = arena_calloc(r->arena, (size_t)n + 1, sizeof(int32_t))) == NULL ||
        (st->plain.responses.v =
             arena_calloc(r->arena, (size_t)n + 1, sizeof(*st->plain.responses.v))) == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    st->n = st->plain.responses.n = n;
    size_t nt = 0;
    for (int32_t i = 0; i < n; i++) {
        const struct kmsg_alter_configs_request_alter_configs_resource *rs = &req.resources.v[i];
        struct kmsg_alter_configs_response_alter_configs_resource_response *o =
            &st->plain.responses.v[i];
        kmsg_alter_configs_response_alter_configs_resource_response_init(o);
        o->resource_type = rs->resource_type;
        o->resource_name = rs->resource_name;
        st->topic_index[i] = -1;
        if (rs->resource_type != RESOURCE_TOPIC && rs->resource_type != RESOURCE_BROKER) {
            alter_set_result(r, st, i, KAFKA_ERR_INVALID_REQUEST,
                             "only topic and broker configs can be altered");
            continue;
        }
        int16_t denied = config_resource_denied(r, rs->resource_type, rs->resource_name,
                                                ACL_OPERATION_ALTER_CONFIGS);
        if (denied != 0) {
            alter_set_result(r, st, i, denied, NULL);
            continue;
        }
        int32_t nc = rs->configs.n > 0 ? rs->configs.n : 0;
        struct controller_config_change *ch = arena_calloc(r->arena, (size_t)nc + 1, sizeof(*ch));
        if (ch == NULL) {
            broker_close(r, "out of memory");
            return;
        }
        for (int32_t j = 0; j < nc; j++) {
            ch[j].name = broker_str(r, rs->configs.v[j].name);
            ch[j].value = broker_str(r, rs->configs.v[j].value);
            ch[j].op = ch[j].value ? CONTROLLER_CONFIG_SET : CONTROLLER_CONFIG_DELETE;
        }
        char why[256];
        if (rs->resource_type == RESOURCE_BROKER &&
            alter_threads_refused(r, ch, nc, why, sizeof(why))) {
            alter_set_result(r, st, i, KAFKA_ERR_INVALID_REQUEST, why);
            continue;
        }
        alters[nt] = (struct controller_config_alter){broker_str(r, rs->resource_name),
                                                      rs->resource_type == RESOURCE_BROKER,
                                                      (uint32_t)nc, ch};
        st->topic_index[i] = (int32_t)nt++;
    }
    if (nt > 0 && nt < (size_t)n && alter_relay_allowed(r, st, &req, nt))
        return;
    alter_submit(r, st, alters, nt, req.validate_only);
}

void handle_incremental_alter_configs(struct broker_req *r)
{
    if (!alter_any_denied(r, true) && !alter_any_threads_refused(r, true) && forwarder_relay(r))
        return;
    struct kmsg_incremental_alter_configs_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_incremental_alter_configs_request_decode, &req))
        return;
    struct alter_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    int32_t n = req.resources.n > 0 ? req.resources.n : 0;
    struct controller_config_alter *alters = arena_calloc(r->arena, (size_t)n + 1, sizeof(*alters));
    if (st != NULL)
        kmsg_incremental_alter_configs_response_init(&st->inc);
    if (st == NULL || alters == NULL ||
        (st->topic_index = arena_calloc(r->arena, (size_t)n + 1, sizeof(int32_t))) == NULL ||
        (st->inc.responses.v =
             arena_calloc(r->arena, (size_t)n + 1, sizeof(*st->inc.responses.v))) == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    st->incremental = true;
    st->n = st->inc.responses.n = n;
    size_t nt = 0;
    for (int32_t i = 0; i < n; i++) {
        const struct kmsg_incremental_alter_configs_request_alter_configs_resource *rs =
            &req.resources.v[i];
        struct kmsg_incremental_alter_configs_response_alter_configs_resource_response *o =
            &st->inc.responses.v[i];
        kmsg_incremental_alter_configs_response_alter_configs_resource_response_init(o);
        o->resource_type = rs->resource_type;
        o->resource_name = rs->resource_name;
        st->topic_index[i] = -1;
        if (rs->resource_type != RESOURCE_TOPIC && rs->resource_type != RESOURCE_BROKER) {
            alter_set_result(r, st, i, KAFKA_ERR_INVALID_REQUEST,
                             "only topic and broker configs can be altered");
            continue;
        }
        int16_t denied = config_resource_denied(r, rs->resource_type, rs->resource_name,
                                                ACL_OPERATION_ALTER_CONFIGS);
        if (denied != 0) {
            alter_set_result(r, st, i, denied, NULL);
            continue;
        }
        int32_t nc = rs->configs.n > 0 ? rs->configs.n : 0;
        struct controller_config_change *ch = arena_calloc(r->arena, (size_t)nc + 1, sizeof(*ch));
        if (ch == NULL) {
            broker_close(r, "out of memory");
            return;
        }
        for (int32_t j = 0; j < nc; j++) {
            ch[j].name = broker_str(r, rs->configs.v[j].name);
            ch[j].value = broker_str(r, rs->configs.v[j].value);
            ch[j].op = rs->configs.v[j].config_operation;
        }
        char why[256];
        if (rs->resource_type == RESOURCE_BROKER &&
            alter_threads_refused(r, ch, nc, why, sizeof(why))) {
            alter_set_result(r, st, i, KAFKA_ERR_INVALID_REQUEST, why);
            continue;
        }
        alters[nt] = (struct controller_config_alter){broker_str(r, rs->resource_name),
                                                      rs->resource_type == RESOURCE_BROKER,
                                                      (uint32_t)nc, ch};
        st->topic_index[i] = (int32_t)nt++;
    }
    if (nt > 0 && nt < (size_t)n && alter_relay_allowed(r, st, &req, nt))
        return;
    alter_submit(r, st, alters, nt, req.validate_only);
}
