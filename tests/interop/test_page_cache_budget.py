"""log.page.cache.max.bytes: the page cache held by written log data stays bounded, and the
data dropped from memory still reads back whole through a real client.

A broker with an 8 MiB budget takes 48 MB from confluent-kafka (2 partitions, acks=all). The
flusher records each 4 MiB writeback round and drops the oldest rounds from the page cache
once on disk. What is resident of the topic's .log files (fincore, from util-linux) must stay
within the budget plus what is not yet in a round (under 4 MiB per partition, plus the round
being dropped), the broker's metrics must count the dropped bytes, and kafka-python must then
read all 48,000 records back in order with their values (from the disk). With -1 (no bound,
Kafka's behaviour) nothing is dropped: the same load stays resident. A deleted topic's data
leaves the budget's count at once, and so do segments deleted by retention or replaced by
compaction, and every segment of a topic whose segments are smaller than a writeback round is
counted. What is tried: a bound far below the data written; no bound; a topic deleted while its
data is counted; retention and compaction removing counted segments; 1 MiB segments.
asan-smoke tsan-smoke
"""
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, check, comment, metric, metrics_port,  # noqa: E402
                     run_tests, test, wait_until)

MIB = 1 << 20
RECORDS = 48000
VALUE = 1000


def value_of(i):
    return (b"%08d" % i) * (VALUE // 8)


def produce(bootstrap, topic, n, keys=None):
    """n records over 2 partitions, acks=all; record i has key i, or i % keys when given."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "batch.size": 1000000})
    failed = []
    for i in range(n):
        while True:
            try:
                p.produce(topic, value_of(i), key=b"%d" % (i % keys if keys else i),
                          partition=i % 2,
                          on_delivery=lambda err, m: err and failed.append(err))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    check(p.flush(60 * SLOW) == 0, "undelivered records")
    check(not failed, "delivery errors: %s" % failed[:3])


def log_files(b, topic):
    out = []
    for d in os.listdir(b.data_dir):
        if re.fullmatch(re.escape(topic) + r"-\d+", d):
            out += [os.path.join(b.data_dir, d, f)
                    for f in os.listdir(os.path.join(b.data_dir, d)) if f.endswith(".log")]
    return out


def resident_bytes(paths):
    r = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES"] + paths,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "fincore: %s" % r.stderr)
    return sum(int(x) for x in r.stdout.split())


def consume_check(bootstrap, topic, n):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_bytes=4 * MIB,
                      consumer_timeout_ms=int(10000 * SLOW))
    parts = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    c.assign(parts)
    c.seek_to_beginning()
    seen = {0: 0, 1: 0}
    deadline = time.monotonic() + 120 * SLOW
    while sum(seen.values()) < n and time.monotonic() < deadline:
        for tp, msgs in c.poll(timeout_ms=1000).items():
            for m in msgs:
                i = 2 * seen[tp.partition] + tp.partition
                check(m.offset == seen[tp.partition] and m.value == value_of(i),
                      "partition %d offset %d: record %d expected" % (tp.partition, m.offset, i))
                seen[tp.partition] += 1
    c.close()
    check(sum(seen.values()) == n, "read back %s of %d records" % (seen, n))


def create(bootstrap, topic, config=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic(topic, 2, 1, config=config or {})]).values():
        f.result(timeout=15 * SLOW)


def on_tmpfs(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return r.stdout.strip() == "tmpfs"


@test
def test_written_data_over_the_budget_leaves_the_page_cache_and_reads_back():
    budget = 8 * MIB
    with Broker({"log.page.cache.max.bytes": budget,
                 "metrics.listener": "http://%s:0" % HOST}) as b:
        if on_tmpfs(b.dir):
            comment("SKIPPED: %s is on tmpfs, whose pages cannot be dropped" % b.dir)
            return
        mport = metrics_port(b)
        create(b.bootstrap, "bounded")
        produce(b.bootstrap, "bounded", RECORDS)
        files = log_files(b, "bounded")
        written = sum(os.path.getsize(f) for f in files)
        check(written >= RECORDS * VALUE, "log bytes %d" % written)
        # Not yet in a writeback round: under 4 MiB per partition; one round being dropped.
        limit = budget + 2 * 4 * MIB + 4 * MIB
        # The last round's range is recorded after its acknowledgement and trimmed just after.
        wait_until(lambda: resident_bytes(files) <= limit
                   and (metric(mport, "gregor_log_page_cache_bytes") or 0) <= budget,
                   10 * SLOW, what="resident log bytes <= %d" % limit)
        res = resident_bytes(files)
        dropped = metric(mport, "gregor_log_page_cache_dropped_bytes_total")
        cached = metric(mport, "gregor_log_page_cache_bytes")
        comment("written %d, resident %d, metrics: cached %s dropped %s"
                % (written, res, cached, dropped))
        check(cached is not None and cached <= budget, "cached metric %s" % cached)
        check(dropped is not None and dropped >= written - limit,
              "dropped metric %s of %d written" % (dropped, written))
        consume_check(b.bootstrap, "bounded", RECORDS)


@test
def test_a_deleted_topics_data_stops_counting_toward_the_budget():
    """What is tried: a topic written under a budget larger than it, then deleted with
    confluent-kafka's AdminClient. Its recorded ranges must leave the budget's total at once
    (the gauge back to 0), not stay counted until they become the oldest, which would drop
    other topics' newer data from memory in their place."""
    from confluent_kafka.admin import AdminClient
    with Broker({"log.page.cache.max.bytes": 256 * MIB,
                 "metrics.listener": "http://%s:0" % HOST}) as b:
        mport = metrics_port(b)
        create(b.bootstrap, "gone")
        produce(b.bootstrap, "gone", RECORDS // 2)
        wait_until(lambda: (metric(mport, "gregor_log_page_cache_bytes") or 0) >= 8 * MIB,
                   10 * SLOW, what="the topic's writeback rounds recorded")
        before = metric(mport, "gregor_log_page_cache_bytes")
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in a.delete_topics(["gone"]).values():
            f.result(timeout=15 * SLOW)
        wait_until(lambda: metric(mport, "gregor_log_page_cache_bytes") == 0, 10 * SLOW,
                   what="the deleted topic's bytes out of the budget")
        comment("recorded %d bytes before the deletion, 0 after" % before)
        check(metric(mport, "gregor_log_page_cache_dropped_bytes_total") == 0,
              "nothing dropped: the budget was never exceeded")


def live_log_bytes(b, topic):
    return sum(os.path.getsize(f) for f in log_files(b, topic))


@test
def test_segments_deleted_by_retention_or_replaced_by_compaction_stop_counting():
    """What is tried: a topic of 4 MiB segments (one writeback round each) written far past its
    retention.bytes, and a compacted topic of 4 MiB segments whose 24 MB hold 100 distinct keys,
    under a budget larger than both. Once retention has deleted the old segments and the
    cleaner has replaced the others with their small compacted copies, the budget's gauge must
    be at most what the topics' live .log files hold: the ranges recorded for the files that
    left stop counting (they would otherwise count until they became the oldest, and the
    budget would then drop newer data in their place), and nothing is dropped."""
    seg = 4 * MIB
    with Broker({"log.page.cache.max.bytes": 256 * MIB, "log.retention.check.interval.ms": 300,
                 "metrics.listener": "http://%s:0" % HOST}) as b:
        mport = metrics_port(b)
        create(b.bootstrap, "retained", {"segment.bytes": str(seg),
                                              "retention.bytes": str(seg),
                                              "file.delete.delay.ms": "0"})
        create(b.bootstrap, "compacted", {"segment.bytes": str(seg),
                                               "cleanup.policy": "compact",
                                               "min.cleanable.dirty.ratio": "0.01",
                                               "file.delete.delay.ms": "0"})
        produce(b.bootstrap, "retained", RECORDS // 2)
        produce(b.bootstrap, "compacted", RECORDS // 2, keys=100)
        written = RECORDS * VALUE

        def settled():
            live = live_log_bytes(b, "retained") + live_log_bytes(b, "compacted")
            cached = metric(mport, "gregor_log_page_cache_bytes")
            settled.last = (live, cached)
            text = b.log_text()
            compacted = all("compacted-%d: compacted" % i in text for i in (0, 1))
            # 12 MB per partition in 4 MiB segments: retention leaves at most two.
            retained = len(log_files(b, "retained")) <= 4
            return compacted and retained and cached is not None and cached <= live
        settled.last = None
        try:
            wait_until(settled, 30 * SLOW, what="budget gauge <= live log bytes")
        finally:
            comment("last (live .log bytes, gauge): %r" % (settled.last,))
        live, cached = settled.last
        comment("written %d bytes, live .log bytes %d, gauge %d" % (written, live, cached))
        check(metric(mport, "gregor_log_page_cache_dropped_bytes_total") == 0,
              "nothing dropped: the budget was never exceeded")


@test
def test_segments_smaller_than_a_writeback_round_are_all_counted():
    """What is tried: a topic of 1 MiB segments, four of which roll in one 4 MiB writeback
    round, takes 24 MB under a budget larger than that. Every segment's bytes must be counted:
    the gauge must reach the topic's .log bytes less what is not yet in a round (under half a
    round, 2 MiB, per partition; 4 MiB each allowed), and never pass them. Before every rolled
    segment was handed to the budget, only the last two of a round were, and about half the
    data stayed in memory uncounted."""
    with Broker({"log.page.cache.max.bytes": 256 * MIB,
                 "metrics.listener": "http://%s:0" % HOST}) as b:
        mport = metrics_port(b)
        create(b.bootstrap, "small", {"segment.bytes": str(MIB)})
        produce(b.bootstrap, "small", RECORDS // 2)

        def counted():
            live = live_log_bytes(b, "small")
            cached = metric(mport, "gregor_log_page_cache_bytes") or 0
            counted.last = (live, cached, len(log_files(b, "small")))
            return live - 2 * 4 * MIB <= cached <= live
        counted.last = None
        try:
            wait_until(counted, 10 * SLOW, what="gauge within 8 MiB below the live .log bytes")
        finally:
            comment("last (live .log bytes, gauge, segments): %r" % (counted.last,))
        check(counted.last[2] >= 20, "segments: %d" % counted.last[2])


@test
def test_no_bound_keeps_written_data_cached():
    with Broker({"log.page.cache.max.bytes": -1,
                 "metrics.listener": "http://%s:0" % HOST}) as b:
        mport = metrics_port(b)
        create(b.bootstrap, "unbounded")
        produce(b.bootstrap, "unbounded", RECORDS // 2)
        files = log_files(b, "unbounded")
        written = sum(os.path.getsize(f) for f in files)
        res = resident_bytes(files)
        comment("written %d, resident %d" % (written, res))
        check(res >= written * 0.9, "resident %d of %d written" % (res, written))
        check(metric(mport, "gregor_log_page_cache_dropped_bytes_total") is None,
              "no budget, no budget metrics")


if __name__ == "__main__":
    run_tests()
