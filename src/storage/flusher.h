/*
 * Group-commit flusher: one background thread that fdatasyncs logs on demand and on Kafka's
 * flush.messages / flush.ms intervals.
 *
 * log_flush_request(log, offset, cb, arg) queues a wish "tell me when everything below
 * `offset` is durable". The flusher wakes, takes every queued request, runs one log_flush() per
 * distinct log (one fdatasync per dirty segment covers every append that came before it), then
 * calls each callback with 0 or the error.
 *
 * CALLBACKS RUN ON THE FLUSHER THREAD. They must be short and must not call back into the
 * flusher's add/remove/destroy; the network layer posts the completion to its own thread.
 */
#ifndef GREGOR_STORAGE_FLUSHER_H
#define GREGOR_STORAGE_FLUSHER_H

#include <stdint.h>

struct log;
struct log_flusher;

typedef void (*log_flush_cb)(void *arg, int err);

/* Starts the thread. 0 or negative errno. */
int log_flusher_create(struct log_flusher **out);
/* Flushes whatever is queued, completes every request, stops the thread. Remove logs first. */
void log_flusher_destroy(struct log_flusher *f);

/*
 * Bounds the page cache held by written log data to max_bytes (page_cache_budget.h): after
 * each writeback or flush of a log, the flusher thread records what was written and drops
 * the oldest data over the bound. Call once, before any log is added. 0 or -ENOMEM.
 */
int log_flusher_limit_page_cache(struct log_flusher *f, int64_t max_bytes);
/* The budget set by log_flusher_limit_page_cache, or NULL (metrics). Any thread. */
struct page_cache_budget *log_flusher_page_cache_budget(struct log_flusher *f);

/* Registers a log for interval flushing and for log_flush_request. Any thread. */
int log_flusher_add(struct log_flusher *f, struct log *log);
/* Unregisters; pending requests of this log are completed (flushed) before it returns. */
void log_flusher_remove(struct log_flusher *f, struct log *log);

/*
 * Calls cb(arg, err) on the flusher thread once data below `offset` is fdatasynced (at once,
 * on the calling thread, if it already is). A log without a flusher is flushed synchronously
 * on the calling thread. 0 if queued/completed, -ENOMEM (cb not called).
 */
int log_flush_request(struct log *log, int64_t offset, log_flush_cb cb, void *arg);

/* Wakes the flusher to flush `log` (flush.messages reached). Any thread. */
void log_flusher_poke(struct log_flusher *f, struct log *log);

/* Asks the flusher to start writeback of `log`'s active segment (log_start_writeback): no
 * sync, nobody waits. Any thread; dropped when out of memory. */
void log_flusher_writeback(struct log_flusher *f, struct log *log);

/*
 * Optional observer of flush durations (metrics): fn(arg, ns) runs ON THE FLUSHER THREAD after
 * every log_flush() the thread makes, with its duration in nanoseconds. fn must be cheap and
 * stay callable until log_flusher_destroy() or until replaced. NULL removes it. Any thread.
 */
struct log_flush_observer {
    void (*fn)(void *arg, int64_t ns);
    void *arg;
};
void log_flusher_set_observer(struct log_flusher *f, const struct log_flush_observer *obs);

#endif
