/*
 * The server-side assignors of consumer groups (KIP-848), named as Kafka names them:
 *  - "uniform": balanced and sticky. Each member keeps the partitions of its previous target
 *    that are still valid, up to its fair share (P / M, and one more for P % M members); the
 *    partitions left go one by one to the subscribed member holding the fewest. With equal
 *    subscriptions every member ends with P / M or P / M + 1 and a member that stays keeps
 *    what it had (the point of KIP-848: the others never pause).
 *  - "range": per topic, the subscribed members sorted by member id get consecutive ranges,
 *    the first (n % k) one partition more.
 * Both read the group's subscription metadata (cg->topics) and write every member's target.
 * Owner worker only.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group/consumer_group.h"

/* The next name of a comma-separated list; returns the rest or NULL at the end. */
static const char *list_next(const char *p, const char **name, size_t *len)
{
    while (*p == ',' || *p == ' ')
        p++;
    if (*p == '\0')
        return NULL;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ')
        e++;
    *name = p;
    *len = (size_t)(e - p);
    return e;
}

bool cg_assignor_known(const struct group_config *cfg, struct kstr name)
{
    const char *p = cfg->consumer_assignors, *n;
    size_t len;
    while ((p = list_next(p, &n, &len)) != NULL)
        if (name.len == (int32_t)len && memcmp(name.ptr, n, len) == 0)
            return true;
    return false;
}

/* The assignor most members asked for, else the first configured one. */
void cg_assignor_select(const struct cgroup *cg, const struct group_config *cfg, char *out,
                        size_t cap)
{
    const char *best = NULL;
    int32_t best_votes = 0;
    for (const struct cg_member *m = cg->members; m; m = m->next) {
        if (m->assignor.len <= 0)
            continue;
        int32_t votes = 0;
        for (const struct cg_member *o = cg->members; o; o = o->next)
            votes += gstr_eq_str(&o->assignor, &m->assignor);
        if (votes > best_votes) {
            best_votes = votes;
            best = m->assignor.p;
        }
    }
    if (best == NULL) {
        const char *n;
        size_t len = 0;
        if (list_next(cfg->consumer_assignors, &n, &len) == NULL)
            n = "uniform", len = 7;
        snprintf(out, cap, "%.*s", (int)len, n);
        return;
    }
    snprintf(out, cap, "%s", best);
}

static bool member_subscribes(const struct cg_member *m, const char *topic)
{
    for (int32_t i = 0; i < m->nsubs; i++)
        if (strcmp(m->subs[i], topic) == 0)
            return true;
    return false;
}

static int member_id_cmp(const void *a, const void *b)
{
    const struct cg_member *x = *(struct cg_member *const *)a;
    const struct cg_member *y = *(struct cg_member *const *)b;
    return strcmp(x->id.p, y->id.p);
}

static int assign_range(struct cgroup *cg, struct cg_member **ms, int32_t m, struct cg_tpset *nt)
{
    int32_t *subs = calloc((size_t)m + 1, sizeof(*subs));
    if (subs == NULL)
        return -ENOMEM;
    for (int32_t t = 0; t < cg->ntopics; t++) {
        const struct cg_topic *tp = &cg->topics[t];
        int32_t k = 0;
        for (int32_t i = 0; i < m; i++)
            if (member_subscribes(ms[i], tp->name))
                subs[k++] = i;
        if (k == 0 || tp->nparts <= 0)
            continue;
        int32_t per = tp->nparts / k, extra = tp->nparts % k, p = 0;
        for (int32_t j = 0; j < k; j++) {
            int32_t cnt = per + (j < extra);
            for (int32_t x = 0; x < cnt; x++, p++)
                if (cg_tpset_add(&nt[subs[j]], tp->id, p) != 0) {
                    free(subs);
                    return -ENOMEM;
                }
        }
    }
    free(subs);
    return 0;
}

static const struct cg_topic *topic_by_id(const struct cgroup *cg, const uint8_t id[16])
{
    for (int32_t t = 0; t < cg->ntopics; t++)
        if (cg->topics[t].nparts >= 0 && memcmp(cg->topics[t].id, id, 16) == 0)
            return &cg->topics[t];
    return NULL;
}

