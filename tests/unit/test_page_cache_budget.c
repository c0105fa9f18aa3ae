/* Page-cache budget: the oldest written ranges over the bound leave the page cache, newer ones
 * stay; deleted files are skipped; through the flusher, a log's old data is dropped as new
 * data is written and still reads back whole. Residency is read with mincore(2). */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "storage/flusher.h"
#include "storage/log.h"
#include "storage/page_cache_budget.h"
#include "test.h"
#include "test_storage_util.h"

#define MIB (1 << 20)
#define TMPFS_MAGIC_NUMBER 0x01021994

/* Pages of [from, to) of the file resident in the page cache. */
static long resident_pages(const char *path, int64_t from, int64_t to)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    void *map = mmap(NULL, (size_t)to, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    long page = sysconf(_SC_PAGESIZE), n = 0;
    size_t npages = (size_t)((to + page - 1) / page);
    unsigned char *vec = malloc(npages);
    if (vec && mincore(map, (size_t)to, vec) == 0)
        for (size_t i = (size_t)(from / page); i < npages; i++)
            n += vec[i] & 1;
    free(vec);
    munmap(map, (size_t)to);
    return n;
}

/* A file of `mib` MiB written through the page cache (not synced). */
static bool write_file(const char *path, int mib)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return false;
    static char chunk[MIB];
    memset(chunk, 'x', sizeof(chunk));
    bool ok = true;
    for (int i = 0; i < mib && ok; i++)
        ok = write(fd, chunk, sizeof(chunk)) == (ssize_t)sizeof(chunk);
    close(fd);
    return ok;
}

/* tmpfs keeps file pages in memory whatever is advised: nothing to measure there. */
static bool dir_on_tmpfs(const char *dir)
{
    struct statfs st;
    return statfs(dir, &st) == 0 && st.f_type == TMPFS_MAGIC_NUMBER;
}

TEST(test_oldest_ranges_over_the_budget_leave_the_page_cache)
{
    char *dir = tmpdir_make();
    if (dir_on_tmpfs(dir))
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/00000000000000000000.log", dir);
    CHECK(write_file(path, 8));
    long page = sysconf(_SC_PAGESIZE), per_mib = MIB / page;
    CHECK_EQ_INT(resident_pages(path, 0, 8 * MIB), 8 * per_mib);
    struct page_cache_budget *b;
    CHECK(page_cache_budget_create(4 * MIB, &b) == 0);
    for (int i = 0; i < 4; i++)
        page_cache_budget_note(b, path, 2LL * i * MIB, 2LL * (i + 1) * MIB);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 8 * MIB); /* recorded, not yet trimmed */
    CHECK_EQ_INT(resident_pages(path, 0, 8 * MIB), 8 * per_mib);
    page_cache_budget_trim(b);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 4 * MIB);
    CHECK_EQ_INT(page_cache_budget_dropped_bytes(b), 4 * MIB);
    CHECK_EQ_INT(resident_pages(path, 0, 4 * MIB), 0);
    CHECK_EQ_INT(resident_pages(path, 4 * MIB, 8 * MIB), 4 * per_mib);
    /* One more range takes exactly the oldest record out, never a newer one. */
    page_cache_budget_note(b, path, 8 * MIB, 8 * MIB + 4096);
    page_cache_budget_trim(b);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 2 * MIB + 4096);
    CHECK_EQ_INT(resident_pages(path, 4 * MIB, 6 * MIB), 0);
    CHECK_EQ_INT(resident_pages(path, 6 * MIB, 8 * MIB), 2 * per_mib);
    page_cache_budget_destroy(b);
}

