"""Regenerates the captured part of the fuzz seed corpora from real client traffic.

    /usr/bin/python3 tests/fuzz/capture_corpus.py

Starts a gregor broker (tests/interop/harness.py) behind a small TCP proxy that records every
request frame clients send; the broker advertises the proxy, so all traffic passes through it.
confluent-kafka (librdkafka) and kafka-python then produce with every codec, consume in a
group, commit offsets and use the admin API. Written, all small (total well under 1 MB):
  corpus/request/     one frame payload per (api key, version) seen, <= 16 KiB each
  corpus/record/      stored record batches, one file per codec and a multi-batch file
  corpus/decompress/  compressed payloads of those batches with fuzz_decompress's selector byte
  corpus/storage/     the topic's segment files (.log/.index/.timeindex) in fuzz_storage's format
Not run by make test; rerun after protocol changes and commit the result.
"""
import faulthandler
import os
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "interop"))
import harness  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
frames = {}
lock = threading.Lock()


def pump(src, dst, record):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if record:
                buf += data
                while len(buf) >= 4:
                    (n,) = struct.unpack(">i", buf[:4])
                    if len(buf) < 4 + n:
                        break
                    payload, buf = buf[4:4 + n], buf[4 + n:]
                    if len(payload) >= 4:
                        key, ver = struct.unpack(">hh", payload[:4])
                        with lock:
                            lst = frames.setdefault((key, ver), [])
                            if len(lst) < 2 and len(payload) <= 16384:
                                lst.append(payload)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def proxy(listen, broker_port):
    while True:
        try:
            c, _ = listen.accept()
        except OSError:
            return
        b = socket.create_connection((harness.HOST, broker_port))
        threading.Thread(target=pump, args=(c, b, True), daemon=True).start()
        threading.Thread(target=pump, args=(b, c, False), daemon=True).start()


def client_traffic(bootstrap):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic("fz", 2, 1)]).values():
        f.result(10)
    for f in admin.describe_configs([ConfigResource("topic", "fz")]).values():
        f.result(10)
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                      "linger.ms": 5, "acks": "all"})
        for i in range(20):
            p.produce("fz", key=b"k%d" % i, value=(b"%s-value-%d " % (codec.encode(), i)) * 3,
                      partition=i % 2, headers=[("h", b"v%d" % i)])
        p.flush(10)
    from confluent_kafka import TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "fzg", "enable.auto.commit": False})
    c.assign([TopicPartition("fz", p, 0) for p in (0, 1)])
    got, deadline = 0, time.time() + 20
    while got < 100 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    c.close()
    # Group traffic (FindCoordinator, JoinGroup, ...) if the broker has a coordinator.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "fzg", "auto.offset.reset":
                  "earliest", "session.timeout.ms": 6000})
    c.subscribe(["fz"])
    deadline = time.time() + 5
    while time.time() < deadline:
        c.poll(0.5)
    try:
        c.commit(asynchronous=False)
    except Exception:
        pass
    c.close()
    try:
        from kafka import KafkaConsumer, KafkaProducer
        kp = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
        kp.send("fz", b"kafka-python").get(10)
        kp.close()
        from kafka import TopicPartition as KTP
        kc = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                           consumer_timeout_ms=3000)
        kc.assign([KTP("fz", 0), KTP("fz", 1)])
        for _ in kc:
            pass
        kc.close()
    except Exception as e:  # kafka-python is optional traffic
        print("# kafka-python traffic skipped: %s" % e)
    return got


def split_batches(data):
    out, pos = [], 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack(">i", data[pos + 8:pos + 12])
        if n <= 0 or pos + 12 + n > len(data):
            break
        out.append(data[pos:pos + 12 + n])
        pos += 12 + n
    return out


def write(sub, name, data):
    d = os.path.join(CORPUS, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def chunk(kind, data):
    return bytes([kind]) + struct.pack(">H", len(data)) + data


def main():
    faulthandler.dump_traceback_later(80, exit=True)
    listen = socket.socket()
    listen.bind((harness.HOST, 0))
    listen.listen(64)
    pport = listen.getsockname()[1]
    with harness.Broker({"advertised.listeners": "PLAINTEXT://%s:%d" % (harness.HOST, pport),
                         "num.partitions": 2}) as b:
        threading.Thread(target=proxy, args=(listen, b.port), daemon=True).start()
        got = client_traffic("%s:%d" % (harness.HOST, pport))
        print("# consumed %d messages through the proxy" % got)
        b.stop()
        n = 0
        for (key, ver), lst in sorted(frames.items()):
            for i, payload in enumerate(lst):
                write("request", "client_api%02d_v%02d_%d" % (key, ver, i), payload)
                n += 1
        print("# %d request frames" % n)
        seen = set()
        for part in ("fz-0", "fz-1"):
            pdir = os.path.join(b.data_dir, part)
            logs = sorted(f for f in os.listdir(pdir) if f.endswith(".log"))
            for lf in logs:
                base = lf[:-4]
                data = open(os.path.join(pdir, lf), "rb").read()
                batches = split_batches(data)
                for bt in batches:
                    codec = struct.unpack(">h", bt[21:23])[0] & 7
                    if codec not in seen:
                        seen.add(codec)
                        write("record", "stored_codec%d" % codec, bt)
                        if codec:
                            write("decompress", "codec%d" % codec, bytes([codec + 18]) + bt[61:])
                            if codec == 2:
                                write("decompress", "xerial", bytes([5 + 18]) + bt[61:])
                write("record", "stored_%s_first8" % part, b"".join(batches[:8]))

                def rd(suffix):
                    try:
                        return open(os.path.join(pdir, base + suffix), "rb").read()
                    except OSError:
                        return b""
                seg = chunk(0, struct.pack(">I", int(base)) + data[:60000]) + chunk(
                    1, rd(".index")) + chunk(2, rd(".timeindex"))
                ep = b""
                try:
                    ep = open(os.path.join(pdir, "leader-epoch-checkpoint"), "rb").read()
                except OSError:
                    pass
                write("storage", "%s_unclean" % part, b"\x00" + seg + chunk(3, ep))
                write("storage", "%s_clean" % part, b"\x01" + seg + chunk(3, ep))
        print("# codecs stored: %s" % sorted(seen))


if __name__ == "__main__":
    main()
