"""Record batches (magic 2) and the data-path requests (Produce, Fetch, ListOffsets) for raw
protocol tests. Python standard library only; CRC-32C is computed with a table.

Builders produce exactly what a Kafka client sends; parsers are strict (bounds-checked, CRC
verified) so a broker that serves a damaged batch fails the test.
"""
import struct

from harness import (FETCH, LIST_OFFSETS, PRODUCE, Reader, array, check, i8, i16, i32, i64,
                     nbytes, string, u32, uvarint, varint)

# -- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) ----------------------------------
_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# -- record batches ------------------------------------------------------------------------
NO_TIMESTAMP = -1


def encode_record(offset_delta, ts_delta, key, value, headers=()):
    body = i8(0) + varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        hk = hk.encode() if isinstance(hk, str) else hk
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_offset=0, base_timestamp=1700000000000, attributes=0,
                 producer_id=-1, producer_epoch=-1, base_sequence=-1, leader_epoch=-1,
                 timestamps=None):
    """records: list of (key, value) or (key, value, headers). Uncompressed (attributes
    bits 0-2 = 0) unless the caller passes attributes with already-compressed records."""
    recs = b""
    max_ts = base_timestamp
    for i, r in enumerate(records):
        key, value = r[0], r[1]
        headers = r[2] if len(r) > 2 else ()
        ts = timestamps[i] if timestamps else base_timestamp + i
        max_ts = max(max_ts, ts)
        recs += encode_record(i, ts - base_timestamp, key, value, headers)
    after_crc = (i16(attributes) + i32(len(records) - 1) + i64(base_timestamp) + i64(max_ts) +
                 i64(producer_id) + i16(producer_epoch) + i32(base_sequence) +
                 i32(len(records)) + recs)
    crc = crc32c(after_crc)
    after_len = i32(leader_epoch) + i8(2) + u32(crc) + after_crc
    return i64(base_offset) + i32(len(after_len)) + after_len


def fix_crc(batch):
    """Recomputes the CRC of a (modified) single batch."""
    b = bytearray(batch)
    b[17:21] = u32(crc32c(bytes(b[21:])))
    return bytes(b)


def parse_batches(data):
    """Splits a records blob into batches -> list of dicts with 'records' decoded.
    A trailing partial batch (allowed in Fetch responses) is ignored and counted."""
    out = []
    pos = 0
    data = data or b""
    while pos + 12 <= len(data):
        base_offset, length = struct.unpack_from(">qi", data, pos)
        if pos + 12 + length > len(data):
            break  # partial batch at the end of a fetch response
        raw = data[pos:pos + 12 + length]
        pos += 12 + length
        r = Reader(raw)
        b = {"base_offset": r.int64(), "length": r.int32(), "leader_epoch": r.int32(),
             "magic": r.int8(), "crc": r.uint32()}
        check(b["magic"] == 2, "batch at offset %d has magic %d" % (base_offset, b["magic"]))
        check(crc32c(raw[21:]) == b["crc"], "batch at offset %d: CRC mismatch" % base_offset)
        b.update(attributes=r.int16(), last_offset_delta=r.int32(), base_timestamp=r.int64(),
                 max_timestamp=r.int64(), producer_id=r.int64(), producer_epoch=r.int16(),
                 base_sequence=r.int32(), count=r.int32())
        b["raw"] = raw
        codec = b["attributes"] & 7
        payload = raw[r.pos:]
        if codec:
            payload = decompress(codec, payload)
        rr = Reader(payload)
        recs = []
        for _ in range(b["count"]):
            ln = rr.varint()
            end = rr.pos + ln
            rr.int8()
            ts_delta = rr.varint()
            off_delta = rr.varint()
            kl = rr.varint()
            key = None if kl < 0 else rr.take(kl)
            vl = rr.varint()
            value = None if vl < 0 else rr.take(vl)
            headers = []
            for _ in range(rr.varint()):
                hk = rr.take(rr.varint())
                hl = rr.varint()
                headers.append((hk, None if hl < 0 else rr.take(hl)))
            check(rr.pos == end, "record length mismatch in batch at %d" % base_offset)
            recs.append({"offset": b["base_offset"] + off_delta,
                         "timestamp": b["base_timestamp"] + ts_delta,
                         "key": key, "value": value, "headers": headers})
        check(rr.remaining() == 0, "batch at %d: bytes after the last record" % base_offset)
        b["records"] = recs
        out.append(b)
    return out


