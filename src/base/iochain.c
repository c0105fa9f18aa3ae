/*
 * I/O chain. Invariants: total == sum of pieces' len; send_piece/send_off only move forward;
 * only the last piece may still grow (appends never touch earlier pieces, so positions
 * returned by total stay valid for iochain_patch).
 */
#include "base/iochain.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#define IOCHAIN_MIN_BYTES 4096
#define IOCHAIN_MAX_IOV 64

void iochain_init(struct iochain *c)
{
    memset(c, 0, sizeof(*c));
}

void iochain_free(struct iochain *c)
{
    for (int i = 0; i < c->n; i++) {
        struct iochain_piece *p = &c->pieces[i];
        if (p->kind == IOCHAIN_BYTES)
            free(p->u.bytes.data);
        else if (p->u.file.release)
            p->u.file.release(p->u.file.ctx);
    }
    free(c->pieces);
    memset(c, 0, sizeof(*c));
}

static struct iochain_piece *iochain_new_piece(struct iochain *c)
{
    if (c->n == c->cap) {
        int ncap = c->cap ? c->cap * 2 : 8;
        struct iochain_piece *np = realloc(c->pieces, (size_t)ncap * sizeof(*np));
        if (np == NULL)
            return NULL;
        c->pieces = np;
        c->cap = ncap;
    }
    struct iochain_piece *p = &c->pieces[c->n];
    memset(p, 0, sizeof(*p));
    return p;
}

uint8_t *iochain_reserve(struct iochain *c, size_t n)
{
    struct iochain_piece *last = c->n ? &c->pieces[c->n - 1] : NULL;
    if (last == NULL || last->kind != IOCHAIN_BYTES || last->u.bytes.cap - last->len < n) {
        /* Grow the last byte piece while it is small, else start a new one. */
        if (last != NULL && last->kind == IOCHAIN_BYTES && last->len + n <= 1 << 20) {
            size_t ncap = last->u.bytes.cap * 2;
            while (ncap < last->len + n)
                ncap *= 2;
            uint8_t *nd = realloc(last->u.bytes.data, ncap);
            if (nd == NULL) {
                c->oom = 1;
                return NULL;
            }
            last->u.bytes.data = nd;
            last->u.bytes.cap = ncap;
        } else {
            struct iochain_piece *p = iochain_new_piece(c);
            if (p == NULL) {
                c->oom = 1;
                return NULL;
            }
            size_t cap = n > IOCHAIN_MIN_BYTES ? n : IOCHAIN_MIN_BYTES;
            p->kind = IOCHAIN_BYTES;
            p->u.bytes.data = malloc(cap);
            if (p->u.bytes.data == NULL) {
                c->oom = 1;
                return NULL;
            }
            p->u.bytes.cap = cap;
            c->n++;
            last = p;
        }
    }
    uint8_t *out = last->u.bytes.data + last->len;
    last->len += n;
    c->total += n;
    return out;
}

int iochain_append(struct iochain *c, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    uint8_t *dst = iochain_reserve(c, len);
    if (dst == NULL)
        return -ENOMEM;
    memcpy(dst, data, len);
    return 0;
}

int iochain_append_file(struct iochain *c, int fd, off_t off, size_t len,
                        void (*release)(void *ctx), void *ctx)
{
    struct iochain_piece *p = iochain_new_piece(c);
    if (p == NULL) {
        c->oom = 1;
        if (release)
            release(ctx);
        return -ENOMEM;
    }
    p->kind = IOCHAIN_FILE;
    p->len = len;
    p->u.file.fd = fd;
    p->u.file.off = off;
    p->u.file.release = release;
    p->u.file.ctx = ctx;
    c->n++;
    c->total += len;
    return 0;
}

int iochain_patch(struct iochain *c, size_t pos, const void *data, size_t len)
{
    const uint8_t *src = data;
    size_t base = 0;
    for (int i = 0; i < c->n && len > 0; i++) {
        struct iochain_piece *p = &c->pieces[i];
        if (pos < base + p->len) {
            if (p->kind != IOCHAIN_BYTES)
                return -EINVAL;
            size_t at = pos - base;
            size_t k = p->len - at < len ? p->len - at : len;
            memcpy(p->u.bytes.data + at, src, k);
            src += k;
            pos += k;
            len -= k;
        }
        base += p->len;
    }
    return len == 0 ? 0 : -EINVAL;
}

/* Gathers consecutive byte pieces from the send position into iov; returns the count. */
static int iochain_gather(const struct iochain *c, struct iovec *iov)
{
    int k = 0;
    for (int i = c->send_piece; i < c->n && k < IOCHAIN_MAX_IOV; i++) {
        const struct iochain_piece *p = &c->pieces[i];
        if (p->kind != IOCHAIN_BYTES)
            break;
        size_t skip = i == c->send_piece ? c->send_off : 0;
        if (p->len == skip)
            continue;
        iov[k].iov_base = p->u.bytes.data + skip;
        iov[k].iov_len = p->len - skip;
        k++;
    }
    return k;
}

