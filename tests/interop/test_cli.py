"""The gregor client subcommands (src/cli/, built on librdkafka) against a real broker.

Each test starts its own broker (harness.Broker: free port, temporary directory) and runs
`gregor <subcommand>` as a user would: topic administration, produce -> consume round trips
with keys and headers, consume start positions, cluster info, bench --json, the progress line
only on a terminal, and the failure path with no broker (non-zero exit, one line, fast).
Group subcommands (consume --group, gregor group ...) are tested in test_cli_groups.py.
asan-smoke
"""
import json
import os
import pty
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GREGOR_BIN, SLOW, Broker, Cluster, check, comment,  # noqa: E402
                     free_port, poll, run_tests, test)


def cli(*args, stdin=None, timeout=60, env=None):
    """Runs `gregor ARGS...`; returns the CompletedProcess (text mode)."""
    e = dict(os.environ)
    e.pop("GREGOR_BROKERS", None)
    e.update(env or {})
    return subprocess.run([GREGOR_BIN] + [str(a) for a in args], input=stdin,
                          capture_output=True, text=True, timeout=timeout * SLOW, env=e)


def ok(p, what):
    check(p.returncode == 0, "%s: exit %d, stderr: %s" % (what, p.returncode, p.stderr.strip()))
    return p


def require_cli():
    p = cli("version")
    check(p.returncode == 0 and "librdkafka" in p.stdout,
          "%s has no client subcommands (does src/main.c call cli_main?): %r %r"
          % (GREGOR_BIN, p.stdout, p.stderr))


@test
def test_version_help_and_usage_errors():
    """version names gregor and librdkafka; every subcommand's --help has examples and exits 0;
    an unknown subcommand or option exits 64 with a one-line message."""
    require_cli()
    p = ok(cli("version"), "version")
    check(p.stdout.startswith("gregor ") and "librdkafka 2." in p.stdout, p.stdout)
    for sub in (["topic"], ["produce"], ["consume"], ["group"], ["bench"], ["cluster"]):
        p = ok(cli(*(sub + ["--help"])), "%s --help" % sub)
        check("examples:" in p.stdout and "--brokers" in p.stdout, "%s help: %s" % (sub, p.stdout))
    p = cli("frobnicate")
    check(p.returncode == 64, "unknown subcommand exit %d" % p.returncode)
    p = cli("topic", "list", "--no-such-option")
    check(p.returncode == 64 and len(p.stderr.strip().splitlines()) == 1,
          "unknown option: %d %r" % (p.returncode, p.stderr))
    p = cli("topic", "explode")
    check(p.returncode == 64, "unknown action exit %d" % p.returncode)


@test
def test_no_broker_fails_fast_with_one_line():
    """With nothing listening, every broker-facing subcommand exits non-zero within 10 s and
    prints exactly one line (no librdkafka log noise), naming the address."""
    require_cli()
    port = free_port()
    addr = "127.0.0.1:%d" % port
    cases = [["topic", "list"], ["topic", "describe", "x"], ["topic", "create", "x"],
             ["produce", "x"], ["consume", "x"], ["group", "list"], ["cluster", "info"],
             ["bench", "produce", "-n", "10"]]
    for args in cases:
        t0 = time.monotonic()
        p = cli(*(args + ["-b", addr]), stdin="a\n")
        took = time.monotonic() - t0
        lines = p.stderr.strip().splitlines()
        check(p.returncode != 0, "%s: exit 0 without a broker" % args)
        check(took < 10 * SLOW, "%s: took %.1fs" % (args, took))
        check(len(lines) == 1, "%s: stderr is not one line: %r" % (args, p.stderr))
        check(addr in lines[0], "%s: message does not name %s: %r" % (args, addr, lines[0]))
        check(p.stdout == "", "%s: stdout %r" % (args, p.stdout))
    # GREGOR_BROKERS is the default address
    p = cli("cluster", "info", env={"GREGOR_BROKERS": addr})
    check(p.returncode != 0 and addr in p.stderr, "GREGOR_BROKERS ignored: %r" % p.stderr)


