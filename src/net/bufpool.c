/*
 * A worker's pool of large receive buffers (request frames of NET_POOL_MIN bytes and more).
 *
 * Why: a produce request carries up to a megabyte or more of record data. Fresh memory for each
 * one costs a page fault per 4 KiB while readv fills it (and, on a virtual machine that returns
 * freed guest pages to its host, a host fault too). Buffers here are mmap'ed once, used for one
 * frame, returned to their size class when the request is freed and handed out again warm: a
 * page is faulted in the first time a frame reaches it and never again while the buffer is
 * pooled. (Not MAP_POPULATE: a peer announcing a large frame and sending little of it must
 * cost only what it sent, as malloc'ed frames did.)
 *
 * Classes are powers of two from 2^NET_POOL_MIN_SHIFT to 2^NET_POOL_MAX_SHIFT bytes of mapping;
 * each buffer starts with a small header (its class and a magic number) and its data follows.
 * Frames larger than the largest class are not pooled (net_bufpool_get returns NULL; the caller
 * uses malloc).
 *
 * Bounds: free buffers are kept up to what the running load has needed at once (the high-water
 * mark of bytes handed out since the last idle release), at least NET_POOL_KEEP_BYTES and at
 * most NET_POOL_KEEP_MAX_BYTES; more goes back to the kernel at once. Keeping the high-water
 * mark matters for acks=all: a client keeps dozens of 1 MiB produce requests parked for the
 * fsync, they complete together, and with a smaller bound half of the next wave mapped (and
 * faulted in) fresh buffers. When no buffer was taken for NET_POOL_IDLE_MS, the release timer
 * unmaps every free buffer and forgets the mark, so an idle broker's RSS does not keep the
 * load's high-water mark.
 *
 * Invariants (asserted): only the owning worker's thread touches the pool; a buffer handed out
 * carries the pool's magic and its class and is counted in `out` and `out_bytes` until it comes
 * back (so out is 0 exactly when out_bytes is); peak_out_bytes >= out_bytes; a free buffer is on
 * exactly its class's list and counted in free_bytes.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include "net/internal.h"

/* Under AddressSanitizer the bytes of a buffer past the frame it holds, and whole free buffers,
 * are poisoned: a read or write beyond a frame is reported as it would be for malloc'ed memory. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define NET_POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define NET_POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define NET_POOL_POISON(p, n) ((void)(p), (void)(n))
#define NET_POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define NET_POOL_MAGIC 0x6e62756675u         /* "nbufu" */
#define NET_POOL_KEEP_BYTES (16u << 20)      /* per worker: a dozen 1 MiB produce requests */
#define NET_POOL_KEEP_MAX_BYTES (256u << 20) /* per worker, however many requests are parked */
#define NET_POOL_IDLE_MS 2000

struct net_buf {
    uint64_t magic;
    int cls;
    struct net_buf *next; /* on the free list */
    uint64_t pad[5];      /* the data starts 64-byte aligned */
};
_Static_assert(sizeof(struct net_buf) == NET_POOL_HEADER, "net_buf header size");

static size_t net_pool_class_bytes(int cls)
{
    return (size_t)1 << (NET_POOL_MIN_SHIFT + cls);
}

/* The smallest class whose buffer holds `size` data bytes, or -1 if none does. */
static int net_pool_class_for(size_t size)
{
    for (int cls = 0; cls < NET_POOL_CLASSES; cls++)
        if (net_pool_class_bytes(cls) - NET_POOL_HEADER >= size)
            return cls;
    return -1;
}

void net_bufpool_init(struct net_bufpool *p, struct net_worker *w)
{
    *p = (struct net_bufpool){.w = w};
}

static void net_pool_unmap(struct net_bufpool *p, struct net_buf *b)
{
    assert(b->magic == NET_POOL_MAGIC);
    size_t bytes = net_pool_class_bytes(b->cls);
    NET_POOL_UNPOISON(b, bytes);
    b->magic = 0;
    munmap(b, bytes);
    net_count(&p->w->counters.pool_bytes, -(int64_t)bytes);
}

