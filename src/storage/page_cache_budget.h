/*
 * Page-cache budget for written log data: the most bytes of recently written log data the
 * broker leaves in the kernel's page cache (log.page.cache.max.bytes).
 *
 * The flusher records every range of a .log whose writeback it started, oldest first. While the
 * recorded ranges add up to more than the budget, the oldest ones are dropped from the page
 * cache: their writeback is waited for (sync_file_range), then POSIX_FADV_DONTNEED frees their
 * pages. The kernel hands those pages to the next writes, which therefore reuse memory the
 * machine has just touched instead of growing the page cache into memory it has not touched
 * for a while. On a VM whose host takes freed memory back (free page reporting), a page of new
 * page cache costs a host fault: about 2 s per GiB ingested on the machine Gregor is measured
 * on (bench/first_touch.sh), more than the whole broker's CPU per GiB.
 *
 * What it costs: a consumer more than the budget behind the newest writes (all logs together)
 * reads from the disk instead of memory. Data read back from the disk is not tracked.
 *
 * Invariant: `total` is the sum of to - from over the recorded ranges, and it is at most
 * `max_bytes` when page_cache_budget_trim() returns (the oldest ranges are taken out of the
 * records under the lock and dropped after it is released).
 */
#ifndef GREGOR_STORAGE_PAGE_CACHE_BUDGET_H
#define GREGOR_STORAGE_PAGE_CACHE_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct page_cache_budget;

/* A budget of max_bytes (>= 0). 0 or -ENOMEM. */
int page_cache_budget_create(int64_t max_bytes, struct page_cache_budget **out);
/* Frees the records; drops nothing. */
void page_cache_budget_destroy(struct page_cache_budget *b);

/*
 * Records that bytes [from, to) of the file at `path` (copied) were written and their
 * writeback started. Any thread. Out of memory: the range is not recorded (it stays cached,
 * as without a budget).
 */
void page_cache_budget_note(struct page_cache_budget *b, const char *path, int64_t from,
                            int64_t to);

/*
 * Drops the oldest recorded ranges from the page cache while the total is over the budget,
 * waiting for their writeback first. A file gone since it was recorded (deleted segment) is
 * skipped. The file I/O runs without the budget's lock; any thread, several at once.
 */
void page_cache_budget_trim(struct page_cache_budget *b);

/*
 * Forgets the recorded ranges of files under the directory `dir` (a partition being deleted):
 * their pages leave with the files, so they stop counting toward the budget at once instead of
 * when they become the oldest, and no newer, live data is dropped in their place meanwhile.
 * Any thread; a scan of the records under the lock.
 */
void page_cache_budget_forget_dir(struct page_cache_budget *b, const char *dir);

/*
 * Forgets the recorded bytes at and after `from` of the one file at `path`: 0 for a segment
 * deleted by retention, DeleteRecords or truncation, or replaced by its compacted copy; the cut
 * position for a segment a truncation shortened. As forget_dir, for one file. Without it they
 * would count until they became the oldest, and the trim would then drop a range of whatever
 * file has that path by then (the compacted copy, or data appended after the cut). Any thread.
 */
void page_cache_budget_forget_file(struct page_cache_budget *b, const char *path, int64_t from);

/* Whether the recorded total is over the budget (a trim would drop something). Any thread. */
bool page_cache_budget_over(struct page_cache_budget *b);

/* Bytes recorded and still cached, and bytes dropped so far. Any thread. */
int64_t page_cache_budget_cached_bytes(struct page_cache_budget *b);
int64_t page_cache_budget_dropped_bytes(struct page_cache_budget *b);

#endif