static void iochain_advance(struct iochain *c, size_t n)
{
    c->sent += n;
    while (n > 0 || (c->send_piece < c->n && c->send_off == c->pieces[c->send_piece].len)) {
        struct iochain_piece *p = &c->pieces[c->send_piece];
        size_t left = p->len - c->send_off;
        if (n < left) {
            c->send_off += n;
            return;
        }
        n -= left;
        c->send_piece++;
        c->send_off = 0;
        if (c->send_piece == c->n)
            return;
    }
}

/* After a failed write: 0 when the socket is full, 1 to try again (EINTR), else -errno. */
static int iochain_write_error(void)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    if (errno == EINTR)
        return 1;
    return -errno;
}

int iochain_send(struct iochain *c, int sock)
{
    if (c->oom)
        return -ENOMEM;
    while (c->send_piece < c->n) {
        struct iochain_piece *p = &c->pieces[c->send_piece];
        ssize_t w;
        if (p->kind == IOCHAIN_BYTES) {
            struct iovec iov[IOCHAIN_MAX_IOV];
            int k = iochain_gather(c, iov);
            if (k == 0) {
                iochain_advance(c, 0);
                continue;
            }
            w = writev(sock, iov, k);
        } else {
            if (p->len == c->send_off) { /* empty file range: sendfile would return 0 (EOF) */
                iochain_advance(c, 0);
                continue;
            }
            off_t off = p->u.file.off + (off_t)c->send_off;
            w = sendfile(sock, p->u.file.fd, &off, p->len - c->send_off);
            if (w == 0)
                return -EIO; /* file shorter than promised */
        }
        if (w < 0) {
            int rc = iochain_write_error();
            if (rc == 1)
                continue;
            return rc;
        }
        iochain_advance(c, (size_t)w);
    }
    return 1;
}

/* Whether a file piece is among the unsent ones. */
static bool iochain_file_pending(const struct iochain *c)
{
    for (int i = c->send_piece; i < c->n; i++)
        if (c->pieces[i].kind == IOCHAIN_FILE && c->pieces[i].len > 0)
            return true;
    return false;
}

int iochain_send_copy(struct iochain *c, int sock, uint8_t *buf, size_t cap)
{
    assert(buf != NULL && cap > 0);
    if (c->oom)
        return -ENOMEM;
    while (c->send_piece < c->n) {
        if (!iochain_file_pending(c))
            return iochain_send(c, sock); /* bytes only: writev them where they are */
        ssize_t n = iochain_copy_pending(c, buf, cap);
        if (n < 0)
            return (int)n;
        assert(n > 0); /* a file piece with bytes is pending */
        ssize_t w = write(sock, buf, (size_t)n);
        if (w < 0) {
            int rc = iochain_write_error();
            if (rc == 1)
                continue;
            return rc;
        }
        c->copied += (size_t)w;
        iochain_advance(c, (size_t)w);
    }
    return 1;
}

void iochain_mark_sent(struct iochain *c, size_t n)
{
    iochain_advance(c, n);
}

ssize_t iochain_copy_pending(const struct iochain *c, uint8_t *buf, size_t cap)
{
    if (c->oom)
        return -ENOMEM;
    size_t at = 0;
    for (int i = c->send_piece; i < c->n && at < cap; i++) {
        const struct iochain_piece *p = &c->pieces[i];
        size_t skip = i == c->send_piece ? c->send_off : 0;
        size_t k = p->len - skip < cap - at ? p->len - skip : cap - at;
        if (p->kind == IOCHAIN_BYTES) {
            memcpy(buf + at, p->u.bytes.data + skip, k);
            at += k;
            continue;
        }
        for (size_t got = 0; got < k;) {
            ssize_t r =
                pread(p->u.file.fd, buf + at + got, k - got, p->u.file.off + (off_t)(skip + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return -errno;
            if (r == 0)
                return -EIO; /* file shorter than promised */
            got += (size_t)r;
        }
        at += k;
    }
    return (ssize_t)at;
}

int iochain_flatten(const struct iochain *c, uint8_t *buf)
{
    size_t at = 0;
    for (int i = 0; i < c->n; i++) {
        const struct iochain_piece *p = &c->pieces[i];
        if (p->kind == IOCHAIN_BYTES) {
            memcpy(buf + at, p->u.bytes.data, p->len);
        } else {
            size_t got = 0;
            while (got < p->len) {
                ssize_t r =
                    pread(p->u.file.fd, buf + at + got, p->len - got, p->u.file.off + (off_t)got);
                if (r <= 0)
                    return -EIO;
                got += (size_t)r;
            }
        }
        at += p->len;
    }
    return 0;
}