@test
def test_topic_create_list_describe_alter_delete():
    """create with partitions and a config; list shows it; describe shows partitions with
    leader/replicas/ISR, log start/end offsets and the config marked as set on the topic;
    alter grows partitions and changes configs; delete removes it."""
    require_cli()
    with Broker() as b:
        bs = ["-b", b.bootstrap]
        p = ok(cli("topic", "create", "orders", "--partitions", 3, "--config",
                   "retention.ms=3600000", *bs), "create")
        check("orders" in p.stdout, p.stdout)
        p = cli("topic", "create", "orders", *bs)
        check(p.returncode != 0 and "exists" in p.stderr.lower(), "duplicate create: %r" % p.stderr)
        ok(cli("topic", "create", "orders", "--if-not-exists", *bs), "create --if-not-exists")
        p = ok(cli("topic", "list", *bs), "list")
        check("orders" in p.stdout.split(), "list: %r" % p.stdout)
        ok(cli("produce", "orders", "-p", 1, *bs, stdin="a\nb\n"), "produce")
        p = ok(cli("topic", "describe", "orders", *bs), "describe")
        out = p.stdout
        check("Partitions: 3" in out and "ReplicationFactor: 1" in out, out)
        rows = [ln.split() for ln in out.splitlines() if ln.startswith("  ") and
                ln.split() and ln.split()[0].isdigit()]
        check(len(rows) == 3, "partition rows: %r" % rows)
        by_part = {int(r[0]): r for r in rows}
        check(by_part[1][5] == "0" and by_part[1][6] == "2", "offsets of p1: %r" % by_part[1])
        check(by_part[0][6] == "0", "offsets of p0: %r" % by_part[0])
        check("* retention.ms=3600000" in out, "retention.ms not marked: %s" % out)
        check("  cleanup.policy=delete" in out, "cleanup.policy default: %s" % out)
        ok(cli("topic", "alter", "orders", "--partitions", 5, "--config", "segment.ms=600000",
               *bs), "alter")
        out = ok(cli("topic", "describe", "orders", *bs), "describe after alter").stdout
        check("Partitions: 5" in out, out)
        check("* segment.ms=600000" in out and "* retention.ms=3600000" in out,
              "alter lost or missed a config: %s" % out)
        ok(cli("topic", "alter", "orders", "--delete-config", "retention.ms", *bs), "unset")
        out = ok(cli("topic", "describe", "orders", *bs), "describe after unset").stdout
        check("* retention.ms" not in out and "* segment.ms=600000" in out, out)
        ok(cli("topic", "delete", "orders", *bs), "delete")
        p = cli("topic", "describe", "orders", *bs)
        check(p.returncode != 0 and "does not exist" in p.stderr, "after delete: %r" % p.stderr)
        p = cli("topic", "delete", "orders", *bs)
        check(p.returncode != 0, "deleting a missing topic succeeded")
        ok(cli("topic", "delete", "orders", "--if-exists", *bs), "delete --if-exists")


@test
def test_produce_consume_round_trip_with_keys_and_headers():
    """Lines with a key separator and -H headers come back from consume --json and --format
    with the same keys, values, headers and per-partition order; consume --count exits."""
    require_cli()
    with Broker() as b:
        bs = ["-b", b.bootstrap]
        ok(cli("topic", "create", "rt", "--partitions", 2, *bs), "create")
        lines = ["k%d:value %d \u00e9" % (i % 5, i) for i in range(50)]
        ok(cli("produce", "rt", "-K", ":", "-H", "app=cli", "-H", "n=1", "-z", "lz4", *bs,
               stdin="\n".join(lines) + "\n"), "produce")
        p = ok(cli("consume", "rt", "--from-beginning", "--count", 50, "--json", *bs), "consume")
        recs = [json.loads(ln) for ln in p.stdout.splitlines()]
        check(len(recs) == 50, "got %d records" % len(recs))
        for r in recs:
            check(r["headers"] == {"app": "cli", "n": "1"}, "headers %r" % r)
            check(r["topic"] == "rt" and r["timestamp"] > 0, "record %r" % r)
        got = sorted((r["key"], r["value"]) for r in recs)
        want = sorted(tuple(ln.split(":", 1)) for ln in lines)
        check(got == want, "key/value mismatch")
        # same key -> same partition, in produce order
        for key in set(k for k, _ in want):
            vals = [r["value"] for r in sorted(recs, key=lambda r: r["offset"]) if r["key"] == key]
            check(vals == [v for k, v in (ln.split(":", 1) for ln in lines) if k == key],
                  "order for %s: %r" % (key, vals))
            check(len(set(r["partition"] for r in recs if r["key"] == key)) == 1, "key spread")
        p = ok(cli("consume", "rt", "--from-beginning", "--count", 3, "-p", 0,
                   "--format", "%p|%o|%k|%v|%h\\n", *bs), "consume --format")
        rows = p.stdout.splitlines()
        check(len(rows) == 3, "format rows %r" % rows)
        for i, row in enumerate(rows):
            part, off, key, val, hdrs = row.split("|")
            check(part == "0" and off == str(i) and key.startswith("k") and hdrs == "app=cli,n=1",
                  "format row %r" % row)