def decompress(codec, data):
    if codec == 1:
        import gzip
        return gzip.decompress(data)
    check(False, "codec %d not supported by the test parser" % codec)


# -- Produce (v3..v8, non-flexible) --------------------------------------------------------

def produce_body(topic_parts, acks=1, timeout_ms=30000, version=8, transactional_id=None):
    """topic_parts: {topic: {partition: records bytes}}."""
    check(3 <= version <= 8, "produce_body supports v3..v8")
    topics = []
    for t, parts in topic_parts.items():
        pb = [i32(p) + nbytes(recs) for p, recs in parts.items()]
        topics.append(string(t) + array(pb))
    return string(transactional_id) + i16(acks) + i32(timeout_ms) + array(topics)


def parse_produce(body, version=8):
    """-> {(topic, partition): {error_code, base_offset, log_append_time, log_start_offset,
    record_errors, error_message}}, throttle_ms"""
    r = Reader(body)
    out = {}
    for _ in range(r.int32()):
        t = r.string()
        for _ in range(r.int32()):
            p = {"partition": r.int32(), "error_code": r.int16(), "base_offset": r.int64()}
            if version >= 2:
                p["log_append_time"] = r.int64()
            if version >= 5:
                p["log_start_offset"] = r.int64()
            if version >= 8:
                p["record_errors"] = r.array(lambda x: (x.int32(), x.string()))
                p["error_message"] = r.string()
            out[(t, p["partition"])] = p
    throttle = r.int32() if version >= 1 else 0
    r.end()
    return out, throttle


def produce(conn, topic, partition, records_blob, acks=1, version=8, timeout_ms=30000):
    """Sends one Produce; returns the partition's result dict (acks != 0)."""
    body = produce_body({topic: {partition: records_blob}}, acks, timeout_ms, version)
    if acks == 0:
        conn.send_request(PRODUCE, version, body)
        conn.pending.pop()  # no response for acks=0
        return None
    res, _ = parse_produce(conn.call(PRODUCE, version, body), version)
    check((topic, partition) in res, "produce response lacks %s-%d: %r" % (topic, partition, res))
    return res[(topic, partition)]


# -- Fetch (v4..v11, non-flexible) ---------------------------------------------------------

def fetch_body(topic_parts, version=11, max_wait_ms=0, min_bytes=1, max_bytes=50 << 20,
               partition_max_bytes=10 << 20, isolation_level=0):
    """topic_parts: {topic: {partition: fetch_offset}}."""
    check(4 <= version <= 11, "fetch_body supports v4..v11")
    out = i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(isolation_level)
    if version >= 7:
        out += i32(0) + i32(-1)  # no fetch session: session id 0, epoch -1 (full fetch)
    topics = []
    for t, parts in topic_parts.items():
        pb = []
        for p, off in parts.items():
            x = i32(p)
            if version >= 9:
                x += i32(-1)  # current leader epoch unknown
            x += i64(off)
            if version >= 5:
                x += i64(-1)  # log start offset (followers only)
            pb.append(x + i32(partition_max_bytes))
        topics.append(string(t) + array(pb))
    out += array(topics)
    if version >= 7:
        out += array([])  # forgotten topics
    if version >= 11:
        out += string("")  # rack id
    return out