TEST(test_a_deleted_file_is_skipped_and_many_records_fit)
{
    char *dir = tmpdir_make();
    char gone[PATH_MAX], kept[PATH_MAX];
    snprintf(gone, sizeof(gone), "%s/gone.log", dir);
    snprintf(kept, sizeof(kept), "%s/kept.log", dir);
    CHECK(write_file(gone, 1));
    CHECK(write_file(kept, 1));
    struct page_cache_budget *b;
    CHECK(page_cache_budget_create(4096, &b) == 0);
    page_cache_budget_note(b, gone, 0, 4096);
    CHECK(unlink(gone) == 0);
    page_cache_budget_note(b, kept, 0, 4096);
    page_cache_budget_trim(b);
    /* 254 more records, the ring growing past its first size, then trimmed at once. */
    for (int i = 1; i < 255; i++)
        page_cache_budget_note(b, kept, 4096LL * i, 4096LL * (i + 1));
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 255 * 4096);
    page_cache_budget_trim(b);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 4096);
    CHECK_EQ_INT(page_cache_budget_dropped_bytes(b), 254 * 4096); /* the deleted one: nothing */
    page_cache_budget_note(b, kept, 5000, 5000);                  /* empty: not recorded */
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 4096);
    /* A budget of 0 keeps nothing. */
    struct page_cache_budget *none;
    CHECK(page_cache_budget_create(0, &none) == 0);
    page_cache_budget_note(none, kept, 0, MIB);
    page_cache_budget_trim(none);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(none), 0);
    CHECK_EQ_INT(resident_pages(kept, 0, MIB), dir_on_tmpfs(dir) ? MIB / 4096 : 0);
    page_cache_budget_destroy(none);
    page_cache_budget_destroy(b);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Bad case tried: a deleted partition's recently written ranges would count until they became
 * the oldest, so live data of other logs written before them would be dropped in their place.
 * Forgetting the partition's directory takes them out of the total at once; a directory whose
 * name only starts the same ("t-10" against "t-1") keeps its records; and trimming past a
 * forgotten record drops nothing of a new file at its path (a partition of the same name
 * created again), though a zero length means "to the end" to fadvise. */
TEST(test_a_deleted_partitions_ranges_stop_counting_at_once)
{
    char *dir = tmpdir_make();
    if (dir_on_tmpfs(dir))
        return;
    char d1[PATH_MAX], d10[PATH_MAX], p1[PATH_MAX + 32], p10[PATH_MAX + 32];
    snprintf(d1, sizeof(d1), "%s/t-1", dir);
    snprintf(d10, sizeof(d10), "%s/t-10", dir);
    CHECK(mkdir(d1, 0755) == 0 && mkdir(d10, 0755) == 0);
    snprintf(p1, sizeof(p1), "%s/00000000000000000000.log", d1);
    snprintf(p10, sizeof(p10), "%s/00000000000000000000.log", d10);
    CHECK(write_file(p10, 6));
    CHECK(write_file(p1, 2));
    long per_mib = MIB / sysconf(_SC_PAGESIZE);
    struct page_cache_budget *b;
    CHECK(page_cache_budget_create(2 * MIB, &b) == 0);
    page_cache_budget_note(b, p10, 0, 2 * MIB); /* older, live */
    page_cache_budget_note(b, p1, 0, 2 * MIB);  /* newer, its partition then deleted */
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 4 * MIB);
    page_cache_budget_forget_dir(b, d1);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 2 * MIB);
    CHECK(!page_cache_budget_over(b));
    page_cache_budget_trim(b);
    CHECK_EQ_INT(page_cache_budget_dropped_bytes(b), 0);
    CHECK_EQ_INT(resident_pages(p10, 0, 2 * MIB), 2 * per_mib);
    /* Two more ranges of t-10: the trims take its oldest, then the forgotten record, then the
     * next; p1 (standing for a new partition's file at that path) stays cached. */
    page_cache_budget_note(b, p10, 2 * MIB, 4 * MIB);
    page_cache_budget_trim(b);
    page_cache_budget_note(b, p10, 4 * MIB, 6 * MIB);
    page_cache_budget_trim(b);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 2 * MIB);
    CHECK_EQ_INT(page_cache_budget_dropped_bytes(b), 4 * MIB);
    CHECK_EQ_INT(resident_pages(p10, 0, 4 * MIB), 0);
    CHECK_EQ_INT(resident_pages(p10, 4 * MIB, 6 * MIB), 2 * per_mib);
    CHECK_EQ_INT(resident_pages(p1, 0, 2 * MIB), 2 * per_mib);
    page_cache_budget_destroy(b);
}

/* Bad cases tried: forgetting one file must not forget a file whose name only starts the same
 * ("...0.log" against "...0.log.deleted") nor another file of the directory; forgetting from a
 * position (a truncation's cut) keeps what is below it; twice or past the end changes nothing. */