@test
def test_consume_start_positions_and_idle_exit():
    """--offset N, --offset -N (tail), --timestamp, default (end: nothing old) and
    --idle-exit-ms ending an idle consume."""
    require_cli()
    with Broker() as b:
        bs = ["-b", b.bootstrap]
        ok(cli("topic", "create", "pos", "--partitions", 1, *bs), "create")
        ok(cli("produce", "pos", *bs, stdin="".join("r%d\n" % i for i in range(10))), "produce 1")
        time.sleep(0.05)
        mid_ms = int(time.time() * 1000)
        time.sleep(0.05)
        ok(cli("produce", "pos", *bs, stdin="".join("s%d\n" % i for i in range(5))), "produce 2")
        p = ok(cli("consume", "pos", "--offset", 7, "--count", 3, *bs), "--offset 7")
        check(p.stdout.split() == ["r7", "r8", "r9"], p.stdout)
        p = ok(cli("consume", "pos", "--offset", -2, "--idle-exit-ms", 1000, *bs), "--offset -2")
        check(p.stdout.split() == ["s3", "s4"], p.stdout)
        p = ok(cli("consume", "pos", "--timestamp", mid_ms, "--idle-exit-ms", 1000, *bs), "--ts")
        check(p.stdout.split() == ["s%d" % i for i in range(5)], p.stdout)
        t0 = time.monotonic()
        p = ok(cli("consume", "pos", "--idle-exit-ms", 1500, *bs), "default start")
        check(p.stdout == "", "default start printed old records: %r" % p.stdout)
        check(time.monotonic() - t0 < 10 * SLOW, "idle exit took too long")
        p = cli("consume", "missing-topic", "--idle-exit-ms", 500, *bs)
        check(p.returncode != 0 and "does not exist" in p.stderr, "missing topic: %r" % p.stderr)


@test
def test_produce_reports_delivery_errors():
    """A record that cannot be delivered (partition 7 of a 1-partition topic) makes produce
    exit non-zero with a message; a line without the key separator is reported too."""
    require_cli()
    with Broker() as b:
        bs = ["-b", b.bootstrap]
        ok(cli("topic", "create", "one", "--partitions", 1, *bs), "create")
        p = cli("produce", "one", "--partition", 7, "--delivery-timeout-ms", 3000, *bs,
                stdin="x\n")
        check(p.returncode != 0 and p.stderr.strip(), "bad partition: %d %r" % (p.returncode,
                                                                              p.stderr))
        p = cli("produce", "one", "-K", ":", *bs, stdin="nokey\nk:v\n")
        check(p.returncode != 0 and "separator" in p.stderr, "missing separator: %r" % p.stderr)
        p = ok(cli("consume", "one", "--from-beginning", "--count", 1, "--format", "%k=%v\\n",
                   *bs), "consume")
        check(p.stdout == "k=v\n", p.stdout)


@test
def test_cluster_info():
    """cluster info names the broker, the controller and counts topics and partitions."""
    require_cli()
    with Broker() as b:
        bs = ["-b", b.bootstrap]
        ok(cli("topic", "create", "a", "--partitions", 2, *bs), "create a")
        ok(cli("topic", "create", "b", "--partitions", 3, *bs), "create b")
        out = ok(cli("cluster", "info", *bs), "info").stdout
        check("127.0.0.1:%d" % b.port in out and "(controller)" in out, out)
        check("Topics: 2" in out and "Partitions: 5" in out, out)
        info = json.loads(ok(cli("cluster", "info", "--json", *bs), "info --json").stdout)
        check(info["topics"] == 2 and info["partitions"] == 5, info)
        check(len(info["brokers"]) == 1 and info["brokers"][0]["port"] == b.port, info)
        check(info["controller"] == info["brokers"][0]["id"], info)