def parse_fetch(body, version=11):
    """-> ({(topic, partition): {error_code, high_watermark, last_stable_offset,
    log_start_offset, records(bytes)}}, top-level error code)."""
    r = Reader(body)
    r.int32()  # throttle
    top_error = 0
    if version >= 7:
        top_error = r.int16()
        r.int32()  # session id
    out = {}
    for _ in range(r.int32()):
        t = r.string()
        for _ in range(r.int32()):
            p = {"partition": r.int32(), "error_code": r.int16(), "high_watermark": r.int64(),
                 "last_stable_offset": r.int64()}
            if version >= 5:
                p["log_start_offset"] = r.int64()
            p["aborted"] = r.array(lambda x: (x.int64(), x.int64()))
            if version >= 11:
                p["preferred_read_replica"] = r.int32()
            p["records"] = r.bytes_()
            out[(t, p["partition"])] = p
    r.end()
    return out, top_error


def fetch(conn, topic, partition, offset, version=11, **kw):
    res, top = parse_fetch(conn.call(FETCH, version, fetch_body({topic: {partition: offset}},
                                                                version, **kw)), version)
    check(top == 0, "fetch top-level error %d" % top)
    check((topic, partition) in res, "fetch response lacks %s-%d" % (topic, partition))
    return res[(topic, partition)]


def fetch_all(conn, topic, partition, offset=0, version=11, max_rounds=100000):
    """Fetches like a consumer: repeatedly from the next offset until the high watermark
    (Kafka answers from one segment per fetch). Returns (batches, last fetch response)."""
    batches = []
    for _ in range(max_rounds):
        f = fetch(conn, topic, partition, offset, version)
        check(f["error_code"] == 0, "fetch at %d: error %d" % (offset, f["error_code"]))
        bs = parse_batches(f["records"])
        if not bs:
            check(offset >= f["high_watermark"], "fetch at %d returned nothing below the high "
                  "watermark %d" % (offset, f["high_watermark"]))
            return batches, f
        batches += bs
        offset = bs[-1]["base_offset"] + bs[-1]["last_offset_delta"] + 1
    check(False, "fetch_all did not reach the end")


# -- ListOffsets (v1..v5, non-flexible) ----------------------------------------------------
LATEST, EARLIEST = -1, -2


def list_offsets_body(topic_parts, version=5, isolation_level=0):
    """topic_parts: {topic: {partition: timestamp}} (-1 latest, -2 earliest)."""
    out = i32(-1)
    if version >= 2:
        out += i8(isolation_level)
    topics = []
    for t, parts in topic_parts.items():
        pb = []
        for p, ts in parts.items():
            x = i32(p)
            if version >= 4:
                x += i32(-1)
            pb.append(x + i64(ts))
        topics.append(string(t) + array(pb))
    return out + array(topics)


def parse_list_offsets(body, version=5):
    r = Reader(body)
    if version >= 2:
        r.int32()
    out = {}
    for _ in range(r.int32()):
        t = r.string()
        for _ in range(r.int32()):
            p = {"partition": r.int32(), "error_code": r.int16(), "timestamp": r.int64(),
                 "offset": r.int64()}
            if version >= 4:
                p["leader_epoch"] = r.int32()
            out[(t, p["partition"])] = p
    r.end()
    return out


def list_offset(conn, topic, partition, ts=LATEST, version=5):
    res = parse_list_offsets(conn.call(LIST_OFFSETS, version,
                                       list_offsets_body({topic: {partition: ts}}, version)),
                             version)
    check((topic, partition) in res, "ListOffsets lacks %s-%d" % (topic, partition))
    return res[(topic, partition)]


def ensure_topic(conn, topic, partitions=None, timeout=15.0):
    """Auto-creates topic through Metadata v4 (allow_auto_topic_creation) and polls until
    every partition has a leader. Returns the topic's metadata dict."""
    import time
    from harness import SLOW, fail
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while time.monotonic() < deadline:
        md = conn.metadata(4, topics=[topic], allow_auto_create=True)
        last = md
        ts = [t for t in md["topics"] if t["name"] == topic]
        if ts and ts[0]["error_code"] == 0 and ts[0]["partitions"] and \
                all(p["leader"] >= 0 and p["error_code"] == 0 for p in ts[0]["partitions"]):
            if partitions is None or len(ts[0]["partitions"]) == partitions:
                return ts[0]
        time.sleep(0.05)
    fail("topic %s not ready within %.0fs; last metadata: %r" % (topic, timeout * SLOW, last))