/* Unmaps every free buffer. Owning worker thread (or after it exited). */
static void net_bufpool_release(struct net_bufpool *p)
{
    for (int cls = 0; cls < NET_POOL_CLASSES; cls++) {
        while (p->free[cls]) {
            struct net_buf *b = p->free[cls];
            p->free[cls] = b->next;
            p->free_bytes -= net_pool_class_bytes(cls);
            net_pool_unmap(p, b);
        }
    }
    assert(p->free_bytes == 0);
    p->peak_out_bytes = p->out_bytes;
}

void net_bufpool_destroy(struct net_bufpool *p)
{
    net_bufpool_release(p);
    /* Buffers still out belong to requests leaked by a timed-out shutdown (worker.c). */
}

uint8_t *net_bufpool_get(struct net_bufpool *p, size_t size)
{
    assert(net_worker_on_thread(p->w));
    int cls = net_pool_class_for(size);
    if (cls < 0)
        return NULL;
    p->taken_since_check = true;
    struct net_buf *b = p->free[cls];
    if (b != NULL) {
        assert(b->magic == NET_POOL_MAGIC && b->cls == cls);
        p->free[cls] = b->next;
        p->free_bytes -= net_pool_class_bytes(cls);
    } else {
        void *m = mmap(NULL, net_pool_class_bytes(cls), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        net_count(&p->w->counters.pool_bytes, (int64_t)net_pool_class_bytes(cls));
        b = m;
        b->magic = NET_POOL_MAGIC;
        b->cls = cls;
    }
    b->next = NULL;
    p->out++;
    p->out_bytes += net_pool_class_bytes(cls);
    if (p->out_bytes > p->peak_out_bytes)
        p->peak_out_bytes = p->out_bytes;
    assert(p->out > 0 && p->out_bytes > 0);
    size_t cap = net_pool_class_bytes(cls) - NET_POOL_HEADER;
    NET_POOL_UNPOISON(b + 1, size);
    NET_POOL_POISON((uint8_t *)(b + 1) + size, cap - size);
    return (uint8_t *)(b + 1);
}

static void net_bufpool_on_timer(struct net_timer *t)
{
    struct net_bufpool *p = t->arg;
    if (p->taken_since_check) {
        p->taken_since_check = false;
        net_timer_start(p->w, &p->timer, NET_POOL_IDLE_MS, net_bufpool_on_timer, p);
        return;
    }
    net_bufpool_release(p);
}

/* How many bytes of free buffers the pool keeps now (see Bounds above). */
static size_t net_bufpool_keep_bytes(const struct net_bufpool *p)
{
    size_t keep = p->peak_out_bytes;
    if (keep < NET_POOL_KEEP_BYTES)
        keep = NET_POOL_KEEP_BYTES;
    return keep < NET_POOL_KEEP_MAX_BYTES ? keep : NET_POOL_KEEP_MAX_BYTES;
}

void net_bufpool_put(struct net_bufpool *p, uint8_t *data)
{
    assert(net_worker_on_thread(p->w));
    struct net_buf *b = (struct net_buf *)data - 1;
    assert(b->magic == NET_POOL_MAGIC && b->cls >= 0 && b->cls < NET_POOL_CLASSES);
    assert(p->out > 0);
    p->out--;
    size_t bytes = net_pool_class_bytes(b->cls);
    assert(p->out_bytes >= bytes && p->peak_out_bytes >= p->out_bytes);
    p->out_bytes -= bytes;
    assert((p->out == 0) == (p->out_bytes == 0));
    if (p->free_bytes + bytes > net_bufpool_keep_bytes(p) || p->w->stopping) {
        net_pool_unmap(p, b);
        return;
    }
    NET_POOL_POISON(b + 1, bytes - NET_POOL_HEADER);
    b->next = p->free[b->cls];
    p->free[b->cls] = b;
    p->free_bytes += bytes;
    if (!net_timer_armed(&p->timer))
        net_timer_start(p->w, &p->timer, NET_POOL_IDLE_MS, net_bufpool_on_timer, p);
}