/* Keeps member i's previous partitions that are still valid while it holds fewer than cap. */
static int uniform_keep(const struct cgroup *cg, struct cg_member *mb, struct cg_tpset *nt,
                        struct cg_tpset *taken, int32_t cap)
{
    for (int32_t j = 0; j < mb->target.n && nt->n < cap; j++) {
        const struct cg_tp *tp = &mb->target.v[j];
        const struct cg_topic *t = topic_by_id(cg, tp->topic_id);
        if (t == NULL || tp->partition >= t->nparts || !member_subscribes(mb, t->name) ||
            cg_tpset_has(taken, tp->topic_id, tp->partition))
            continue;
        if (cg_tpset_add(nt, tp->topic_id, tp->partition) != 0 ||
            cg_tpset_add(taken, tp->topic_id, tp->partition) != 0)
            return -ENOMEM;
    }
    return 0;
}

static int assign_uniform(struct cgroup *cg, struct cg_member **ms, int32_t m, struct cg_tpset *nt)
{
    int64_t total = 0;
    for (int32_t t = 0; t < cg->ntopics; t++) {
        bool any = false;
        for (int32_t i = 0; i < m && !any; i++)
            any = member_subscribes(ms[i], cg->topics[t].name);
        if (any && cg->topics[t].nparts > 0)
            total += cg->topics[t].nparts;
    }
    int32_t quota = (int32_t)(total / m), extra = (int32_t)(total % m);
    struct cg_tpset taken = {0};
    int rc = 0;
    for (int32_t i = 0; i < m && rc == 0; i++)
        rc = uniform_keep(cg, ms[i], &nt[i], &taken, quota);
    for (int32_t i = 0; i < m && rc == 0 && extra > 0; i++) {
        int32_t before = nt[i].n;
        if (before == quota)
            rc = uniform_keep(cg, ms[i], &nt[i], &taken, quota + 1);
        extra -= nt[i].n > before;
    }
    for (int32_t t = 0; t < cg->ntopics && rc == 0; t++) {
        const struct cg_topic *tp = &cg->topics[t];
        for (int32_t p = 0; p < tp->nparts && rc == 0; p++) {
            if (cg_tpset_has(&taken, tp->id, p))
                continue;
            int32_t best = -1;
            for (int32_t i = 0; i < m; i++)
                if (member_subscribes(ms[i], tp->name) && (best < 0 || nt[i].n < nt[best].n))
                    best = i;
            if (best >= 0)
                rc = cg_tpset_add(&nt[best], tp->id, p);
        }
    }
    cg_tpset_free(&taken);
    return rc;
}

int cg_assign(struct cgroup *cg, const struct group_config *cfg)
{
    cg_assignor_select(cg, cfg, cg->assignor, sizeof(cg->assignor));
    int32_t m = cg->nmembers;
    if (m == 0)
        return 0;
    struct cg_member **ms = calloc((size_t)m, sizeof(*ms));
    struct cg_tpset *nt = calloc((size_t)m, sizeof(*nt));
    int rc = -ENOMEM;
    if (ms == NULL || nt == NULL)
        goto out;
    int32_t i = 0;
    for (struct cg_member *mb = cg->members; mb; mb = mb->next)
        ms[i++] = mb;
    assert(i == m);
    qsort(ms, (size_t)m, sizeof(*ms), member_id_cmp);
    rc = strcmp(cg->assignor, "range") == 0 ? assign_range(cg, ms, m, nt)
                                            : assign_uniform(cg, ms, m, nt);
    if (rc == 0)
        for (i = 0; i < m; i++) { /* swap in the new targets; the old ones are freed below */
            struct cg_tpset old = ms[i]->target;
            ms[i]->target = nt[i];
            nt[i] = old;
        }
out:
    for (i = 0; nt && i < m; i++)
        cg_tpset_free(&nt[i]);
    free(nt);
    free(ms);
    return rc;
}