@test
def test_topic_describe_log_dirs_on_a_cluster():
    """describe --log-dirs asks every broker (DescribeLogDirs): three brokers of an RF 3 topic
    each list their log directory with volume sizes and a line per replica, the replicas of a
    partition equally big; once a broker is stopped (and fenced), the two live ones are listed."""
    require_cli()
    with Cluster(3) as c:
        bs = ["-b", c.bootstrap]
        ok(cli("topic", "create", "ld", "--partitions", 2, "--replication-factor", 3, *bs),
           "create ld")
        ok(cli("produce", "ld", *bs, stdin="".join("line %d\n" % i for i in range(50))),
           "produce")

        def described():
            out = ok(cli("topic", "describe", "ld", "--log-dirs", *bs), "describe").stdout
            lines = [ln.split() for ln in out.splitlines() if ln.strip().startswith("ld-")]
            sizes = {}
            for ln in lines:
                sizes.setdefault(ln[0], set()).add(int(ln[ln.index("bytes)") - 1].strip("(")))
            for i in c.ids:
                check("broker %d  %s" % (i, os.path.realpath(c.node(i).data_dir)) in out
                      and "usable" in out, out)
            # every replica of each partition, on the three brokers, equally big; the 50 lines
            # are somewhere
            return (len(lines) == 6 and all(len(v) == 1 for v in sizes.values())
                    and sum(min(v) for v in sizes.values()) > 50 * 6 and "offset lag 0" in out)
        poll(described, 20 * SLOW, "six replicas of ld listed with equal sizes")
        c.stop(3)

        def two_left():
            p = cli("topic", "describe", "ld", "--log-dirs", "--timeout-ms", 2000, "-b",
                    c.node(1).bootstrap)
            return (p.returncode == 0 and "  broker 1  " in p.stdout
                    and "  broker 2  " in p.stdout and "  broker 3  " not in p.stdout)
        poll(two_left, 20 * SLOW, "the two live brokers' log dirs only")
        c.restart(3)


def check_bench_json(j, mode, n):
    check(j["mode"] == mode and j["records"] == n and j["errors"] == 0, "bench: %r" % j)
    check(j["records_per_sec"] > 0 and j["mib_per_sec"] > 0 and j["seconds"] > 0, j)


@test
def test_bench_json_produce_consume_e2e():
    """bench produce/consume/e2e --json print one parseable object with throughput and (for
    produce and e2e) ordered latency percentiles over every record."""
    require_cli()
    with Broker() as b:
        bs = ["-b", b.bootstrap]
        p = ok(cli("bench", "produce", "--json", "-t", "bt", "--partitions", 2, "-n", 20000,
                   "-s", 200, "-a", "all", *bs), "bench produce")
        j = json.loads(p.stdout)
        check_bench_json(j, "produce", 20000)
        lat = j["latency_ms"]
        check(lat["samples"] == 20000, lat)
        check(lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat)
        check(j["acks"] == "all" and j["record_size"] == 200, j)
        p = ok(cli("bench", "consume", "--json", "-t", "bt", *bs), "bench consume")
        check_bench_json(json.loads(p.stdout), "consume", 20000)
        p = ok(cli("bench", "e2e", "--json", "-t", "bt", "--rate", 2000, "-n", 1000, *bs),
               "bench e2e")
        j = json.loads(p.stdout)
        check_bench_json(j, "e2e", 1000)
        check(j["latency_ms"]["samples"] == 1000 and j["latency_ms"]["max"] < 5000, j)
        comment("bench produce: %.0f records/s; e2e p99 %.2f ms"
                % (json.loads(ok(cli("bench", "produce", "--json", "-t", "bt", "-n", 20000, *bs),
                                 "again").stdout)["records_per_sec"], j["latency_ms"]["p99"]))


def run_on_pty(args, timeout):
    """Runs gregor with stderr on a pseudo-terminal; returns (exit, stdout, pty output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([GREGOR_BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    stdout = proc.communicate(timeout=timeout)[0]
    os.close(master)
    return proc.returncode, stdout.decode(), out.decode("utf-8", "replace")


@test
def test_bench_progress_line_only_on_a_terminal():
    """A bench lasting over a second prints a live progress line (carriage return) when
    stderr is a terminal, and nothing on stderr when it is a pipe; the summary is on stdout
    either way."""
    require_cli()
    with Broker() as b:
        args = ["bench", "e2e", "-t", "pg", "--partitions", 1, "--rate", 1500, "-n", 3000,
                "-b", b.bootstrap]
        rc, stdout, tty = run_on_pty(args, 60 * SLOW)
        check(rc == 0, "on a pty: exit %d, %r" % (rc, tty))
        check("\r" in tty and "records/s" in tty, "no progress line on the pty: %r" % tty)
        check("e2e pg: 3000 records" in stdout, "summary: %r" % stdout)
        p = ok(cli(*args), "piped")
        check(p.stderr == "", "progress printed to a pipe: %r" % p.stderr)
        check("e2e pg: 3000 records" in p.stdout and "p99.9" in p.stdout, p.stdout)


if __name__ == "__main__":
    run_tests()
