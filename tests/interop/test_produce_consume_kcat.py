"""kcat (librdkafka 2.0.2) produces N keyed messages per codec (none, gzip, snappy, lz4, zstd)
into a 4-partition topic and consumes them back to the end: every message arrives exactly
once with its key and value, each key stays in one partition in production order, and every
partition's offsets run 0..n-1 without gaps.

N comes from GREGOR_SCALE (default 1,000,000; at most 20,000 under GREGOR_ASAN=1).
Runs under ThreadSanitizer too (tsan-smoke).
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ASAN, SLOW, Broker, check, comment, run_tests, test  # noqa: E402

N = int(os.environ.get("GREGOR_SCALE", "1000000"))
if ASAN:
    N = min(N, 20000)
KEYS = 1000
PARTITIONS = 4


def write_input(path, n, codec):
    """Lines 'key:value'; values carry the codec, key and a per-key sequence number plus
    some compressible filler."""
    seq = [0] * KEYS
    with open(path, "w") as f:
        for i in range(n):
            k = (i * 7919) % KEYS
            f.write("key%d:%s-%d-%d-%s\n" % (k, codec, k, seq[k], "abcdefgh" * (i % 5)))
            seq[k] += 1


def kcat(args, timeout, stdout=None):
    t0 = time.monotonic()
    p = subprocess.run(["kcat"] + args, stdout=stdout or subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, start_new_session=True)
    return p, time.monotonic() - t0


def produce_consume(codec):
    with Broker({"num.partitions": PARTITIONS}) as b:
        d = b.dir
        inp = os.path.join(d, "in.txt")
        out = os.path.join(d, "out.txt")
        write_input(inp, N, codec)
        topic = "kcat-" + codec
        p, dt = kcat(["-b", b.bootstrap, "-t", topic, "-P", "-K:", "-l", inp,
                      "-X", "compression.codec=" + codec, "-X", "linger.ms=20",
                      "-X", "queue.buffering.max.messages=1000000",
                      "-X", "message.timeout.ms=%d" % (300000 * SLOW)],
                     timeout=600 * SLOW)
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode == 0, "kcat -P exit %d: %s" % (p.returncode, err[-2000:]))
        check("Delivery failed" not in err and "ERROR" not in err,
              "kcat -P reported errors: %s" % err[-2000:])
        comment("%s: produced %d in %.1fs (%.0f msg/s)" % (codec, N, dt, N / dt))
        with open(out, "wb") as f:
            p, dt = kcat(["-b", b.bootstrap, "-t", topic, "-C", "-e", "-o", "beginning", "-q",
                          "-f", "%p\t%o\t%k\t%s\n"], timeout=600 * SLOW, stdout=f)
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode == 0, "kcat -C exit %d: %s" % (p.returncode, err[-2000:]))
        comment("%s: consumed in %.1fs" % (codec, dt))
        key_part = {}
        next_off = {}
        next_seq = {}
        count = 0
        with open(out, "r") as f:
            for line in f:
                part, off, key, value = line.rstrip("\n").split("\t")
                part, off = int(part), int(off)
                check(off == next_off.get(part, 0), "partition %d: offset %d after %d"
                      % (part, off, next_off.get(part, 0) - 1))
                next_off[part] = off + 1
                check(key_part.setdefault(key, part) == part, "key %s in partitions %d and %d"
                      % (key, key_part[key], part))
                c, k, s, _ = value.split("-", 3)
                check(c == codec and key == "key" + k, "bad message %r" % line)
                check(int(s) == next_seq.get(key, 0), "key %s: seq %s after %d (order/dup/loss)"
                      % (key, s, next_seq.get(key, 0) - 1))
                next_seq[key] = int(s) + 1
                count += 1
        check(count == N, "consumed %d messages, produced %d" % (count, N))
        check(sum(next_off.values()) == N, "partition ends %r" % next_off)
        comment("%s: partitions %r" % (codec, sorted(next_off.items())))


def make_test(codec):
    def t():
        produce_consume(codec)
    t.__name__ = "test_kcat_roundtrip_" + codec
    t.__doc__ = "kcat -P -K: with compression.codec=%s, then kcat -C -e; compare." % codec
    return test(t)


for _codec in ("none", "gzip", "snappy", "lz4", "zstd"):
    make_test(_codec)


if __name__ == "__main__":
    comment("N=%d per codec" % N)
    run_tests()