TEST(test_forgetting_a_file_takes_only_its_own_ranges)
{
    struct page_cache_budget *b;
    CHECK(page_cache_budget_create(64 * MIB, &b) == 0);
    page_cache_budget_note(b, "/d/t-0/00000000000000000000.log", 0, MIB);
    page_cache_budget_note(b, "/d/t-0/00000000000000000000.log.deleted", 0, 2 * MIB);
    page_cache_budget_note(b, "/d/t-0/00000000000000000100.log", 0, 4 * MIB);
    page_cache_budget_note(b, "/d/t-0/00000000000000000000.log", MIB, 3 * MIB);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 9 * MIB);
    /* From 2 MiB on (a truncation's cut): [0, 1) stays, [1, 3) becomes [1, 2). */
    page_cache_budget_forget_file(b, "/d/t-0/00000000000000000000.log", 2 * MIB);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 8 * MIB);
    page_cache_budget_forget_file(b, "/d/t-0/00000000000000000000.log", 0);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 6 * MIB);
    page_cache_budget_forget_file(b, "/d/t-0/00000000000000000000.log", 0); /* again: nothing */
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 6 * MIB);
    page_cache_budget_forget_file(b, "/d/t-0/00000000000000000100.log", 5 * MIB); /* past it */
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 6 * MIB);
    page_cache_budget_forget_file(b, "/d/t-0/00000000000000000100.log", 0);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), 2 * MIB);
    page_cache_budget_destroy(b);
}

/* Records every .log of the directory as written [0, size), in name (offset) order, as the
 * flusher would after its rounds. Returns how many; their sizes in size[]. */
static int note_all_segments(struct page_cache_budget *b, const char *pdir, int64_t size[8])
{
    struct dirent **names;
    int n = scandir(pdir, &names, NULL, alphasort), k = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && strcmp(names[i]->d_name + len - 4, ".log") == 0 && k < 8) {
            char path[PATH_MAX + sizeof(names[i]->d_name) + 1];
            snprintf(path, sizeof(path), "%s/%s", pdir, names[i]->d_name);
            size[k] = (int64_t)file_size(path);
            page_cache_budget_note(b, path, 0, size[k++]);
        }
        free(names[i]);
    }
    free(names);
    return k;
}

/* The log's own deletions reach the budget of its flusher: segments removed by retention and
 * by a truncation stop counting at once (they would otherwise count until they became the
 * oldest and push newer data of other logs out of memory in their place). What is tried:
 * retention.bytes deleting the two oldest of four segments, then a truncation into the third,
 * which drops the fourth and cuts the third. Under 4 MiB is appended, so the flusher records
 * nothing by itself: the test records each segment's bytes as the flusher would. */
/* A log "t-0" under dir of 1 MiB segments (cfg), appended to until it has four; NULL on error. */
static struct log *open_four_segments(const char *dir, struct log_config *cfg)
{
    *cfg = log_config_defaults();
    cfg->segment_bytes = MIB;
    struct log *log;
    if (log_open(dir, "t", 0, cfg, NULL, &log) != 0)
        return NULL;
    while (log_segment_count(log) < 4)
        test_append(log, 50, 1000, 1000);
    return log;
}

TEST(test_segments_deleted_by_retention_or_truncation_leave_the_budget)
{
    char *dir = tmpdir_make();
    char pdir[PATH_MAX];
    snprintf(pdir, sizeof(pdir), "%s/t-0", dir);
    struct log_config cfg;
    struct log *log = open_four_segments(dir, &cfg);
    CHECK(log != NULL);
    struct log_flusher *f;
    CHECK(log_flusher_create(&f) == 0);
    CHECK(log_flusher_limit_page_cache(f, 64 * MIB) == 0);
    struct page_cache_budget *b = log_flusher_page_cache_budget(f);
    CHECK(log_flusher_add(f, log) == 0);
    int64_t size[8];
    CHECK_EQ_INT(note_all_segments(b, pdir, size), 4);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), size[0] + size[1] + size[2] + size[3]);
    log_set_high_watermark(log, log_end_offset(log));
    cfg.retention_bytes = size[2] + size[3];
    log_set_config(log, &cfg);
    CHECK_EQ_INT(log_apply_retention(log, 0), 2);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), size[2] + size[3]);
    /* Into the third segment (the first left): the fourth goes whole, the third keeps what
     * is below the cut. */
    CHECK(log_truncate_to(log, log_start_offset(log) + 50) == 0);
    CHECK_EQ_INT(log_segment_count(log), 1);
    CHECK(log_size_bytes(log) > 0 && log_size_bytes(log) < size[2]);
    CHECK_EQ_INT(page_cache_budget_cached_bytes(b), log_size_bytes(log));
    log_flusher_remove(f, log);
    log_flusher_destroy(f);
    log_close(log);
    tmpdir_remove(dir);
}

