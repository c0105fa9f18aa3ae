/*
 * I/O chain: an outgoing byte stream made of pieces, each either bytes held in memory or a
 * range of a file. Responses are built as chains so that fetched records travel from the page
 * cache to the socket with sendfile(2) and never enter user space; the bytes around them
 * (headers, lengths) go out with writev(2).
 *
 * Ownership: byte pieces are owned by the chain. A file piece borrows an fd; the chain calls the
 * piece's release(ctx) when the chain is freed (after the bytes were sent or the connection
 * died), which is how the storage layer knows a segment file may be closed.
 *
 * Not thread-safe: one thread builds a chain, then hands it over whole.
 */
#ifndef GREGOR_BASE_IOCHAIN_H
#define GREGOR_BASE_IOCHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum iochain_kind { IOCHAIN_BYTES, IOCHAIN_FILE };

struct iochain_piece {
    enum iochain_kind kind;
    size_t len; /* bytes in this piece */
    union {
        struct {
            uint8_t *data;
            size_t cap;
        } bytes;
        struct {
            int fd;
            off_t off;
            void (*release)(void *ctx);
            void *ctx;
        } file;
    } u;
};

struct iochain {
    struct iochain_piece *pieces;
    int n;
    int cap;
    size_t total;    /* bytes in all pieces */
    int send_piece;  /* first piece not completely sent */
    size_t send_off; /* bytes of that piece already sent */
    size_t sent;     /* total bytes sent so far */
    size_t copied;   /* of those, bytes written from a buffer by iochain_send_copy */
    int oom;         /* an append failed; the chain must not be sent */
};

void iochain_init(struct iochain *c);

/* Frees byte pieces and releases file pieces. The chain can be iochain_init'ed again. */
void iochain_free(struct iochain *c);

/* Appends a copy of len bytes. Returns 0 or -ENOMEM (also recorded in c->oom). */
int iochain_append(struct iochain *c, const void *data, size_t len);

/*
 * Returns a pointer to n contiguous writable bytes at the end of the chain, already counted as
 * appended (the caller must fill them). NULL on allocation failure (c->oom set).
 */
uint8_t *iochain_reserve(struct iochain *c, size_t n);

/*
 * Appends a file range. release(ctx) is called exactly once when the chain is freed, even if
 * this call fails (then it is called before returning -ENOMEM). release may be NULL.
 */
int iochain_append_file(struct iochain *c, int fd, off_t off, size_t len,
                        void (*release)(void *ctx), void *ctx);

/* Overwrites len bytes at absolute position pos; the range must lie in byte pieces. */
int iochain_patch(struct iochain *c, size_t pos, const void *data, size_t len);

/*
 * Sends as much as the non-blocking socket takes. Returns 1 when everything is sent, 0 when
 * the socket would block (call again when writable), or a negative errno on failure (the
 * connection should be closed). A file that ended early (truncated under us) yields -EIO.
 */
int iochain_send(struct iochain *c, int sock);

/*
 * iochain_send, but while a file range is pending the pieces are gathered into buf (cap bytes
 * at a time, file ranges read with pread) and written from it with one write(2), instead of a
 * writev and a sendfile per range: two copies per byte, which on a loopback connection beats
 * sendfile (the reader copies from cache-hot socket buffers instead of cold page-cache pages;
 * bench/fetch_vs_iperf.sh). Bytes gathered but not taken by the socket are gathered again on
 * the next call. A file that ended early yields -EIO before any of the chunk is written.
 */
int iochain_send_copy(struct iochain *c, int sock, uint8_t *buf, size_t cap);

/*
 * Copies up to cap bytes from the send position into buf (file ranges read with pread) without
 * marking them sent: for transports that must see the bytes (TLS). Returns the count (0 when
 * everything is sent) or a negative errno; a file that ended early yields -EIO.
 */
ssize_t iochain_copy_pending(const struct iochain *c, uint8_t *buf, size_t cap);

/* Marks n more bytes as sent (n <= total - sent), as iochain_send does for what it wrote. */
void iochain_mark_sent(struct iochain *c, size_t n);

/* Copies the whole chain (file ranges read with pread) into buf of size c->total; for tests. */
int iochain_flatten(const struct iochain *c, uint8_t *buf);

#endif
