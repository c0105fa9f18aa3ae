/*
 * The console's lag and traffic history (see console_history.h).
 *
 * Sample k (k = 0, 1, ...) is taken at times[k % CONSOLE_LAG_POINTS]; a group's lag at k is
 * lag[k % CONSOLE_LAG_POINTS] of its series, a topic's bytes-in counter at k is
 * bytes[k % CONSOLE_TRAFFIC_POINTS] of its series, and -1 means "not known at that sample"
 * (the group or topic absent, or no partition of it hosted here). Invariants, checked with
 * assert: n_groups <= CONSOLE_LAG_GROUPS_MAX, n_topics <= CONSOLE_TRAFFIC_TOPICS_MAX, topics
 * sorted by name. Memory is bounded by those maxima: about 190 KB of lag series and 290 KB of
 * traffic series at most, allocated as groups and topics with traffic appear (an idle broker
 * without groups holds a few KB).
 *
 * Which groups: every group of the cluster (ListConsumerGroups through this broker's own
 * listener, as the group page; the first CONSOLE_LAG_GROUPS_MAX by name), their lag summed
 * over the partitions this broker hosts (what it can read without asking other brokers). A
 * group absent for a whole ring's span gives its slot to a new group. No sample asks for
 * anything while the cluster has no __consumer_offsets topic (no group can exist), so an idle
 * broker without groups only wakes to count topic bytes.
 *
 * Locks: mu guards the rings and the stop flag; the sampler holds it while it walks the
 * partition registry (mu before the registry's lock; readers take mu alone), never during an
 * admin call.
 */
#include "broker/console_history.h"

#include <assert.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker_internal.h"
#include "broker/console_admin.h"
#include "broker/partition.h"
#include "cluster/controller.h"
#include "console/json.h"

_Static_assert(CONSOLE_TRAFFIC_POINTS <= CONSOLE_LAG_POINTS,
               "traffic samples find their times in the lag ring");

struct console_lag_series {
    char *group;
    int64_t lag[CONSOLE_LAG_POINTS];
};

struct console_topic_series {
    char *topic;
    int64_t bytes[CONSOLE_TRAFFIC_POINTS];
};

struct console_history {
    struct broker *b;
    int32_t interval_ms;
    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t wake;
    bool stop;
    uint64_t samples; /* taken so far; the next is number `samples` */
    int64_t times[CONSOLE_LAG_POINTS];
    struct console_lag_series *groups[CONSOLE_LAG_GROUPS_MAX];
    size_t n_groups;
    struct console_topic_series **topics; /* sorted by name */
    size_t n_topics, cap_topics;
};

/* A group's lag in one sample, gathered before mu is taken. */
struct console_lag_reading {
    char *group;
    int64_t lag; /* -1: nothing hosted here */
};

static int64_t console_history_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- lag ---- */

/* Sum over the partitions hosted here of high watermark - committed; -1 when none is. */
static int64_t console_history_group_lag(struct broker *b,
                                         const rd_kafka_topic_partition_list_t *committed)
{
    int64_t lag = -1;
    for (int i = 0; committed && i < committed->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &committed->elems[i];
        if (tp->offset < 0)
            continue;
        struct partition *p = partition_get(b->parts, tp->topic, tp->partition);
        if (p == NULL)
            continue;
        int64_t hw = log_high_watermark(p->log);
        partition_put(p);
        lag = (lag < 0 ? 0 : lag) + (hw > tp->offset ? hw - tp->offset : 0);
    }
    return lag;
}

/* One group's lag through ListConsumerGroupOffsets; -1 when it cannot be read. */
static int64_t console_history_read_lag(struct broker *b, rd_kafka_t *rk, rd_kafka_queue_t *q,
                                        const char *group)
{
    char err[256];
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_AdminOptions_t *ao =
        console_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, ao, q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_event_t *ev = console_admin_wait(q, err, sizeof(err));
    if (ev == NULL)
        return -1;
    size_t n = 0;
    const rd_kafka_group_result_t **res = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    int64_t lag = n == 1 && !rd_kafka_group_result_error(res[0])
                      ? console_history_group_lag(b, rd_kafka_group_result_partitions(res[0]))
                      : -1;
    rd_kafka_event_destroy(ev);
    return lag;
}

