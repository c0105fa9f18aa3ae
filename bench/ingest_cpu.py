#!/usr/bin/python3
"""Broker CPU-seconds per GiB ingested (issue 18): Gregor next to librdkafka's in-memory mock
broker, in one run, with the same client.

For each target (a fresh `gregor serve` on an empty data dir; the peer benchmark's
`mockbroker`, built from $PEERS/mockbroker.c into build/bench/) and each acks (1, all), runs
`gregor bench produce --record-size 1024 --num-records N --acks A` into a fresh 1-partition
topic and reads the broker's utime+stime from /proc/PID/stat just before and after. Prints
CPU-s per GiB of record values, MiB/s, the broker's context switches per GiB (all its threads,
from /proc/PID/task/*/status), and Gregor/mock ratios, and Gregor's RSS at start and
idle 5 s after the load; --rounds R repeats everything
(targets alternate) and reports medians. The load average is printed with the figures because
the machine is shared.

  /usr/bin/python3 bench/ingest_cpu.py [--records 1000000] [--rounds 3] [--partitions 1]
      [--gregor NAME=PATH[@KEY=VALUE...]]...  (several binaries or settings side by side,
                             e.g. before=... after=..., or
                             bounded=build/gregor@log.page.cache.max.bytes=268435456)
      [--page-cache cold|warm|grown] (cold: 10 s pause before each run, so every target's
                                page cache comes from pages the VM host took back; warm: a file
                                of the run's size written and deleted just before, so it reuses
                                pages just touched, as a machine without free page reporting;
                                grown: files are written and kept until pages come only from
                                the host, as in the peer benchmark's 6.5 GB repetitions, and
                                a plain 1 GiB write (kept) is timed just before and just after
                                each run: when both are slow, so were the run's pages)
      [--floor]             (also, each round, bench/loopback_recv.c with no broker: the same
                             bytes over loopback TCP in 1 MiB frames, then discarded, copied
                             into memory (what the mock does) or CRC-32C-checked and appended
                             to a file with writeback ahead and a 1 GiB page-cache bound (what
                             a broker writing to disk cannot avoid); its CPU-s/GiB is the floor
                             Gregor's is set against)
      [--floor-modes M,...] (loopback_recv modes for --floor; default discard,memcpy,file-crc;
                             also file, splice and splice-crc: socket -> pipe -> file with
                             splice(2), the CRC read back through a mapping)
      [--perf-record DIR]   (perf record -g of Gregor's runs of the first round into
                             DIR/perf-acks{1,all}.data; perf's own cost then inflates that
                             round's CPU figures, so use a separate run for them)
Bounded: every client run has a timeout; brokers and data dirs go at the end.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GREGOR_BIN") or os.path.join(ROOT, "build", "gregor")
PEERS = os.environ.get("PEERS_DIR", "/work/shared/bench-peers")
MOCK = os.path.join(ROOT, "build", "bench", "mockbroker")
FLOOR = os.path.join(ROOT, "build", "bench", "loopback_recv")
FLOOR_MODES = ("discard", "memcpy", "file-crc")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def context_switches(pid):
    """Voluntary + involuntary context switches of all the process's threads so far (threads
    that ended are not counted: the brokers keep theirs for the whole run)."""
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        n += int(line.split()[1])
        except FileNotFoundError:
            pass
    return n


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return -1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(p, port):
    deadline = time.time() + 15
    while time.time() < deadline:
        if p.poll() is not None:
            sys.exit("broker exited with %d" % p.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("broker did not start")


def start_gregor(d, spec):
    """spec: PATH, or PATH@KEY=VALUE[@KEY=VALUE...] for extra broker properties."""
    binary, *props = spec.split("@")
    port = free_port()
    data = os.path.join(d, "data")
    shutil.rmtree(data, ignore_errors=True)
    log = open(os.path.join(d, "gregor.log"), "ab")
    argv = [binary, "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
            "--override", "log.dirs=%s" % data, "--override", "num.partitions=1"]
    for prop in props:
        argv += ["--override", prop]
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    wait_port(p, port)
    return p, "127.0.0.1:%d" % port


def build_mock():
    src = os.path.join(PEERS, "mockbroker.c")
    if os.path.exists(MOCK) and os.path.getmtime(MOCK) >= os.path.getmtime(src):
        return
    os.makedirs(os.path.dirname(MOCK), exist_ok=True)
    subprocess.run(["cc", "-O2", "-std=c17", "-pthread", "-o", MOCK, src, "-lrdkafka", "-lm"],
                   check=True)


def build_floor():
    os.makedirs(os.path.dirname(FLOOR), exist_ok=True)
    subprocess.run(["cc", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                    "-I" + os.path.join(ROOT, "src"), "-o", FLOOR,
                    os.path.join(ROOT, "bench", "loopback_recv.c"),
                    os.path.join(ROOT, "src", "record", "crc32c.c")], check=True)


def floor_run(d, mode, a):
    """bench/loopback_recv.c in `mode` for the run's bytes; its receiver's CPU per GiB."""
    out = subprocess.run([FLOOR, mode, d, "%.6f" % (a.records * 1024 / (1 << 30))],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit("loopback_recv %s failed: %s" % (mode, out.stderr.strip()))
    j = json.loads(out.stdout)
    return {"cpu_s_per_gib": j["cpu_s_per_gib"], "mib_s": j["mib_per_sec"],
            "switches_per_gib": 0}


def start_mock(d, topics, partitions):
    args = [MOCK]
    for t in topics:
        args += ["--topic", "%s:%d" % (t, partitions)]
    out = open(os.path.join(d, "mock.addr"), "w+")
    p = subprocess.Popen(args, stdout=out, stderr=open(os.path.join(d, "mock.log"), "ab"))
    deadline = time.time() + 15
    while time.time() < deadline:
        out.seek(0)
        line = out.readline().strip()
        if line:
            return p, line
        if p.poll() is not None:
            sys.exit("mockbroker exited")
        time.sleep(0.05)
    p.kill()
    sys.exit("mockbroker did not start")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


GROW_CHUNK = 256 << 20
GROW_MAX_GIB = 12


def write_file(path, nbytes):
    """Writes nbytes of zeros to path through the page cache (no sync); returns the seconds of
    system time the writing took (what the kernel spent putting the pages in the page cache)."""
    chunk = b"\0" * ((1 << 20) - 1000)  # unaligned, as a log's batches: the kernel then takes
    t0 = os.times().system               # the same mix of folio sizes as for the broker's log
    with open(path, "wb") as f:
        for _ in range(nbytes // len(chunk)):
            f.write(chunk)
    return os.times().system - t0


def grow_page_cache(d):
    """Writes and keeps 256 MiB files until pages come from the host: a reference chunk is
    written, deleted and written again (its pages reused: the warm cost), then chunks are kept
    until four in a row (1 GiB) each cost at least 5 x that, so the next run's page cache
    cannot reuse pages freed before it. Returns the files (delete them after the run)."""
    ref = os.path.join(d, "grow-ref.tmp")
    write_file(ref, GROW_CHUNK)
    os.unlink(ref)
    warm = max(write_file(ref, GROW_CHUNK), 0.01)
    os.unlink(ref)
    files, slow = [], 0
    while slow < 4 and len(files) * GROW_CHUNK < GROW_MAX_GIB << 30:
        path = os.path.join(d, "grown-%d.tmp" % len(files))
        files.append(path)
        slow = slow + 1 if write_file(path, GROW_CHUNK) >= 5 * warm else 0
    return files


def prepare_page_cache(d, a):
    """Puts the free memory the next run's page cache will take into a known state: "cold"
    waits until the pages freed by the previous run are handed back to the host (a VM with free
    page reporting takes them after a few seconds); "warm" writes and deletes a file of the
    run's size first, so the run reuses pages just touched, as on a machine without that."""
    if a.page_cache == "cold":
        time.sleep(10)
        return []
    if a.page_cache == "grown":
        return grow_page_cache(d)
    path = os.path.join(d, "warm.tmp")
    write_file(path, int(a.records * 1024 * 1.1))
    os.unlink(path)
    return []


