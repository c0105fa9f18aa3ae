/*
 * The console's message browser: GET /api/topics/<t>/partitions/<p>/messages?offset=N&limit=M
 * (or ?timestamp=MS: from the first record at or after that time, found with the time index
 * as ListOffsets does) reads a page of records from this broker's copy of the partition, below the
 * high watermark (what a consumer could see), and renders keys, values and headers as text when
 * they are valid UTF-8, else hex.
 *
 * Bounds, so no request can make the broker work or allocate without limit: at most
 * CONSOLE_MESSAGES_MAX records, CONSOLE_READS_MAX log reads of CONSOLE_READ_BYTES (a single
 * batch larger than that is read whole up to CONSOLE_BATCH_MAX), decompression bounded by
 * CONSOLE_DECOMPRESS_MAX, and CONSOLE_FIELD_MAX bytes shown per key, value or header value
 * (the JSON says when a field was truncated). The read buffer is the only allocation besides
 * the response.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker_internal.h"
#include "broker/console_api.h"
#include "broker/partition.h"
#include "cluster/controller.h"
#include "console/json.h"
#include "record/byteorder.h"
#include "record/record_batch.h"
#include "record/record_iter.h"
#include "storage/log.h"

#define CONSOLE_MESSAGES_DEFAULT 20
#define CONSOLE_MESSAGES_MAX 100
#define CONSOLE_READS_MAX 8
#define CONSOLE_READ_BYTES (1 << 20)
#define CONSOLE_BATCH_MAX (16 << 20)
#define CONSOLE_DECOMPRESS_MAX (32 << 20)
#define CONSOLE_FIELD_MAX 16384

/* Where a page is: the partition, the requested range, and how far rendering got. */
struct console_page {
    struct log *log;
    int64_t offset;    /* first offset asked for */
    int64_t next;      /* offset after the last record (or batch) looked at */
    int64_t hw;        /* records at or past this are not shown */
    int limit, count;  /* records wanted, records written */
    const char *error; /* set when the log could not be read */
};