static int console_history_reading_cmp(const void *a, const void *b)
{
    return strcmp(((const struct console_lag_reading *)a)->group,
                  ((const struct console_lag_reading *)b)->group);
}

static bool console_history_stopping(struct console_history *h)
{
    pthread_mutex_lock(&h->mu);
    bool stop = h->stop;
    pthread_mutex_unlock(&h->mu);
    return stop;
}

/* Every group's lag (at most CONSOLE_LAG_GROUPS_MAX, first by name) into out[]; the count. */
static size_t console_history_read_groups(struct console_history *h, rd_kafka_t *rk,
                                          struct console_lag_reading *out)
{
    char err[256];
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = console_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_ListConsumerGroups(rk, ao, q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_event_t *ev = console_admin_wait(q, err, sizeof(err));
    size_t n = 0, total = 0;
    const rd_kafka_ConsumerGroupListing_t **gs =
        ev ? rd_kafka_ListConsumerGroups_result_valid(rd_kafka_event_ListConsumerGroups_result(ev),
                                                      &total)
           : NULL;
    struct console_lag_reading *all = total ? calloc(total, sizeof(*all)) : NULL;
    for (size_t i = 0; all && i < total; i++)
        all[i].group = (char *)rd_kafka_ConsumerGroupListing_group_id(gs[i]);
    if (all)
        qsort(all, total, sizeof(*all), console_history_reading_cmp);
    for (size_t i = 0; all && i < total && n < CONSOLE_LAG_GROUPS_MAX; i++) {
        if (console_history_stopping(h))
            break;
        char *id = strdup(all[i].group);
        if (id == NULL)
            break;
        out[n].lag = console_history_read_lag(h->b, rk, q, id);
        out[n++].group = id;
    }
    free(all);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return n;
}

/* True when the cluster has the offsets topic: without it no group exists. */
static bool console_history_may_have_groups(struct broker *b)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    bool yes = img != NULL && metadata_image_topic_by_name(img, "__consumer_offsets") != NULL;
    if (img)
        metadata_image_release(img);
    return yes;
}

/* The series of group (created when there is room). NULL when every slot is in use. mu held. */
static struct console_lag_series *console_history_series(struct console_history *h,
                                                         const char *group)
{
    assert(h->n_groups <= CONSOLE_LAG_GROUPS_MAX);
    for (size_t i = 0; i < h->n_groups; i++)
        if (strcmp(h->groups[i]->group, group) == 0)
            return h->groups[i];
    size_t slot = h->n_groups;
    for (size_t i = 0; slot == CONSOLE_LAG_GROUPS_MAX && i < h->n_groups; i++) {
        bool gone = true; /* absent from every sample the ring holds */
        for (size_t k = 0; gone && k < CONSOLE_LAG_POINTS; k++)
            gone = h->groups[i]->lag[k] < 0;
        if (gone)
            slot = i;
    }
    if (slot == CONSOLE_LAG_GROUPS_MAX)
        return NULL;
    char *id = strdup(group);
    struct console_lag_series *s = slot < h->n_groups ? h->groups[slot] : malloc(sizeof(*s));
    if (id == NULL || s == NULL) {
        free(id);
        if (slot == h->n_groups)
            free(s);
        return NULL;
    }
    if (slot < h->n_groups)
        free(s->group);
    else
        h->groups[h->n_groups++] = s;
    s->group = id;
    for (size_t k = 0; k < CONSOLE_LAG_POINTS; k++)
        s->lag[k] = -1;
    return s;
}

/* Stores one sample's readings at ring index k; groups not read get -1. mu held. */
static void console_history_store_lag(struct console_history *h, size_t k,
                                      const struct console_lag_reading *r, size_t n)
{
    for (size_t i = 0; i < h->n_groups; i++)
        h->groups[i]->lag[k] = -1;
    for (size_t i = 0; i < n; i++) {
        struct console_lag_series *s = console_history_series(h, r[i].group);
        if (s != NULL)
            s->lag[k] = r[i].lag;
    }
}

/* ---- traffic ---- */

