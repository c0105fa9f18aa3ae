/*
 * Transaction state of a compaction pass; see cleaned_txns.h. Per producer id a slot says
 * whether a transaction of it is open at the current offset and how it ends: `aborted` once
 * the pass reached the first offset of one of its aborted transactions (from the index),
 * `committed` once a transactional batch of it was read that no aborted transaction covers
 * (it ends with a COMMIT, or the log is past the stable offset, which the cleaner never
 * reaches). A producer has one transaction at a time, so one slot per producer id suffices.
 * Slots are kept in an open-addressing table (linear probing, backward-shift deletion, so no
 * tombstones and no rehash on delete).
 */
#include "storage/cleaned_txns.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "record/control_record.h"

struct cleaned_txn_slot {
    int64_t pid; /* -1: empty */
    bool committed;
    bool aborted;
    bool observed; /* a batch of the aborted transaction was read in this pass */
    struct aborted_txn entry;
};

static int cmp_first(const void *x, const void *y)
{
    const struct aborted_txn *a = x, *b = y;
    return a->first_offset < b->first_offset ? -1 : a->first_offset > b->first_offset;
}

static int slots_alloc(struct cleaned_txns *t, size_t cap)
{
    t->slots = malloc(cap * sizeof(*t->slots));
    if (t->slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        t->slots[i].pid = -1;
    t->cap = cap;
    t->used = 0;
    return 0;
}

int cleaned_txns_init(struct cleaned_txns *t, const struct aborted_txn *aborted, size_t n)
{
    memset(t, 0, sizeof(*t));
    if (n > 0) {
        t->aborted = malloc(n * sizeof(*aborted));
        if (t->aborted == NULL)
            return -ENOMEM;
        memcpy(t->aborted, aborted, n * sizeof(*aborted));
        qsort(t->aborted, n, sizeof(*aborted), cmp_first);
        t->naborted = n;
    }
    if (slots_alloc(t, 64) != 0) {
        cleaned_txns_free(t);
        return -ENOMEM;
    }
    return 0;
}

void cleaned_txns_free(struct cleaned_txns *t)
{
    free(t->aborted);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static size_t slot_home(const struct cleaned_txns *t, int64_t pid)
{
    uint64_t h = (uint64_t)pid * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 32) & (t->cap - 1);
}

static struct cleaned_txn_slot *slot_find(struct cleaned_txns *t, int64_t pid)
{
    for (size_t i = slot_home(t, pid);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].pid == pid)
            return &t->slots[i];
        if (t->slots[i].pid < 0)
            return NULL;
    }
}

static int slots_grow(struct cleaned_txns *t)
{
    struct cleaned_txn_slot *old = t->slots;
    size_t ocap = t->cap;
    if (slots_alloc(t, ocap * 2) != 0) {
        t->slots = old;
        t->cap = ocap;
        return -ENOMEM;
    }
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].pid < 0)
            continue;
        size_t j = slot_home(t, old[i].pid);
        while (t->slots[j].pid >= 0)
            j = (j + 1) & (t->cap - 1);
        t->slots[j] = old[i];
        t->used++;
    }
    free(old);
    return 0;
}

/* The slot of pid, created empty when missing; NULL only on allocation failure. */
static struct cleaned_txn_slot *slot_get(struct cleaned_txns *t, int64_t pid)
{
    struct cleaned_txn_slot *s = slot_find(t, pid);
    if (s != NULL)
        return s;
    if ((t->used + 1) * 2 > t->cap && slots_grow(t) != 0)
        return NULL;
    size_t i = slot_home(t, pid);
    while (t->slots[i].pid >= 0)
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = (struct cleaned_txn_slot){.pid = pid};
    t->used++;
    return &t->slots[i];
}

/* Frees the slot once it tracks nothing; backward-shift deletion keeps probe chains whole. */
static void slot_maybe_drop(struct cleaned_txns *t, struct cleaned_txn_slot *s)
{
    if (s->committed || s->aborted)
        return;
    size_t i = (size_t)(s - t->slots);
    t->slots[i].pid = -1;
    t->used--;
    for (size_t j = (i + 1) & (t->cap - 1); t->slots[j].pid >= 0; j = (j + 1) & (t->cap - 1)) {
        size_t home = slot_home(t, t->slots[j].pid);
        /* The entry at j may move to the hole i when its home is not in (i, j]. */
        bool in_between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_between) {
            t->slots[i] = t->slots[j];
            t->slots[j].pid = -1;
            i = j;
        }
    }
}

/* Kafka's consumeAbortedTxnsUpTo: the aborted transactions begun at or before offset. */
static void reach(struct cleaned_txns *t, int64_t offset)
{
    while (t->next < t->naborted && t->aborted[t->next].first_offset <= offset) {
        const struct aborted_txn *a = &t->aborted[t->next++];
        struct cleaned_txn_slot *s = slot_get(t, a->producer_id);
        if (s != NULL && !s->aborted) {
            s->aborted = true;
            s->observed = false;
            s->entry = *a;
        }
    }
}

bool cleaned_txns_on_batch(struct cleaned_txns *t, const struct record_batch_header *h)
{
    assert(!(h->attributes & RECORD_ATTR_CONTROL));
    reach(t, record_batch_last_offset(h));
    if (!(h->attributes & RECORD_ATTR_TRANSACTIONAL))
        return false;
    struct cleaned_txn_slot *s = slot_get(t, h->producer_id);
    if (s == NULL)
        return false; /* out of memory: keep the batch, the safe side */
    if (s->aborted) {
        s->observed = true;
        return true;
    }
    s->committed = true;
    return false;
}

bool cleaned_txns_on_marker(struct cleaned_txns *t, const struct record_batch_header *h, int type,
                            struct aborted_txn *keep_entry)
{
    assert(h->attributes & RECORD_ATTR_CONTROL);
    keep_entry->last_offset = -1;
    reach(t, record_batch_last_offset(h));
    if (type < 0)
        return true; /* already emptied by an earlier pass */
    if (type != CONTROL_TYPE_ABORT && type != CONTROL_TYPE_COMMIT)
        return false;
    struct cleaned_txn_slot *s = slot_find(t, h->producer_id);
    if (s == NULL)
        return true; /* nothing of its transaction was read */
    bool discard;
    if (type == CONTROL_TYPE_ABORT) {
        discard = !(s->aborted && s->observed);
        if (!discard)
            *keep_entry = s->entry;
        /* Data read as committed but ended by an ABORT: the index lacks the entry. Kafka would
         * let the marker go; keeping it is the safe side (the data is not aborted then). */
        if (s->committed)
            discard = false;
        s->aborted = s->committed = false;
    } else {
        discard = !s->committed;
        s->committed = false;
    }
    slot_maybe_drop(t, s);
    return discard;
}