/* Reads the file range of r into a new buffer (caller frees). NULL with errno on failure. */
static uint8_t *console_read_range(const struct log_read_result *r, size_t *len)
{
    size_t n = (size_t)r->range.length;
    if (n > CONSOLE_BATCH_MAX)
        n = CONSOLE_BATCH_MAX;
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return NULL;
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(r->range.fd, buf + got, n - got, r->range.position + (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    *len = got;
    return buf;
}

static void console_write_headers(struct expo *e, const struct record *rec)
{
    expo_printf(e, ",\"headers\":[");
    const uint8_t *hp = rec->headers;
    struct record_header h;
    for (int n = 0; hp && record_header_next(&hp, rec->headers_end, &h) == 1; n++) {
        expo_printf(e, "%s{", n ? "," : "");
        json_bytes_field(e, "key", h.key, h.key_len, CONSOLE_FIELD_MAX);
        expo_printf(e, ",");
        json_bytes_field(e, "value", h.value, h.value ? h.value_len : -1, CONSOLE_FIELD_MAX);
        expo_printf(e, "}");
    }
    expo_printf(e, "]");
}

static void console_write_record(struct expo *e, const struct record_batch_header *bh,
                                 const struct record *rec, bool first)
{
    expo_printf(e, "%s{\"offset\":%lld,\"timestamp\":%lld,\"timestamp_type\":\"%s\",",
                first ? "" : ",", (long long)rec->offset, (long long)rec->timestamp,
                bh->attributes & RECORD_ATTR_LOG_APPEND_TIME ? "LogAppendTime" : "CreateTime");
    json_bytes_field(e, "key", rec->key, rec->key ? rec->key_len : -1, CONSOLE_FIELD_MAX);
    expo_printf(e, ",");
    json_bytes_field(e, "value", rec->value, rec->value ? rec->value_len : -1, CONSOLE_FIELD_MAX);
    console_write_headers(e, rec);
    expo_printf(e, "}");
}

/* Renders the records of one batch at or past pg->offset. 0, or a record error. */
static int console_render_batch(struct console_page *pg, const uint8_t *batch, size_t len,
                                const struct record_batch_header *bh, struct expo *e)
{
    int64_t last = bh->base_offset + bh->last_offset_delta;
    if (bh->attributes & RECORD_ATTR_CONTROL) { /* transaction markers: not records */
        pg->next = last + 1;
        return 0;
    }
    struct record_iter it;
    int rc = record_iter_init(&it, batch, len, CONSOLE_DECOMPRESS_MAX);
    struct record rec;
    while (rc == 0 && pg->count < pg->limit && (rc = record_iter_next(&it, &rec)) == 1) {
        rc = 0;
        if (rec.offset < pg->offset || rec.offset >= pg->hw)
            continue;
        console_write_record(e, bh, &rec, pg->count == 0);
        pg->count++;
        pg->next = rec.offset + 1;
    }
    record_iter_release(&it);
    if (rc < 0)
        return rc;
    if (pg->count < pg->limit && last + 1 > pg->next)
        pg->next = last + 1; /* the whole batch was looked at */
    return 0;
}

/* Renders the whole batches in buf[0..len). 0, or a record error. */
static int console_render_batches(struct console_page *pg, const uint8_t *buf, size_t len,
                                  struct expo *e)
{
    size_t pos = 0;
    while (pg->count < pg->limit && len - pos >= RECORD_BATCH_HEADER_SIZE) {
        struct record_batch_header bh;
        int rc = record_batch_header_parse(buf + pos, len - pos, &bh);
        if (rc != 0)
            return rc;
        size_t whole = (size_t)bh.batch_length + RECORD_BATCH_LOG_OVERHEAD;
        if (bh.batch_length < RECORD_BATCH_MIN_LENGTH || whole > len - pos)
            break; /* cut by the read size: the next read starts at this batch */
        if ((rc = console_render_batch(pg, buf + pos, whole, &bh, e)) != 0)
            return rc;
        pos += whole;
    }
    return 0;
}

/* One log read at pg->next and its records. 1 to go on, 0 when done, -1 on error. */
static int console_page_step(struct console_page *pg, struct expo *e)
{
    struct log_read_result r;
    int rc = log_read(pg->log, pg->next, CONSOLE_READ_BYTES, pg->hw, true, &r);
    if (rc != 0 || r.range.length == 0) {
        log_read_release(&r);
        if (rc == LOG_ERR_OFFLINE)
            pg->error = "the partition's log is offline";
        else if (rc != 0 && rc != LOG_ERR_OFFSET_OUT_OF_RANGE)
            pg->error = "cannot read the partition's log";
        return rc != 0 && rc != LOG_ERR_OFFSET_OUT_OF_RANGE ? -1 : 0;
    }
    size_t len = 0;
    int64_t range = r.range.length;
    uint8_t *buf = console_read_range(&r, &len);
    log_read_release(&r);
    if (buf == NULL) {
        pg->error = "out of memory reading the log";
        return -1;
    }
    int64_t before = pg->next;
    rc = console_render_batches(pg, buf, len, e);
    free(buf);
    if (rc != 0) {
        pg->error = "the log holds a batch that cannot be decoded";
        return -1;
    }
    if (pg->next == before && range > CONSOLE_BATCH_MAX) {
        pg->error = "the next batch is larger than the console reads (16 MiB)";
        return -1;
    }
    return pg->next > before && pg->count < pg->limit && pg->next < pg->hw ? 1 : 0;
}

/* Parses offset (default: log start) or timestamp (ms; -1 when absent), and limit (default 20,
 * at most 100). 0 or an HTTP 400. */
static int console_page_args(const struct console_request *req, int64_t *offset, int64_t *ts,
                             int *limit, struct expo *e)
{
    const char *o = req->arg(req, "offset");
    const char *t = req->arg(req, "timestamp");
    const char *l = req->arg(req, "limit");
    *offset = -1;
    *ts = -1;
    *limit = CONSOLE_MESSAGES_DEFAULT;
    if (o != NULL && t != NULL)
        return json_error(e, 400, "give an offset or a timestamp, not both");
    if (o != NULL && (*offset = console_api_parse_count(o)) < 0)
        return json_error(e, 400, "offset '%.40s' is not a non-negative integer", o);
    if (t != NULL && (*ts = console_api_parse_count(t)) < 0)
        return json_error(e, 400, "timestamp '%.40s' is not a non-negative time in ms", t);
    if (l != NULL) {
        int64_t v = console_api_parse_count(l);
        if (v < 1)
            return json_error(e, 400, "limit '%.40s' is not a positive integer", l);
        if (v > CONSOLE_MESSAGES_MAX)
            return json_error(e, 400, "limit %lld is above the maximum page size of %d records",
                              (long long)v, CONSOLE_MESSAGES_MAX);
        *limit = (int)v;
    }
    return 0;
}

/* Which answer when this broker has no copy: 404 naming the topic, partition or leader. */
static int console_page_not_here(struct broker *b, const char *topic, int32_t partition,
                                 struct expo *e)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = img ? metadata_image_topic_by_name(img, topic) : NULL;
    int rc;
    if (t == NULL)
        rc = json_error(e, 404, "unknown topic '%.249s'", topic);
    else if ((uint32_t)partition >= t->n_partitions)
        rc = json_error(e, 404, "topic '%.249s' has no partition %d (it has %u)", topic, partition,
                        t->n_partitions);
    else
        rc = json_error(e, 404,
                        "partition %d of '%.249s' is not hosted on broker %d (leader: %d); "
                        "open the console of a broker that hosts it",
                        partition, topic, b->cfg.node_id, t->partitions[partition].leader);
    if (img)
        metadata_image_release(img);
    return rc;
}

static void console_page_open(struct expo *e, const char *topic, int32_t partition,
                              const struct console_page *pg, int64_t start, int64_t end)
{
    expo_printf(e, "{\"topic\":");
    json_string(e, topic);
    expo_printf(e,
                ",\"partition\":%d,\"log_start_offset\":%lld,\"log_end_offset\":%lld,"
                "\"high_watermark\":%lld,\"offset\":%lld,\"limit\":%d,\"records\":[",
                partition, (long long)start, (long long)end, (long long)pg->hw,
                (long long)pg->offset, pg->limit);
}

/*
 * The first offset whose timestamp is >= ts, by the time index as ListOffsets finds it; the
 * high watermark (an empty page) when every visible record is older. 0 or -1 on a read error.
 */
static int console_page_seek_time(struct console_page *pg, int64_t ts)
{
    int64_t off, found;
    int rc = log_offset_for_timestamp(pg->log, ts, &off, &found);
    if (rc == -ENOENT || (rc == 0 && off >= pg->hw)) {
        pg->offset = pg->hw;
        return 0;
    }
    if (rc != 0)
        return -1;
    pg->offset = off;
    return 0;
}

int console_api_messages(struct broker *b, const char *topic, int32_t partition,
                         const struct console_request *req, struct expo *out)
{
    struct console_page pg = {0};
    int64_t ts;
    int rc = console_page_args(req, &pg.offset, &ts, &pg.limit, out);
    if (rc != 0)
        return rc;
    struct partition *p = partition_get(b->parts, topic, partition);
    if (p == NULL)
        return console_page_not_here(b, topic, partition, out);
    pg.log = p->log;
    int64_t start = log_start_offset(p->log), end = log_end_offset(p->log);
    pg.hw = log_high_watermark(p->log);
    if (ts >= 0 && console_page_seek_time(&pg, ts) != 0) {
        partition_put(p);
        return json_error(out, 503, "cannot search the partition's time index");
    }
    if (pg.offset > end) {
        partition_put(p);
        return json_error(out, 400, "offset %lld is past the log end offset %lld",
                          (long long)pg.offset, (long long)end);
    }
    if (pg.offset < start)
        pg.offset = start; /* retention removed the rest: show from what is left */
    pg.next = pg.offset;
    console_page_open(out, topic, partition, &pg, start, end);
    int step = pg.next < pg.hw ? 1 : 0;
    for (int reads = 0; step == 1 && reads < CONSOLE_READS_MAX; reads++)
        step = console_page_step(&pg, out);
    partition_put(p);
    expo_printf(out, "],\"next_offset\":%lld,\"count\":%d", (long long)pg.next, pg.count);
    if (pg.error) {
        expo_printf(out, ",\"error\":");
        json_string(out, pg.error);
    }
    expo_printf(out, "}");
    return 200;
}