/* Index of topic in h->topics, or where it would be inserted (as -1 - index). mu held. */
static ssize_t console_history_topic_find(const struct console_history *h, const char *topic)
{
    size_t lo = 0, hi = h->n_topics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(h->topics[mid]->topic, topic);
        if (c == 0)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1 - (ssize_t)lo;
}

static struct console_topic_series *console_history_topic_add(struct console_history *h, size_t at,
                                                              const char *topic)
{
    if (h->n_topics == CONSOLE_TRAFFIC_TOPICS_MAX)
        return NULL;
    if (h->n_topics == h->cap_topics) {
        size_t cap = h->cap_topics ? 2 * h->cap_topics : 16;
        struct console_topic_series **t = realloc(h->topics, cap * sizeof(*t));
        if (t == NULL)
            return NULL;
        h->topics = t;
        h->cap_topics = cap;
    }
    struct console_topic_series *s = malloc(sizeof(*s));
    char *name = strdup(topic);
    if (s == NULL || name == NULL) {
        free(s);
        free(name);
        return NULL;
    }
    s->topic = name;
    for (size_t k = 0; k < CONSOLE_TRAFFIC_POINTS; k++)
        s->bytes[k] = -1;
    memmove(h->topics + at + 1, h->topics + at, (h->n_topics - at) * sizeof(*h->topics));
    h->topics[at] = s;
    h->n_topics++;
    return s;
}

struct console_traffic_walk {
    struct console_history *h;
    size_t k;
    ssize_t prev; /* the previous sample's index, -1 for the first sample */
};

/* Registry read lock and mu held: adds p's bytes-in to its topic's counter at sample k. */
static void console_history_count_partition(struct partition *p, void *arg)
{
    struct console_traffic_walk *w = arg;
    int64_t in = atomic_load_explicit(&p->bytes_in, memory_order_relaxed);
    ssize_t i = console_history_topic_find(w->h, p->topic);
    struct console_topic_series *s = NULL;
    if (i >= 0)
        s = w->h->topics[i];
    else if (in > 0) { /* topics that never had traffic here cost nothing */
        s = console_history_topic_add(w->h, (size_t)(-1 - i), p->topic);
        /* Not recorded at the previous sample means it had no bytes in then (or did not
         * exist): 0, so the first traffic shows as a rate. */
        if (s != NULL && w->prev >= 0)
            s->bytes[w->prev] = 0;
    }
    if (s != NULL)
        s->bytes[w->k] = (s->bytes[w->k] < 0 ? 0 : s->bytes[w->k]) + in;
}

/* Drops the series of topics absent from every sample the ring holds (deleted, or no longer
 * hosted here), so they do not hold slots. mu held. */
static void console_history_drop_gone_topics(struct console_history *h)
{
    size_t kept = 0;
    for (size_t i = 0; i < h->n_topics; i++) {
        struct console_topic_series *s = h->topics[i];
        bool gone = true;
        for (size_t k = 0; gone && k < CONSOLE_TRAFFIC_POINTS; k++)
            gone = s->bytes[k] < 0;
        if (gone) {
            free(s->topic);
            free(s);
        } else {
            h->topics[kept++] = s;
        }
    }
    h->n_topics = kept;
}

/* mu held. */
static void console_history_store_traffic(struct console_history *h)
{
    size_t k = (size_t)(h->samples % CONSOLE_TRAFFIC_POINTS);
    ssize_t prev = h->samples ? (ssize_t)((h->samples - 1) % CONSOLE_TRAFFIC_POINTS) : (ssize_t)-1;
    for (size_t i = 0; i < h->n_topics; i++)
        h->topics[i]->bytes[k] = -1;
    console_history_drop_gone_topics(h);
    struct console_traffic_walk w = {h, k, prev};
    partition_registry_each(h->b->parts, console_history_count_partition, &w);
    assert(h->n_topics <= CONSOLE_TRAFFIC_TOPICS_MAX);
    for (size_t i = 1; i < h->n_topics; i++)
        assert(strcmp(h->topics[i - 1]->topic, h->topics[i]->topic) < 0);
}

/* ---- the thread ---- */

