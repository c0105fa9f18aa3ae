"""gregor consume --group, and gregor group list/describe/reset-offsets/delete, against a real
broker: committed offsets and per-partition lag, resets to earliest/latest/offset/datetime with
--dry-run committing nothing, refusal while the group has members, deletion.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GREGOR_BIN, SLOW, Broker, check, run_tests, test  # noqa: E402


def cli(*args, stdin=None, timeout=60):
    e = dict(os.environ)
    e.pop("GREGOR_BROKERS", None)
    return subprocess.run([GREGOR_BIN] + [str(a) for a in args], input=stdin,
                          capture_output=True, text=True, timeout=timeout * SLOW, env=e)


def ok(p, what):
    check(p.returncode == 0, "%s: exit %d, stderr: %s" % (what, p.returncode, p.stderr.strip()))
    return p


def lag_rows(out):
    """{(topic, partition): (current, end, lag)} from group describe's table."""
    rows = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 6 and f[2].isdigit():
            rows[(f[1], int(f[2]))] = (f[3], f[4], f[5])
    return rows


def setup(b, n=10):
    bs = ["-b", b.bootstrap]
    ok(cli("topic", "create", "gt", "--partitions", 2, *bs), "create")
    # Half to each partition, explicitly: which partition a key hashes to is the client's choice.
    for part in (0, 1):
        ok(cli("produce", "gt", "-K", ":", "-p", part, *bs,
               stdin="".join("k%d:v%d\n" % (part, i) for i in range(part, n, 2))), "produce")
    return bs


@test
def test_group_consume_commits_and_describe_shows_lag():
    """consume --group reads everything once and commits; a second run with the same group
    sees nothing old; describe shows committed = end, lag 0; after more records lag grows."""
    with Broker() as b:
        bs = setup(b)
        p = ok(cli("consume", "gt", "-g", "g1", "--from-beginning", "--count", 10, *bs), "c1")
        check(len(p.stdout.splitlines()) == 10, p.stdout)
        p = ok(cli("consume", "gt", "-g", "g1", "--idle-exit-ms", 3000, *bs), "c2")
        check(p.stdout == "", "group re-read committed records: %r" % p.stdout)
        out = ok(cli("group", "list", *bs), "list").stdout
        check("g1" in out.split(), out)
        rows = lag_rows(ok(cli("group", "describe", "g1", *bs), "describe").stdout)
        check(set(rows) == {("gt", 0), ("gt", 1)}, rows)
        check(sum(int(r[0]) for r in rows.values()) == 10, rows)
        check(all(r[2] == "0" for r in rows.values()), rows)
        ok(cli("produce", "gt", "-p", 0, *bs, stdin="x\ny\nz\n"), "produce more")
        rows = lag_rows(ok(cli("group", "describe", "g1", *bs), "describe 2").stdout)
        check(rows[("gt", 0)][2] == "3", rows)


@test
def test_group_reset_offsets():
    """--dry-run prints the plan and commits nothing; --to-earliest, --to-offset (clamped),
    --to-latest and --to-datetime commit what they print; consuming after a reset to
    earliest re-reads everything."""
    with Broker() as b:
        bs = setup(b)
        ok(cli("consume", "gt", "-g", "g2", "--from-beginning", "--count", 10, *bs), "consume")
        before = lag_rows(ok(cli("group", "describe", "g2", *bs), "d").stdout)
        p = ok(cli("group", "reset-offsets", "g2", "--topic", "gt", "--to-earliest", "--dry-run",
                   *bs), "dry run")
        check("dry run" in p.stdout, p.stdout)
        check(lag_rows(ok(cli("group", "describe", "g2", *bs), "d").stdout) == before,
              "dry run committed")
        ok(cli("group", "reset-offsets", "g2", "--topic", "gt", "--to-earliest", *bs), "earliest")
        rows = lag_rows(ok(cli("group", "describe", "g2", *bs), "d").stdout)
        check(all(r[0] == "0" for r in rows.values()), rows)
        p = ok(cli("consume", "gt", "-g", "g2", "--count", 10, *bs), "re-read")
        check(len(p.stdout.splitlines()) == 10, p.stdout)
        ok(cli("group", "reset-offsets", "g2", "-t", "gt", "-p", 0, "--to-offset", 1000, *bs),
           "offset clamp")
        rows = lag_rows(ok(cli("group", "describe", "g2", *bs), "d").stdout)
        check(rows[("gt", 0)][0] == rows[("gt", 0)][1], "not clamped to end: %r" % rows)
        ok(cli("group", "reset-offsets", "g2", "-t", "gt", "--to-datetime",
               int(time.time() * 1000) + 3600000, *bs), "datetime in the future")
        rows = lag_rows(ok(cli("group", "describe", "g2", *bs), "d").stdout)
        check(all(r[2] == "0" for r in rows.values()), rows)
        p = cli("group", "reset-offsets", "g2", "-t", "gt", *bs)
        check(p.returncode == 64, "reset without --to-*: %d" % p.returncode)


@test
def test_group_reset_refused_while_active_and_delete():
    """reset-offsets refuses while a member is consuming; delete removes an empty group and
    describe then fails."""
    with Broker() as b:
        bs = setup(b)
        member = subprocess.Popen([GREGOR_BIN, "consume", "gt", "-g", "g3", "--from-beginning",
                                   "-b", b.bootstrap], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30 * SLOW
            while time.monotonic() < deadline:
                out = cli("group", "describe", "g3", *bs).stdout
                if "Stable" in out:
                    break
                time.sleep(0.5)
            check("Stable" in out, "member never joined: %s" % out)
            p = cli("group", "reset-offsets", "g3", "-t", "gt", "--to-earliest", *bs)
            check(p.returncode != 0 and "active" in p.stderr, "reset while active: %r" % p.stderr)
        finally:
            member.terminate()
            member.wait(timeout=30)
        ok(cli("group", "delete", "g3", *bs), "delete")
        p = cli("group", "describe", "g3", *bs)
        check(p.returncode != 0, "describe after delete succeeded: %s" % p.stdout)


if __name__ == "__main__":
    run_tests()