TEST(test_flusher_drops_a_logs_old_data_as_new_data_is_written)
{
    char *dir = tmpdir_make();
    if (dir_on_tmpfs(dir))
        return;
    struct log *log;
    struct log_flusher *f;
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 8 * MIB; /* a roll on the way: the rolled segment's end is counted too */
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    CHECK(log_flusher_create(&f) == 0);
    CHECK(log_flusher_limit_page_cache(f, 4 * MIB) == 0);
    struct page_cache_budget *b = log_flusher_page_cache_budget(f);
    CHECK(b != NULL);
    CHECK(log_flusher_add(f, log) == 0);
    enum { BATCHES = 320, RECORDS = 50, VALUE = 1000 }; /* about 16 MiB */
    for (int i = 0; i < BATCHES; i++)
        CHECK_EQ_INT(test_append(log, RECORDS, VALUE, 1000), (int64_t)i * RECORDS);
    for (int i = 0; i < 5000 && page_cache_budget_dropped_bytes(b) < 8 * MIB; i++)
        sleep_ms(1);
    CHECK(page_cache_budget_dropped_bytes(b) >= 8 * MIB);
    CHECK(page_cache_budget_cached_bytes(b) <= 4 * MIB);
    CHECK(log_segment_count(log) >= 2);
    char first[PATH_MAX];
    snprintf(first, sizeof(first), "%s/t-0/00000000000000000000.log", dir);
    CHECK_EQ_INT(resident_pages(first, 0, 4 * MIB), 0);
    log_flusher_remove(f, log);
    log_flusher_destroy(f);
    /* Dropped from memory, not from the log: every batch reads back from the disk. */
    int64_t off = 0, batches = 0;
    while (off < log_end_offset(log)) {
        struct log_read_result r;
        CHECK(log_read(log, off, MIB, INT64_MAX, true, &r) == 0);
        CHECK(r.range.length > 0 && r.first_offset == off);
        uint8_t head[12];
        CHECK(pread(r.range.fd, head, sizeof(head), r.range.position) == (ssize_t)sizeof(head));
        int64_t base = 0;
        for (int i = 0; i < 8; i++)
            base = base << 8 | head[i];
        CHECK_EQ_INT(base, off);
        batches += (r.next_offset - off) / RECORDS;
        off = r.next_offset;
        log_read_release(&r);
    }
    CHECK_EQ_INT(batches, BATCHES);
    log_close(log);
}

/* What log_take_written handed out. */
struct taken {
    int n;
    struct {
        char path[PATH_MAX];
        int64_t from, to;
    } r[8];
};

static void collect(void *arg, const char *path, int64_t from, int64_t to)
{
    struct taken *t = arg;
    if (t->n < 8) {
        snprintf(t->r[t->n].path, sizeof(t->r[t->n].path), "%s", path);
        t->r[t->n].from = from;
        t->r[t->n].to = to;
    }
    t->n++;
}

/* log_take_written into *t (emptied first); how many ranges. */
static int take(struct log *log, struct taken *t)
{
    t->n = 0;
    int n = log_take_written(log, collect, t);
    return n == t->n ? n : -1;
}

/* Appends batches of 50 x 1000 B until the log's active segment holds at least `bytes`. */
static void append_until(struct log *log, int64_t bytes, const char *path)
{
    while ((int64_t)file_size(path) < bytes)
        test_append(log, 50, 1000, 1000);
}