static void console_history_sample(struct console_history *h)
{
    struct console_lag_reading r[CONSOLE_LAG_GROUPS_MAX];
    size_t n = 0;
    if (console_history_may_have_groups(h->b)) {
        char err[256];
        rd_kafka_t *rk = console_admin_client(h->b, err, sizeof(err));
        if (rk != NULL) {
            n = console_history_read_groups(h, rk, r);
            rd_kafka_destroy(rk);
        }
    }
    pthread_mutex_lock(&h->mu);
    size_t k = (size_t)(h->samples % CONSOLE_LAG_POINTS);
    h->times[k] = console_history_now_ms();
    console_history_store_lag(h, k, r, n);
    console_history_store_traffic(h);
    h->samples++;
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < n; i++)
        free(r[i].group);
}

static void *console_history_run(void *arg)
{
    struct console_history *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        pthread_mutex_unlock(&h->mu);
        console_history_sample(h);
        pthread_mutex_lock(&h->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += h->interval_ms / 1000;
        until.tv_nsec += (long)(h->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!h->stop && pthread_cond_timedwait(&h->wake, &h->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

struct console_history *console_history_start(struct broker *b, int32_t interval_ms)
{
    assert(interval_ms > 0);
    struct console_history *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->b = b;
    h->interval_ms = interval_ms;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->wake, NULL);
    if (pthread_create(&h->thread, NULL, console_history_run, h) != 0) {
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    return h;
}

void console_history_stop(struct console_history *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    for (size_t i = 0; i < h->n_groups; i++) {
        free(h->groups[i]->group);
        free(h->groups[i]);
    }
    for (size_t i = 0; i < h->n_topics; i++) {
        free(h->topics[i]->topic);
        free(h->topics[i]);
    }
    free(h->topics);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ---- answers ---- */

int console_history_write_lag(struct console_history *h, const char *group, struct expo *e)
{
    pthread_mutex_lock(&h->mu);
    const struct console_lag_series *s = NULL;
    for (size_t i = 0; i < h->n_groups && s == NULL; i++)
        if (strcmp(h->groups[i]->group, group) == 0)
            s = h->groups[i];
    if (s == NULL) {
        pthread_mutex_unlock(&h->mu);
        return json_error(e, 404, "no lag samples of group '%.249s' (yet)", group);
    }
    uint64_t first = h->samples > CONSOLE_LAG_POINTS ? h->samples - CONSOLE_LAG_POINTS : 0;
    expo_printf(e, "{\"group_id\":");
    json_string(e, group);
    expo_printf(e, ",\"interval_ms\":%d,\"points\":[", h->interval_ms);
    for (uint64_t n = first; n < h->samples; n++) {
        size_t k = (size_t)(n % CONSOLE_LAG_POINTS);
        expo_printf(e, "%s{\"time\":%lld,\"lag\":", n > first ? "," : "", (long long)h->times[k]);
        if (s->lag[k] < 0)
            expo_printf(e, "null}");
        else
            expo_printf(e, "%lld}", (long long)s->lag[k]);
    }
    expo_printf(e, "]}");
    pthread_mutex_unlock(&h->mu);
    return 200;
}

void console_history_write_rates(struct console_history *h, const char *topic, struct expo *e)
{
    expo_printf(e, "\"bytes_in_rate\":[");
    pthread_mutex_lock(&h->mu);
    ssize_t i = console_history_topic_find(h, topic);
    uint64_t first = h->samples > CONSOLE_TRAFFIC_POINTS ? h->samples - CONSOLE_TRAFFIC_POINTS : 0;
    for (uint64_t n = first + 1; i >= 0 && n < h->samples; n++) {
        const struct console_topic_series *s = h->topics[i];
        int64_t b0 = s->bytes[(n - 1) % CONSOLE_TRAFFIC_POINTS];
        int64_t b1 = s->bytes[n % CONSOLE_TRAFFIC_POINTS];
        int64_t dt = h->times[n % CONSOLE_LAG_POINTS] - h->times[(n - 1) % CONSOLE_LAG_POINTS];
        expo_printf(e, "%s", n > first + 1 ? "," : "");
        if (b0 < 0 || b1 < 0 || dt <= 0)
            expo_printf(e, "null");
        else
            expo_printf(e, "%lld", (long long)((b1 > b0 ? b1 - b0 : 0) * 1000 / dt));
    }
    pthread_mutex_unlock(&h->mu);
    expo_printf(e, "]");
}
