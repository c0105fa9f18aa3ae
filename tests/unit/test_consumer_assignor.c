/* The consumer group assignors (KIP-848): "uniform" is balanced and sticky, "range" gives
 * consecutive ranges per topic; subscriptions may differ between members. */
#include <stdlib.h>
#include <string.h>

#include "group/consumer_group.h"
#include "test.h"

static struct group_config test_cfg(void)
{
    struct group_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    strcpy(cfg.consumer_assignors, "uniform,range");
    return cfg;
}

static void add_topic(struct cgroup *cg, const char *name, uint8_t idbyte, int32_t nparts)
{
    cg->topics = realloc(cg->topics, (size_t)(cg->ntopics + 1) * sizeof(*cg->topics));
    struct cg_topic *t = &cg->topics[cg->ntopics++];
    memset(t, 0, sizeof(*t));
    t->name = strdup(name);
    memset(t->id, idbyte, 16);
    t->nparts = nparts;
}

/* A member subscribed to the comma-separated topics. */
static struct cg_member *add_member(struct group *g, const char *id, const char *topics)
{
    struct cg_member *m = calloc(1, sizeof(*m));
    m->g = g;
    m->instance_id.len = m->rack_id.len = m->client_id.len = m->client_host.len = m->assignor.len =
        m->regex.len = -1;
    gstr_set(&m->id, id, (int32_t)strlen(id));
    char *copy = strdup(topics), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        m->subs = realloc(m->subs, (size_t)(m->nsubs + 1) * sizeof(*m->subs));
        m->subs[m->nsubs++] = strdup(t);
    }
    free(copy);
    m->next = g->cg->members;
    g->cg->members = m;
    g->cg->nmembers++;
    return m;
}

static void remove_member(struct group *g, struct cg_member *m)
{
    struct cg_member **pp = &g->cg->members;
    while (*pp != m)
        pp = &(*pp)->next;
    *pp = m->next;
    g->cg->nmembers--;
    m->next = NULL;
    struct cgroup one = {.members = m, .nmembers = 1};
    struct group tmp = {.cg = calloc(1, sizeof(struct cgroup))};
    *tmp.cg = one;
    cg_free(&tmp, false);
}

/* Every partition of the topics is in exactly one target. */
static int owners_of(struct group *g, int32_t total)
{
    int32_t n = 0;
    for (struct cg_member *m = g->cg->members; m; m = m->next) {
        n += m->target.n;
        for (struct cg_member *o = m->next; o; o = o->next)
            for (int32_t i = 0; i < m->target.n; i++)
                if (cg_tpset_has(&o->target, m->target.v[i].topic_id, m->target.v[i].partition))
                    return -1;
    }
    return n == total ? 0 : -1;
}

TEST(test_uniform_balances_and_keeps_partitions_when_a_member_leaves)
{
    struct group_config cfg = test_cfg();
    struct group g = {.cg = cg_create()};
    add_topic(g.cg, "orders", 1, 6);
    struct cg_member *a = add_member(&g, "a", "orders");
    struct cg_member *b = add_member(&g, "b", "orders");
    struct cg_member *c = add_member(&g, "c", "orders");
    CHECK_EQ_INT(cg_assign(g.cg, &cfg), 0);
    CHECK(strcmp(g.cg->assignor, "uniform") == 0);
    CHECK_EQ_INT(owners_of(&g, 6), 0);
    CHECK(a->target.n == 2 && b->target.n == 2 && c->target.n == 2);
    struct cg_tpset a0 = {0}, b0 = {0};
    CHECK_EQ_INT(cg_tpset_copy(&a0, &a->target), 0);
    CHECK_EQ_INT(cg_tpset_copy(&b0, &b->target), 0);
    remove_member(&g, c);
    CHECK_EQ_INT(cg_assign(g.cg, &cfg), 0);
    CHECK_EQ_INT(owners_of(&g, 6), 0);
    CHECK(a->target.n == 3 && b->target.n == 3);
    for (int32_t i = 0; i < a0.n; i++) /* sticky: the members that stay keep theirs */
        CHECK(cg_tpset_has(&a->target, a0.v[i].topic_id, a0.v[i].partition));
    for (int32_t i = 0; i < b0.n; i++)
        CHECK(cg_tpset_has(&b->target, b0.v[i].topic_id, b0.v[i].partition));
    /* A fourth topic grows the set: 6 + 3 over 2 members is 5/4, and nobody loses. */
    add_topic(g.cg, "more", 2, 3);
    for (struct cg_member *m = g.cg->members; m; m = m->next) {
        m->subs = realloc(m->subs, (size_t)(m->nsubs + 1) * sizeof(*m->subs));
        m->subs[m->nsubs++] = strdup("more");
    }
    CHECK_EQ_INT(cg_tpset_copy(&a0, &a->target), 0);
    CHECK_EQ_INT(cg_assign(g.cg, &cfg), 0);
    CHECK_EQ_INT(owners_of(&g, 9), 0);
    CHECK(abs(a->target.n - b->target.n) == 1);
    for (int32_t i = 0; i < a0.n; i++)
        CHECK(cg_tpset_has(&a->target, a0.v[i].topic_id, a0.v[i].partition));
    cg_tpset_free(&a0);
    cg_tpset_free(&b0);
    cg_free(&g, false);
}

TEST(test_uniform_gives_a_topic_only_to_its_subscribers)
{
    struct group_config cfg = test_cfg();
    struct group g = {.cg = cg_create()};
    add_topic(g.cg, "x", 1, 4);
    add_topic(g.cg, "y", 2, 2);
    struct cg_member *a = add_member(&g, "a", "x");
    struct cg_member *b = add_member(&g, "b", "x,y");
    CHECK_EQ_INT(cg_assign(g.cg, &cfg), 0);
    CHECK_EQ_INT(owners_of(&g, 6), 0);
    uint8_t y[16];
    memset(y, 2, 16);
    for (int32_t i = 0; i < a->target.n; i++)
        CHECK(memcmp(a->target.v[i].topic_id, y, 16) != 0);
    CHECK(cg_tpset_has(&b->target, y, 0) && cg_tpset_has(&b->target, y, 1));
    cg_free(&g, false);
}

TEST(test_range_gives_consecutive_ranges_by_member_id)
{
    struct group_config cfg = test_cfg();
    struct group g = {.cg = cg_create()};
    add_topic(g.cg, "t", 7, 7);
    struct cg_member *b = add_member(&g, "m-b", "t");
    struct cg_member *a = add_member(&g, "m-a", "t");
    gstr_set(&a->assignor, "range", 5); /* the members' choice wins over the default */
    CHECK_EQ_INT(cg_assign(g.cg, &cfg), 0);
    CHECK(strcmp(g.cg->assignor, "range") == 0);
    uint8_t t[16];
    memset(t, 7, 16);
    CHECK_EQ_INT(a->target.n, 4);
    CHECK_EQ_INT(b->target.n, 3);
    for (int32_t p = 0; p < 4; p++)
        CHECK(cg_tpset_has(&a->target, t, p));
    for (int32_t p = 4; p < 7; p++)
        CHECK(cg_tpset_has(&b->target, t, p));
    cg_free(&g, false);
}

TEST(test_assignor_names)
{
    struct group_config cfg = test_cfg();
    CHECK(cg_assignor_known(&cfg, KSTR_LIT("uniform")));
    CHECK(cg_assignor_known(&cfg, KSTR_LIT("range")));
    CHECK(!cg_assignor_known(&cfg, KSTR_LIT("rang")));
    CHECK(!cg_assignor_known(&cfg, KSTR_LIT("sticky")));
}

TEST_MAIN