TEST(test_log_hands_out_written_ranges_per_round_and_not_what_was_there_at_open)
{
    char *dir = tmpdir_make();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/t-0/00000000000000000000.log", dir);
    struct log *log;
    struct taken w;
    CHECK(log_open(dir, "t", 0, NULL, NULL, &log) == 0);
    append_until(log, LOG_WRITEBACK_BYTES / 4, path);
    CHECK_EQ_INT(take(log, &w), 0); /* less than half a round */
    append_until(log, LOG_WRITEBACK_BYTES / 2, path);
    int64_t size = (int64_t)file_size(path);
    CHECK_EQ_INT(take(log, &w), 1);
    CHECK(strcmp(w.r[0].path, path) == 0 && w.r[0].from == 0 && w.r[0].to == size);
    log_close(log);
    /* Reopened: the bytes already there are not handed out as written. */
    CHECK(log_open(dir, "t", 0, NULL, NULL, &log) == 0);
    test_append(log, 50, 1000, 1000);
    CHECK_EQ_INT(take(log, &w), 0);
    append_until(log, size + LOG_WRITEBACK_BYTES / 2, path);
    CHECK_EQ_INT(take(log, &w), 1);
    CHECK(w.r[0].from == size && w.r[0].to == (int64_t)file_size(path));
    log_close(log);
}

TEST(test_log_hands_out_a_rolled_segments_end_and_starts_over_after_a_truncation)
{
    char *dir = tmpdir_make();
    char first[PATH_MAX], second[PATH_MAX];
    snprintf(first, sizeof(first), "%s/t-0/00000000000000000000.log", dir);
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 3 * MIB;
    struct log *log;
    struct taken w;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    append_until(log, MIB, first);
    CHECK_EQ_INT(take(log, &w), 0);
    /* Rolled: the first segment's bytes (all of them: never taken) and the new one's. */
    while (log_segment_count(log) < 2)
        test_append(log, 50, 1000, 1000);
    int64_t end = log_end_offset(log);
    snprintf(second, sizeof(second), "%s/t-0/%020lld.log", dir, (long long)(end - 50));
    CHECK_EQ_INT(take(log, &w), 2);
    CHECK(strcmp(w.r[0].path, first) == 0 && w.r[0].from == 0 &&
          w.r[0].to == (int64_t)file_size(first));
    CHECK(strcmp(w.r[1].path, second) == 0 && w.r[1].from == 0 &&
          w.r[1].to == (int64_t)file_size(second));
    /* Truncated below what was taken: the next range starts at the new end, nothing twice. */
    append_until(log, MIB, second);
    CHECK_EQ_INT(take(log, &w), 0);
    CHECK(log_truncate_to(log, end) == 0);
    int64_t cut = (int64_t)file_size(second);
    CHECK(cut < MIB);
    append_until(log, cut + LOG_WRITEBACK_BYTES / 2, second);
    CHECK_EQ_INT(take(log, &w), 1);
    CHECK(w.r[0].from == cut && w.r[0].to == (int64_t)file_size(second));
    log_close(log);
}

/* Bad case tried: segments smaller than a writeback round roll several times between two
 * takes; each one's bytes must be handed out (the budget would otherwise not count them, and
 * they would stay in memory outside its bound), and a segment that retention deleted before
 * the take is skipped, not handed out. */
TEST(test_log_hands_out_every_segment_rolled_between_two_takes)
{
    char *dir = tmpdir_make();
    struct log_config cfg;
    struct log *log = open_four_segments(dir, &cfg);
    CHECK(log != NULL);
    struct taken w;
    CHECK_EQ_INT(take(log, &w), 4);
    int64_t sum = 0;
    for (int i = 0; i < 4; i++) {
        CHECK(w.r[i].from == 0 && w.r[i].to == (int64_t)file_size(w.r[i].path));
        CHECK(i == 0 || strcmp(w.r[i - 1].path, w.r[i].path) < 0);
        sum += w.r[i].to;
    }
    CHECK_EQ_INT(sum, log_size_bytes(log));
    /* Four more segments, then retention deletes all but the active one before the take: the
     * segment the last take stopped in is gone, the active one is handed out whole. */
    size_t before = log_segment_count(log);
    while (log_segment_count(log) < before + 4)
        test_append(log, 50, 1000, 1000);
    log_set_high_watermark(log, log_end_offset(log));
    cfg.retention_bytes = 1;
    log_set_config(log, &cfg);
    CHECK_EQ_INT(log_apply_retention(log, 0), (int64_t)before + 3);
    size_t left = log_segment_count(log);
    CHECK_EQ_INT(left, 1);
    CHECK_EQ_INT(take(log, &w), (int64_t)left);
    sum = 0;
    for (int i = 0; i < w.n; i++) {
        CHECK(w.r[i].from == 0);
        sum += w.r[i].to;
    }
    CHECK_EQ_INT(sum, log_size_bytes(log));
    log_close(log);
    tmpdir_remove(dir);
}

TEST_MAIN