def produce(pid, brokers, topic, acks, a, perf_out=None, create=True):
    perf = None
    if perf_out:
        perf = subprocess.Popen(["perf", "record", "-g", "-o", perf_out, "-p", str(pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    c0, s0 = cpu_seconds(pid), context_switches(pid)
    out = subprocess.run([BIN, "bench", "produce", "-b", brokers, "-t", topic, "-s", "1024",
                          "-a", acks, "-n", str(a.records), "--json"] +
                         (["--partitions", str(a.partitions)] if create else []),
                         capture_output=True, text=True, timeout=600)
    c1, s1 = cpu_seconds(pid), context_switches(pid)
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait(60)
    if out.returncode != 0:
        sys.exit("gregor bench produce failed: %s" % out.stderr.strip())
    j = json.loads(out.stdout.strip().splitlines()[-1])
    gib = a.records * 1024 / (1 << 30)
    return {"cpu_s_per_gib": (c1 - c0) / gib, "mib_s": j["mib_per_sec"],
            "switches_per_gib": (s1 - s0) / gib,
            "p99_ms": (j.get("latency_ms") or {}).get("p99", -1)}


def produce_probed(d, grown, run):
    """Runs run(); with grown files (--page-cache grown), a plain 1 GiB write (kept) is timed
    just before and just after it: when both are slow, the run's pages came from the host too.
    Deletes the grown files. Returns run()'s figures and a note for the round's line."""
    if not grown:
        return run(), ""
    grown.append(os.path.join(d, "probe-before.tmp"))
    before = write_file(grown[-1], 1 << 30)
    r = run()
    grown.append(os.path.join(d, "probe-after.tmp"))
    after = write_file(grown[-1], 1 << 30)
    for f in grown:
        os.unlink(f)
    r["plain_write_s_per_gib"] = (before + after) / 2
    return r, ", plain 1 GiB writes %.2f s before, %.2f s after" % (before, after)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--perf-record", metavar="DIR")
    ap.add_argument("--no-mock", action="store_true")
    ap.add_argument("--floor", action="store_true")
    ap.add_argument("--floor-modes", default=",".join(FLOOR_MODES),
                    help="loopback_recv modes --floor runs (also: file, splice, splice-crc)")
    ap.add_argument("--page-cache", choices=("cold", "warm", "grown"), default="cold")
    ap.add_argument("--gregor", action="append", metavar="NAME=PATH[@KEY=VALUE...]",
                    help="Gregor binaries to compare, each with optional broker properties "
                    "(default gregor=$GREGOR_BIN or build/gregor)")
    a = ap.parse_args()
    bins = dict(g.split("=", 1) for g in a.gregor) if a.gregor else {"gregor": BIN}
    build_mock()
    if a.floor:
        build_floor()
    d = tempfile.mkdtemp(prefix="gregor-ingest-cpu-")
    res = {}  # (target, acks) -> [figures]
    try:
        for rnd in range(a.rounds):
            targets = list(bins) + ([] if a.no_mock else ["mock"])
            if rnd % 2:
                targets.reverse()
            for target in targets:
                topics = ["ingest-%d-%s" % (rnd, acks) for acks in ("1", "all")]
                if target != "mock":
                    p, brokers = start_gregor(d, bins[target])
                else:
                    p, brokers = start_mock(d, topics, a.partitions)
                rss0 = rss_mib(p.pid)
                try:
                    for acks, topic in zip(("1", "all"), topics):
                        perf = None
                        if a.perf_record and target != "mock" and rnd == 0:
                            os.makedirs(a.perf_record, exist_ok=True)
                            perf = os.path.join(a.perf_record, "perf-%s-acks%s.data" % (target, acks))
                        grown = prepare_page_cache(d, a)
                        r, probe = produce_probed(d, grown, lambda: produce(
                            p.pid, brokers, topic, acks, a, perf, target != "mock"))
                        res.setdefault((target, acks), []).append(r)
                        print("round %d %-8s acks=%-3s %6.2f CPU-s/GiB %7.1f MiB/s %6d switches/GiB"
                              "%s  (load %s)" % (
                            rnd, target, acks, r["cpu_s_per_gib"], r["mib_s"],
                            r["switches_per_gib"], probe,
                            os.getloadavg()[0]), flush=True)
                    if target != "mock":
                        time.sleep(5)  # idle: pooled receive buffers go back after 2 s
                        print("round %d %-8s RSS %.1f MiB at start, %.1f MiB idle 5 s after the "
                              "load" % (rnd, target, rss0, rss_mib(p.pid)), flush=True)
                finally:
                    stop(p)
                    shutil.rmtree(os.path.join(d, "data"), ignore_errors=True)
            for mode in a.floor_modes.split(",") if a.floor else ():
                grown = prepare_page_cache(d, a)
                r, probe = produce_probed(d, grown, lambda: floor_run(d, mode, a))
                res.setdefault(("floor:" + mode, "-"), []).append(r)
                print("round %d %-14s %6.2f CPU-s/GiB %7.1f MiB/s%s  (load %s)" % (
                    rnd, "floor:" + mode, r["cpu_s_per_gib"], r["mib_s"], probe,
                    os.getloadavg()[0]), flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("\nmedians of %d rounds, %d x 1 KiB, %d partition(s), %s page cache, load average "
          "%.2f %.2f %.2f" % ((a.rounds, a.records, a.partitions, a.page_cache) + os.getloadavg()))
    med = {}
    for (target, acks), rs in sorted(res.items()):
        med[(target, acks)] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        m = med[(target, acks)]
        plain = m.get("plain_write_s_per_gib")
        print("%-8s acks=%-3s %6.2f CPU-s/GiB %7.1f MiB/s %6d switches/GiB%s" % (
            target, acks, m["cpu_s_per_gib"], m["mib_s"], m["switches_per_gib"],
            "" if plain is None else "   (a plain write then: %.2f s per GiB)" % plain))
    for name in bins:
        for acks in ("1", "all"):
            g, m = med.get((name, acks)), med.get(("mock", acks))
            if g and m:
                print("%s/mock acks=%-3s CPU per GiB %.2f, MiB/s %.2f" % (
                    name, acks, g["cpu_s_per_gib"] / m["cpu_s_per_gib"], g["mib_s"] / m["mib_s"]))
        f = med.get(("floor:file-crc", "-"))
        for acks in ("1", "all"):
            g = med.get((name, acks))
            if g and f:
                print("%s/floor:file-crc acks=%-3s CPU per GiB %.2f" % (
                    name, acks, g["cpu_s_per_gib"] / f["cpu_s_per_gib"]))
        g1, ga = med.get((name, "1")), med.get((name, "all"))
        if g1 and ga:
            print("%s acks=all / acks=1 MiB/s %.2f" % (name, ga["mib_s"] / g1["mib_s"]))
    m, f = med.get(("mock", "1")), med.get(("floor:memcpy", "-"))
    if m and f:
        print("mock/floor:memcpy acks=1   CPU per GiB %.2f" % (m["cpu_s_per_gib"] / f["cpu_s_per_gib"]))


if __name__ == "__main__":
    main()
