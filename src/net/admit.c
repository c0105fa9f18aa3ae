/*
 * Connection admission: max.connections (all listeners of this server) and
 * max.connections.per.ip. Workers accept concurrently, so the counts live behind one mutex;
 * it is taken twice per connection (accept and close), never on the data path.
 *
 * Every connection is counted per address whatever the limits, so that a limit set at run time
 * (dynamic max.connections.per.ip) sees the connections already open.
 *
 * Invariant: every entry in the table has count > 0; an entry is freed when its count drops to
 * zero, so the table holds only addresses that currently have connections.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"

void net_admit_init(struct net_admit *a, int max_total, int max_per_ip)
{
    memset(a, 0, sizeof(*a));
    a->max_total = max_total;
    a->max_per_ip = max_per_ip;
    pthread_mutex_init(&a->lock, NULL);
}

void net_admit_destroy(struct net_admit *a)
{
    for (int i = 0; i < NET_ADMIT_BUCKETS; i++) {
        while (a->buckets[i]) {
            struct net_admit_entry *e = a->buckets[i];
            a->buckets[i] = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&a->lock);
}

/* FNV-1a over the address bytes. */
static unsigned net_admit_hash(const struct net_ip_key *k)
{
    uint32_t h = 2166136261u ^ k->family;
    for (size_t i = 0; i < sizeof(k->addr); i++)
        h = (h ^ k->addr[i]) * 16777619u;
    return h % NET_ADMIT_BUCKETS;
}

static struct net_admit_entry **net_admit_find(struct net_admit *a, const struct net_ip_key *k)
{
    struct net_admit_entry **pp = &a->buckets[net_admit_hash(k)];
    while (*pp && memcmp(&(*pp)->key, k, sizeof(*k)) != 0)
        pp = &(*pp)->next;
    return pp;
}

int net_admit_acquire(struct net_admit *a, const struct net_ip_key *k)
{
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    if (a->max_total > 0 && a->open >= a->max_total) {
        rc = -ENFILE;
        goto out;
    }
    struct net_admit_entry **pp = net_admit_find(a, k);
    if (*pp == NULL) {
        struct net_admit_entry *e = calloc(1, sizeof(*e));
        if (e == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        e->key = *k;
        *pp = e;
    }
    if (a->max_per_ip > 0 && (*pp)->count >= a->max_per_ip) {
        if ((*pp)->count == 0) { /* just added: keep the invariant */
            struct net_admit_entry *e = *pp;
            *pp = e->next;
            free(e);
        }
        rc = -EMFILE;
        goto out;
    }
    (*pp)->count++;
    a->open++;
out:
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void net_admit_release(struct net_admit *a, const struct net_ip_key *k)
{
    pthread_mutex_lock(&a->lock);
    a->open--;
    struct net_admit_entry **pp = net_admit_find(a, k);
    assert(*pp != NULL && (*pp)->count > 0); /* acquired, so counted */
    if (--(*pp)->count == 0) {
        struct net_admit_entry *e = *pp;
        *pp = e->next;
        free(e);
    }
    pthread_mutex_unlock(&a->lock);
}

void net_admit_set_limits(struct net_admit *a, int max_total, int max_per_ip)
{
    pthread_mutex_lock(&a->lock);
    a->max_total = max_total;
    a->max_per_ip = max_per_ip;
    pthread_mutex_unlock(&a->lock);
}
