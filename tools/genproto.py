#!/usr/bin/env python3
"""Generate Gregor's C wire codecs from Kafka's JSON message schemas.

Usage (from the repository root):

    python3 tools/genproto.py ../shared/kafka-protocol src/proto/gen [tests/gen/fill]

Reads messages/*.json (every request/response pair and the `data` schemas except the two
headers, which src/proto/header.c handles by hand), group-coordinator/*.json and
transaction-coordinator/*.json, and writes into the output directory:

    <api>.h / <api>.c          structs and codecs of one API (request + response) or data schema
    kmsg.h                     includes every <api>.h
    api_table.h / api_table.c  per API key: name, versions, flexible versions, listeners, codecs
    errors.h                   Kafka error codes (from errors.csv) as KAFKA_ERR_* constants

and into the fill directory (third argument; default tests/gen/fill of this repository), code
that only the unit tests link (it is not part of the broker's library):

    <api>.c, fill.h, fill_table.c   fill a message with non-default values

Python 3 standard library only. Output is deterministic; the generated C is committed, so a
build never needs the JSON. The generator's rules are written next to the code that applies
them; see gen_struct_read / gen_struct_write for the wire layout.
"""

import json
import os
import re
import sys

# The test-only fill code's default home: tests/gen/fill of the repository this file is in.
DEFAULT_FILL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "gen", "fill")

VMAX = 0x7FFF  # open upper bound of a "N+" version range

PRIMS = {
    # schema type: (C type, reader, writer, fixed size, array suffix)
    "bool": ("bool", "kr_bool", "kw_bool", 1, "bool"),
    "int8": ("int8_t", "kr_int8", "kw_int8", 1, "int8"),
    "int16": ("int16_t", "kr_int16", "kw_int16", 2, "int16"),
    "int32": ("int32_t", "kr_int32", "kw_int32", 4, "int32"),
    "int64": ("int64_t", "kr_int64", "kw_int64", 8, "int64"),
    "uint16": ("uint16_t", "kr_uint16", "kw_uint16", 2, "uint16"),
    "uint32": ("uint32_t", "kr_uint32", "kw_uint32", 4, "uint32"),
    "float64": ("double", "kr_float64", "kw_float64", 8, "float64"),
    "uuid": ("struct kuuid", "kr_uuid", "kw_uuid", 16, "uuid"),
}
VARLEN = {"string": "str", "bytes": "bytes", "records": "records"}
INT_LIMITS = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint16": (0, (1 << 16) - 1),
    "uint32": (0, (1 << 32) - 1),
}
C_KEYWORDS = set(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while bool true false".split()
)


# ---- schema reading -------------------------------------------------------------------------


def strip_comments(text):
    """Removes // comments that are outside string literals."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_schema(path):
    with open(path, encoding="utf-8") as f:
        return apply_extensions(json.loads(strip_comments(f.read())))


# Gregor's own tagged fields, added to Kafka's schemas. A tagged field a receiver does not know
# is skipped (KIP-482), so Kafka brokers and clients ignore these; tags far above Kafka's
# (which counts up from 0) keep clear of fields Kafka adds later.
#   FetchRequest.Topics[].Partitions[].GregorDurableOffset: a Gregor follower's durable log end
#   (everything below it fdatasynced). Its leader counts min(FetchOffset, this) towards the high
#   watermark, so the follower may fetch on while its last append is still being synced.
EXTENSIONS = {
    ("FetchRequest", "FetchPartition"): [
        {"name": "GregorDurableOffset", "type": "int64", "versions": "12+",
         "taggedVersions": "12+", "tag": 18258, "default": "-1", "ignorable": True,
         "about": "Gregor extension: the follower's durable log end offset, or -1."},
    ],
}


# Facts from Kafka releases newer than the schemas in ../shared/kafka-protocol, which stop before
# Kafka 4.0: the later versions of a few messages, as Kafka 4.0's schemas define them. Per
# message: the new "validVersions", and new top-level fields, each placed after a named field.
#   EndTxn v5 (KIP-890 part 2): the response carries the producer id and epoch, as the epoch is
#     bumped on every transaction; the request is unchanged.
#   Produce v12, TxnOffsetCommit v5 (KIP-890 part 2): same layout as v11 / v4; the version
#     tells the broker the client runs transactions version 2.
#   ConsumerGroupHeartbeat v1 (KIP-848): the request adds SubscribedTopicRegex; the response
#     is unchanged (it may carry INVALID_REGULAR_EXPRESSION).
#   TransactionLogValue (KIP-890 part 2): three tagged fields of the flexible version 1, so a
#     coordinator that takes over knows how the last transaction ended: PreviousProducerId
#     (tag 0), NextProducerId (tag 1; the id a producer whose epoch ran out moves to) and
#     ClientTransactionVersion (tag 2). Kafka's file gives no "versions" for the first two:
#     its generator takes their taggedVersions.
LATER_VERSIONS = {
    "EndTxnRequest": {"validVersions": "0-5"},
    "EndTxnResponse": {"validVersions": "0-5", "fields": [
        ("ErrorCode", {"name": "ProducerId", "type": "int64", "versions": "5+",
                       "entityType": "producerId", "default": "-1", "ignorable": True,
                       "about": "The producer ID."}),
        ("ProducerId", {"name": "ProducerEpoch", "type": "int16", "versions": "5+",
                        "default": "-1", "ignorable": True,
                        "about": "The current epoch associated with the producer."}),
    ]},
    "ProduceRequest": {"validVersions": "0-12"},
    "ProduceResponse": {"validVersions": "0-12"},
    "TxnOffsetCommitRequest": {"validVersions": "0-5"},
    "TxnOffsetCommitResponse": {"validVersions": "0-5"},
    "ConsumerGroupHeartbeatRequest": {"validVersions": "0-1", "fields": [
        ("SubscribedTopicNames", {"name": "SubscribedTopicRegex", "type": "string",
                                  "versions": "1+", "nullableVersions": "1+",
                                  "default": "null",
                                  "about": "null if it didn't change since the last "
                                           "heartbeat; the subscribed topic regex otherwise"}),
    ]},
    "ConsumerGroupHeartbeatResponse": {"validVersions": "0-1"},
    "TransactionLogValue": {"validVersions": "0-1", "fields": [
        ("ProducerId", {"name": "PreviousProducerId", "type": "int64", "versions": "1+",
                        "taggedVersions": "1+", "tag": 0, "default": "-1",
                        "about": "Producer id used by the last committed transaction"}),
        ("PreviousProducerId", {"name": "NextProducerId", "type": "int64", "versions": "1+",
                                "taggedVersions": "1+", "tag": 1, "default": "-1",
                                "about": "Latest producer ID sent to the producer for the "
                                         "given transactional ID"}),
        ("TransactionStartTimestampMs", {"name": "ClientTransactionVersion", "type": "int16",
                                         "versions": "1+", "taggedVersions": "1+", "tag": 2,
                                         "default": "0",
                                         "about": "The transaction version used by the client"}),
    ]},
}

# Error codes Kafka added after errors.csv was written: (code, name, retriable).
LATER_ERRORS = [
    (128, "INVALID_REGULAR_EXPRESSION", "false"),
]


def apply_later_versions(js):
    later = LATER_VERSIONS.get(js.get("name"))
    if not later:
        return
    js["validVersions"] = later["validVersions"]
    fields = js["fields"]
    for after, field in later.get("fields", []):
        names = [f["name"] for f in fields]
        if field["name"] in names:
            raise SystemExit("%s already has %s: drop it from LATER_VERSIONS"
                             % (js["name"], field["name"]))
        fields.insert(names.index(after) + 1, dict(field))


def apply_extensions(js):
    apply_later_versions(js)

    def walk(fields):
        for f in fields:
            sub = f.get("fields")
            if sub is None:
                continue
            extra = EXTENSIONS.get((js.get("name"), f["type"].lstrip("[]")))
            if extra:
                sub.extend(dict(e) for e in extra)
            walk(sub)
    walk(js.get("fields", []))
    return js


def parse_versions(s):
    """'N+' / 'A-B' / 'N' / 'none' -> (lo, hi) or None."""
    if s is None:
        return None
    s = str(s).strip()
    if s == "none":
        return None
    if s.endswith("+"):
        return (int(s[:-1]), VMAX)
    if "-" in s:
        a, b = s.split("-")
        return (int(a), int(b))
    return (int(s), int(s))


def vintersect(a, b):
    if a is None or b is None:
        return None
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo <= hi else None


def vhull(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]))


def vstr(r):
    if r is None:
        return "none"
    if r[1] == VMAX:
        return "%d+" % r[0]
    if r[0] == r[1]:
        return "%d" % r[0]
    return "%d-%d" % r


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def cfield_name(name):
    n = snake(name)
    return n + "_" if n in C_KEYWORDS else n


def c_comment(text):
    return text.replace("*/", "* /").replace("\n", " ")


# ---- model ----------------------------------------------------------------------------------


class Field:
    def __init__(self, js, msg):
        self.name = js["name"]
        self.cname = cfield_name(self.name)
        self.about = js.get("about", "")
        self.versions = parse_versions(js["versions"])
        self.nullable = parse_versions(js.get("nullableVersions"))
        self.tag = int(js["tag"]) if "tag" in js else None
        self.tagged = parse_versions(js.get("taggedVersions"))
        self.flexible = (
            parse_versions(js["flexibleVersions"]) if "flexibleVersions" in js else msg.flexible
        )
        self.default = js.get("default")
        self.msg_flexible = msg.flexible
        t = js["type"]
        self.is_array = t.startswith("[]")
        self.base = t[2:] if self.is_array else t
        self.struct = None  # resolved Struct for struct types
        if self.tag is not None and self.tagged is None:
            raise SystemExit("%s.%s: tag without taggedVersions" % (msg.name, self.name))

    @property
    def is_struct(self):
        return self.base not in PRIMS and self.base not in VARLEN

    @property
    def is_nullable_struct(self):
        return self.is_struct and not self.is_array and self.nullable is not None


class Struct:
    def __init__(self, name, cname, msg):
        self.name = name
        self.cname = cname
        self.msg = msg
        self.fields = []
        self.ctx = None  # versions in which this struct can appear on the wire
        self.needs_is_default = False


class Message:
    def __init__(self, js, fname):
        self.js = js
        self.fname = fname
        self.name = js["name"]
        self.type = js["type"]
        self.api_key = js.get("apiKey")
        self.valid = parse_versions(js["validVersions"])
        self.flexible = parse_versions(js.get("flexibleVersions", "none"))
        self.listeners = js.get("listeners", [])
        self.unstable = bool(js.get("latestVersionUnstable", False))
        self.deprecated = parse_versions(js.get("deprecatedVersions"))
        self.structs = {}  # schema struct name -> Struct
        self.order = []  # structs in definition order (children first)
        self.root = None

    def struct_cname(self, sname):
        ms = snake(self.name)
        ss = snake(sname)
        if ss == ms or ss.startswith(ms + "_"):
            return "kmsg_" + ss
        return "kmsg_%s_%s" % (ms, ss)

    def build(self):
        for cs in self.js.get("commonStructs", []):
            self.parse_struct(cs["name"], cs["fields"])
        self.root = self.parse_struct(self.name, self.js["fields"], root=True)
        for st in self.order:
            self.resolve(st)
        self.mark_ctx(self.root, self.valid)

    def parse_struct(self, sname, fields_js, root=False):
        cname = "kmsg_" + snake(self.name) if root else self.struct_cname(sname)
        key = "" if root else sname
        if key in self.structs:
            raise SystemExit("%s: struct %s defined twice" % (self.name, sname))
        st = Struct(sname, cname, self)
        self.structs[key] = st
        for fj in fields_js:
            f = Field(fj, self)
            if f.is_struct and "fields" in fj:
                f.struct = self.parse_struct(f.base, fj["fields"])
            st.fields.append(f)
        tags = [f.tag for f in st.fields if f.tag is not None]
        if len(tags) != len(set(tags)):
            raise SystemExit("%s.%s: duplicate tags" % (self.name, sname))
        self.order.append(st)
        return st

    def resolve(self, st):
        for f in st.fields:
            if f.is_struct and f.struct is None:
                if f.base not in self.structs:
                    raise SystemExit("%s: unknown struct type %s" % (self.name, f.base))
                f.struct = self.structs[f.base]

    def mark_ctx(self, st, ctx):
        st.ctx = vhull(st.ctx, ctx)
        for f in st.fields:
            if f.struct is not None:
                sub = vintersect(ctx, f.versions)
                if sub is not None:
                    self.mark_ctx(f.struct, sub)


def structs_in_order(msg):
    """Structs reachable from the root, children before parents, each once."""
    out, seen = [], set()

    def visit(st):
        if id(st) in seen:
            return
        seen.add(id(st))
        for f in st.fields:
            if f.struct is not None:
                visit(f.struct)
        out.append(st)

    visit(msg.root)
    return out


# ---- version conditions ---------------------------------------------------------------------


def cond(rng, ctx, var="v"):
    """C expression true when the version is in rng, knowing it is in ctx; 'true'/'false'."""
    r = vintersect(rng, ctx)
    if r is None:
        return "false"
    parts = []
    if r[0] > ctx[0]:
        parts.append("%s >= %d" % (var, r[0]))
    if r[1] < ctx[1]:
        parts.append("%s <= %d" % (var, r[1]))
    if not parts:
        return "true"
    if len(parts) == 2 and r[0] == r[1]:
        return "%s == %d" % (var, r[0])
    return " && ".join(parts)


def paren(c):
    return "(%s)" % c if "&&" in c else c


# ---- defaults -------------------------------------------------------------------------------


def int_default(f):
    d = f.default
    if d is None:
        return 0
    if isinstance(d, bool):
        return int(d)
    if isinstance(d, int):
        return d
    return int(str(d), 0)


def bool_default(f):
    d = f.default
    if d is None:
        return False
    if isinstance(d, bool):
        return d
    return str(d).lower() == "true"


def default_is_null(f):
    """True when the field's default is null (schema 'null', or always for nullable structs)."""
    if f.is_nullable_struct:
        return True
    if f.base == "records" and not f.is_array:
        # Kafka's default is null, which a version where the field is not nullable cannot
        # carry; there the default is empty instead, so an init'ed message always encodes.
        return f.nullable is not None
    return isinstance(f.default, str) and f.default == "null"


def c_int(value, base):
    if base == "int64":
        if value == INT_LIMITS["int64"][0]:
            return "INT64_MIN"
        return "INT64_C(%d)" % value
    if base == "int32" and value == INT_LIMITS["int32"][0]:
        return "INT32_MIN"
    if base == "uint32":
        return "UINT32_C(%d)" % value
    return "%d" % value


def c_string_lit(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_stmt(f, o="o"):
    """Statement setting a field to its default after memset(0), or None when 0 is right."""
    lhs = "%s->%s" % (o, f.cname)
    if f.is_array:
        return "%s.n = -1;" % lhs if default_is_null(f) else None
    if f.is_struct:
        if f.is_nullable_struct:
            return None  # NULL
        return "%s_init(&%s);" % (f.struct.cname, lhs)
    if f.base == "bool":
        return "%s = true;" % lhs if bool_default(f) else None
    if f.base == "float64":
        d = float(f.default) if f.default is not None else 0.0
        return "%s = %r;" % (lhs, d) if d != 0.0 else None
    if f.base in INT_LIMITS:
        d = int_default(f)
        return "%s = %s;" % (lhs, c_int(d, f.base)) if d != 0 else None
    if f.base == "uuid":
        return None
    if f.base == "string":
        if default_is_null(f):
            return "%s = KSTR_NULL;" % lhs
        d = f.default if isinstance(f.default, str) else ""
        return "%s = KSTR_LIT(%s);" % (lhs, c_string_lit(d))
    if f.base == "bytes":
        if default_is_null(f):
            return "%s = KBYTES_NULL;" % lhs
        return "%s = (struct kbytes){(const uint8_t *)\"\", 0};" % lhs
    if f.base == "records":
        if default_is_null(f):
            return "%s.len = -1;" % lhs
        return "%s.data = (const uint8_t *)\"\";" % lhs
    raise SystemExit("no default for %s" % f.name)


def is_default_expr(f, o="o"):
    """C expression true when the field holds its default value."""
    x = "%s->%s" % (o, f.cname)
    if f.is_array:
        return "%s.n == %d" % (x, -1 if default_is_null(f) else 0)
    if f.is_struct:
        if f.is_nullable_struct:
            return "%s == NULL" % x
        f.struct.needs_is_default = True
        return "%s_is_default(&%s)" % (f.struct.cname, x)
    if f.base == "bool":
        return ("%s" if bool_default(f) else "!%s") % x
    if f.base == "float64":
        d = float(f.default) if f.default is not None else 0.0
        return "%s == %r" % (x, d)
    if f.base in INT_LIMITS:
        return "%s == %s" % (x, c_int(int_default(f), f.base))
    if f.base == "uuid":
        return "kproto_uuid_is_zero(%s)" % x
    if f.base == "string":
        if default_is_null(f):
            return "%s.len == -1" % x
        d = f.default if isinstance(f.default, str) else ""
        return "kproto_str_eq(%s, %s, %d)" % (x, c_string_lit(d), len(d.encode()))
    if f.base == "bytes":
        return "%s.len == %d" % (x, -1 if default_is_null(f) else 0)
    if f.base == "records":
        return "(%s.len == %d && %s.files == NULL)" % (x, -1 if default_is_null(f) else 0, x)
    raise SystemExit("no default check for %s" % f.name)


def negate(expr):
    """Logical negation of an expression from is_default_expr, kept readable."""
    if re.fullmatch(r"[\w>.-]+ == [\w()-]+", expr):
        return expr.replace(" == ", " != ")
    if expr.startswith("!") and " " not in expr:
        return expr[1:]
    if " " not in expr:
        return "!" + expr
    return "!(%s)" % expr


def c_type(f):
    if f.is_array:
        if f.is_struct:
            return "struct %s_array" % f.struct.cname
        if f.base in PRIMS:
            return "struct karray_%s" % PRIMS[f.base][4]
        if f.base in ("string", "bytes"):
            return "struct karray_%s" % VARLEN[f.base]
        raise SystemExit("unsupported array of %s" % f.base)
    if f.is_struct:
        return "struct %s%s" % (f.struct.cname, " *" if f.is_nullable_struct else "")
    if f.base in PRIMS:
        return PRIMS[f.base][0]
    return {"string": "struct kstr", "bytes": "struct kbytes", "records": "struct krecords"}[
        f.base
    ]


# ---- minimum wire sizes (bounds array counts before allocation) ------------------------------


def min_size(st, v, flex_range, memo):
    key = (id(st), v)
    if key in memo:
        return memo[key]
    flex = flex_range is not None and flex_range[0] <= v <= flex_range[1]
    total = 1 if flex else 0  # tagged-field section
    for f in st.fields:
        if vintersect(f.versions, (v, v)) is None:
            continue
        if f.tagged is not None and vintersect(f.tagged, (v, v)) is not None:
            continue
        fflex = f.flexible is not None and f.flexible[0] <= v <= f.flexible[1]
        if f.is_array:
            total += 1 if fflex else 4
        elif f.is_nullable_struct and vintersect(f.nullable, (v, v)) is not None:
            total += 1
        elif f.is_struct:
            total += min_size(f.struct, v, flex_range, memo)
        elif f.base in PRIMS:
            total += PRIMS[f.base][3]
        elif f.base == "string":
            total += 1 if fflex else 2
        else:
            total += 1 if fflex else 4
    memo[key] = total
    return total


def struct_min_size_expr(st, pres):
    """C expression: the fewest bytes an element of st takes at version v (v within pres).

    Array counts are checked against bytes left / this, so that a hostile count cannot make
    the decoder allocate much more memory than the frame holds.
    """
    memo = {}
    hi = min(pres[1], st.msg.valid[1])
    groups = []  # [lo, hi, size] runs of versions with the same minimum size
    for v in range(pres[0], hi + 1):
        size = max(1, min_size(st, v, st.msg.flexible, memo))
        if groups and groups[-1][2] == size:
            groups[-1][1] = v
        else:
            groups.append([v, v, size])
    if not groups:
        return "1"
    expr = "%d" % groups[-1][2]
    for lo, ghi, size in reversed(groups[:-1]):
        expr = "v <= %d ? %d : %s" % (ghi, size, expr)
    return "(%s)" % expr if "?" in expr else expr


# ---- code generation: one struct ------------------------------------------------------------


def wrap_sig(line, width=100):
    """Wraps a long function signature or prototype after commas, aligned on its '('."""
    if len(line) <= width or line.startswith(" ") or "(" not in line or "/*" in line:
        return line
    p = line.index("(")
    parts = line[p + 1:].split(", ")
    out, cur = [], line[:p + 1] + parts[0]
    for part in parts[1:]:
        if len(cur) + 2 + len(part) > width:
            out.append(cur + ",")
            cur = " " * (p + 1) + part
        else:
            cur += ", " + part
    out.append(cur)
    return "\n".join(out)


def field_decl_lines(decl, comment, indent="    ", width=100):
    """A struct member with its comment, which goes above the member when the line is long."""
    one = "%s%s /* %s */" % (indent, decl, comment)
    if len(one) <= width:
        return [one]
    words, lines, cur = comment.split(), [], indent + "/*"
    for w in words:
        if len(cur) + 1 + len(w) > width - 3 and cur.strip() not in ("/*", "*"):
            lines.append(cur)
            cur = indent + " *"
        cur += " " + w
    lines.append(cur + " */")
    return lines + [indent + decl]


class Emitter:
    def __init__(self):
        self.lines = []

    def __call__(self, line="", indent=0):
        self.lines.append(wrap_sig("    " * indent + line) if line else "")

    def text(self):
        return "\n".join(self.lines) + "\n"


def flex_expr(f, ctx):
    """How a field's own flexible encoding is decided inside a struct function."""
    if f.flexible is None:
        return "false"
    c = cond(f.flexible, ctx)
    if f.flexible == f.msg_flexible:
        return "flex" if c not in ("true", "false") else c
    return paren(c)


def field_comment(f):
    bits = [f.name, "v" + vstr(f.versions)]
    if f.nullable is not None:
        bits.append("nullable " + vstr(f.nullable))
    if f.tag is not None:
        bits.append("tag %d" % f.tag)
    head = " ".join(bits)
    return "%s: %s" % (head, c_comment(f.about)) if f.about else head


def present_ctx(f, ctx):
    return vintersect(f.versions, ctx)


def tagged_in(f, pres):
    """Versions (within pres) in which f is a tagged field."""
    if f.tagged is None or pres is None:
        return None
    return vintersect(f.tagged, pres)


def positional_range(f, ctx):
    """Versions (within ctx) where f is a positional (untagged) field; a single range."""
    pres = present_ctx(f, ctx)
    if pres is None:
        return None
    tg = tagged_in(f, pres)
    if tg is None:
        return pres
    if tg == pres:
        return None
    # tagged versions are always an open range "N+", so the untagged part is below it
    return (pres[0], tg[0] - 1)


def gen_read_field(e, f, rv, ind, pres, flexv):
    """Emits statements decoding f from reader expression rv (versions known to be in pres)."""
    x = "o->" + f.cname
    nl = cond(f.nullable, pres) if f.nullable is not None else "false"
    c = "/* %s */" % f.name
    if f.is_array and f.is_struct:
        st = f.struct
        e("%s.n = kr_array_len(%s, %s, %s, %s); %s"
          % (x, rv, flexv, nl, struct_min_size_expr(st, pres), c), ind)
        e("%s.v = kr_alloc_array(%s, %s.n, sizeof(*%s.v));" % (x, rv, x, x), ind)
        err = "tv.err" if rv == "&tv" else "%s->err" % rv
        e("for (int32_t i = 0; i < %s.n && !%s; i++)" % (x, err), ind)
        e("%s_read(%s, v, &%s.v[i]);" % (st.cname, rv, x), ind + 1)
    elif f.is_array:
        suffix = PRIMS[f.base][4] if f.base in PRIMS else VARLEN[f.base]
        e("kr_array_%s(%s, %s, %s, &%s); %s" % (suffix, rv, flexv, nl, x, c), ind)
    elif f.is_nullable_struct:
        st = f.struct
        # presence marker: int8 (-1 null) in place, uvarint (0 null) inside a tagged value
        marker = "kr_uvarint(&tv) > 0" if rv == "&tv" else "kr_int8(%s) >= 0" % rv
        if nl == "true":
            test = marker
        elif nl == "false":
            test = None
        else:
            test = "!(%s) || %s" % (nl, marker)
        if test:
            e("if (%s) { %s" % (test, c), ind)
        else:
            e("{ %s" % c, ind)
        e("%s = kr_alloc(%s, 1, sizeof(*%s));" % (x, rv, x), ind + 1)
        e("if (%s != NULL)" % x, ind + 1)
        e("%s_read(%s, v, %s);" % (st.cname, rv, x), ind + 2)
        e("}", ind)
    elif f.is_struct:
        e("%s_read(%s, v, &%s); %s" % (f.struct.cname, rv, x, c), ind)
    elif f.base in PRIMS:
        e("%s = %s(%s); %s" % (x, PRIMS[f.base][1], rv, c), ind)
    elif f.base == "string":
        e("%s = kr_string(%s, %s, %s); %s" % (x, rv, flexv, nl, c), ind)
    elif f.base == "bytes":
        e("%s = kr_bytes(%s, %s, %s); %s" % (x, rv, flexv, nl, c), ind)
    elif f.base == "records":
        e("%s = kr_records(%s, %s, %s); %s" % (x, rv, flexv, nl, c), ind)
    else:
        raise SystemExit("cannot read %s" % f.name)


def gen_write_field(e, f, ind, pres, flexv):
    """Emits statements encoding f (versions known to be in pres)."""
    x = "o->" + f.cname
    nl = cond(f.nullable, pres) if f.nullable is not None else "false"
    c = "/* %s */" % f.name
    if f.is_array and f.is_struct:
        e("kw_array_len(w, %s.n, %s, %s); %s" % (x, flexv, nl, c), ind)
        e("for (int32_t i = 0; i < %s.n; i++)" % x, ind)
        e("%s_write(w, v, &%s.v[i]);" % (f.struct.cname, x), ind + 1)
    elif f.is_array:
        suffix = PRIMS[f.base][4] if f.base in PRIMS else VARLEN[f.base]
        e("kw_array_%s(w, &%s, %s, %s); %s" % (suffix, x, flexv, nl, c), ind)
    elif f.is_nullable_struct:
        cn = f.struct.cname
        if nl == "true":
            e("if (%s == NULL) { %s" % (x, c), ind)
            e("kw_int8(w, -1);", ind + 1)
            e("} else {", ind)
            e("kw_int8(w, 1);", ind + 1)
            e("%s_write(w, v, %s);" % (cn, x), ind + 1)
            e("}", ind)
        elif nl == "false":
            e("if (%s == NULL) %s" % (x, c), ind)
            e("kw_fail(w, -EINVAL);", ind + 1)
            e("else", ind)
            e("%s_write(w, v, %s);" % (cn, x), ind + 1)
        else:
            e("if (%s != NULL) { %s" % (x, c), ind)
            e("if (%s)" % nl, ind + 1)
            e("kw_int8(w, 1);", ind + 2)
            e("%s_write(w, v, %s);" % (cn, x), ind + 1)
            e("} else if (%s) {" % nl, ind)
            e("kw_int8(w, -1);", ind + 1)
            e("} else {", ind)
            e("kw_fail(w, -EINVAL);", ind + 1)
            e("}", ind)
    elif f.is_struct:
        e("%s_write(w, v, &%s); %s" % (f.struct.cname, x, c), ind)
    elif f.base in PRIMS:
        e("%s(w, %s); %s" % (PRIMS[f.base][2], x, c), ind)
    elif f.base == "string":
        e("kw_string(w, %s, %s, %s); %s" % (x, flexv, nl, c), ind)
    elif f.base == "bytes":
        e("kw_bytes(w, %s, %s, %s); %s" % (x, flexv, nl, c), ind)
    elif f.base == "records":
        e("kw_records(w, &%s, %s, %s); %s" % (x, flexv, nl, c), ind)
    else:
        raise SystemExit("cannot write %s" % f.name)


def emit_guarded(e, condition, ind, body):
    """Runs body(ind') under `if (condition)` unless the condition is constant."""
    if condition == "false":
        return
    if condition == "true":
        body(ind)
        return
    last = getattr(e, "last_guard", None)
    if last == (condition, ind, len(e.lines) - 1):
        e.lines.pop()  # same condition as the block just closed: extend that block
    else:
        e("if (%s) {" % condition, ind)
    body(ind + 1)
    e("}", ind)
    e.last_guard = (condition, ind, len(e.lines) - 1)


def struct_flex(st):
    """Expression deciding the message-level flexible encoding inside st's functions."""
    if st.msg.flexible is None:
        return "false"
    return cond(st.msg.flexible, st.ctx)


def tagged_fields(st):
    return sorted((f for f in st.fields if f.tag is not None), key=lambda f: f.tag)


def gen_struct_read(e, st):
    ctx = st.ctx
    fx = struct_flex(st)
    body = Emitter()
    for f in st.fields:
        pos = positional_range(f, ctx)
        if pos is None:
            continue
        fv = flex_expr(f, pos)
        emit_guarded(body, cond(pos, ctx), 1, lambda ind, f=f, pos=pos, fv=fv:
                     gen_read_field(body, f, "r", ind, pos, fv))
    tags = [f for f in tagged_fields(st) if tagged_in(f, present_ctx(f, ctx)) is not None]
    flex_ctx = vintersect(st.msg.flexible, ctx) if st.msg.flexible else None
    if flex_ctx is not None:
        def tag_body(ind):
            if not tags:
                body("kr_skip_tags(r);", ind)
                return
            body("uint32_t ntags = kr_uvarint(r);", ind)
            body("for (uint32_t t = 0; t < ntags && !r->err; t++) {", ind)
            body("struct kreader tv;", ind + 1)
            body("switch (kr_tag_begin(r, &tv)) {", ind + 1)
            for f in tags:
                tg = tagged_in(f, present_ctx(f, ctx))
                body("case %d: /* %s */" % (f.tag, f.name), ind + 1)
                emit_guarded(body, cond(tg, flex_ctx), ind + 2, lambda i2, f=f, tg=tg:
                             gen_read_field(body, f, "&tv", i2, tg, "true"))
                body("break;", ind + 2)
            body("default: /* unknown tags are skipped */", ind + 1)
            body("break;", ind + 2)
            body("}", ind + 1)
            body("kr_tag_end(r, &tv);", ind + 1)
            body("}", ind)
        emit_guarded(body, "flex" if fx not in ("true", "false") else fx, 1, tag_body)
    text = "\n".join(body.lines)
    e("static void %s_read(struct kreader *r, int16_t v, struct %s *o)" % (st.cname, st.cname))
    e("{")
    if re.search(r"\bflex\b", text):
        e("const bool flex = %s;" % fx, 1)
        text += fx
    if not re.search(r"\bv\b", text):
        e("(void)v;", 1)
    e("%s_init(o);" % st.cname, 1)
    e.lines.extend(body.lines)
    e("}")
    e()


def gen_struct_write(e, st):
    ctx = st.ctx
    fx = struct_flex(st)
    helpers = Emitter()
    body = Emitter()
    for f in st.fields:
        pos = positional_range(f, ctx)
        if pos is None:
            continue
        fv = flex_expr(f, pos)
        emit_guarded(body, cond(pos, ctx), 1, lambda ind, f=f, pos=pos, fv=fv:
                     gen_write_field(body, f, ind, pos, fv))
    tags = [f for f in tagged_fields(st) if tagged_in(f, present_ctx(f, ctx)) is not None]
    flex_ctx = vintersect(st.msg.flexible, ctx) if st.msg.flexible else None
    if flex_ctx is not None:
        def tag_body(ind):
            if not tags:
                body("kw_uvarint(w, 0); /* no tagged fields */", ind)
                return
            for f in tags:
                tg = tagged_in(f, present_ctx(f, ctx))
                c = cond(tg, flex_ctx)
                nd = negate(is_default_expr(f))
                expr = nd if c == "true" else "%s && %s" % (paren(c), nd)
                body("const bool has_%s = %s;" % (f.cname, expr), ind)
            body("kw_uvarint(w, %s);" % " + ".join("(uint32_t)has_%s" % f.cname for f in tags),
                 ind)
            for f in tags:
                fn = "%s_write_%s" % (st.cname, f.cname)
                body("if (has_%s)" % f.cname, ind)
                body("kw_tagged(w, %d, %s, v, o);" % (f.tag, fn), ind + 1)
                # the value writer, shared by the sizing and the writing pass
                tg = tagged_in(f, present_ctx(f, ctx))
                vb = Emitter()
                gen_write_field(vb, f, 1, tg, "true")
                vtext = "\n".join(vb.lines)
                helpers("/* %s */" % field_comment(f))
                helpers("static void %s(struct kwriter *w, int16_t v, const void *obj)" % fn)
                helpers("{")
                helpers("const struct %s *o = obj;" % st.cname, 1)
                if not re.search(r"\bv\b", vtext):
                    helpers("(void)v;", 1)
                helpers.lines.extend(vb.lines)
                helpers("}")
                helpers()
        emit_guarded(body, "flex" if fx not in ("true", "false") else fx, 1, tag_body)
    text = "\n".join(body.lines)
    e.lines.extend(helpers.lines)
    e("static void %s_write(struct kwriter *w, int16_t v, const struct %s *o)"
      % (st.cname, st.cname))
    e("{")
    if re.search(r"\bflex\b", text):
        e("const bool flex = %s;" % fx, 1)
        text += fx
    if not re.search(r"\bv\b", text):
        e("(void)v;", 1)
    if not re.search(r"\bo\b", text):
        e("(void)o;", 1)
    e.lines.extend(body.lines)
    e("}")
    e()


def gen_struct_init(e, st):
    e("void %s_init(struct %s *o)" % (st.cname, st.cname))
    e("{")
    e("memset(o, 0, sizeof(*o));", 1)
    for f in st.fields:
        s = init_stmt(f)
        if s:
            e(s, 1)
    e("}")
    e()


def gen_struct_is_default(e, st):
    e("static bool %s_is_default(const struct %s *o)" % (st.cname, st.cname))
    e("{")
    exprs = [is_default_expr(f) for f in st.fields]
    if not exprs:
        e("(void)o;", 1)
        e("return true;", 1)
    else:
        e("return %s;" % ("\n        && ".join(exprs)), 1)
    e("}")
    e()


def gen_struct_decl(e, st):
    e("/* %s (versions %s) */" % (st.name, vstr(st.ctx)))
    e("struct %s {" % st.cname)
    if not st.fields:
        e("char unused_; /* no fields */", 1)
    for f in st.fields:
        e.lines.extend(field_decl_lines("%s %s;" % (c_type(f), f.cname), field_comment(f)))
    e("};")
    e("struct %s_array {" % st.cname)
    e("int32_t n; /* -1 = null */", 1)
    e("struct %s *v;" % st.cname, 1)
    e("};")
    e("/* Sets every field to its schema default. */")
    e("void %s_init(struct %s *o);" % (st.cname, st.cname))
    e()


# ---- code generation: files -----------------------------------------------------------------

HEADER_NOTE = ("/*\n * Generated by tools/genproto.py from Kafka's %s.\n"
               " * Do not edit: python3 tools/genproto.py ../shared/kafka-protocol src/proto/gen\n */")


def file_base(msgs):
    m = msgs[0]
    if m.type in ("request", "response"):
        return snake(re.sub(r"(Request|Response)$", "", m.name))
    return snake(m.name)


def gen_api_files(outdir, base, msgs):
    guard = "GREGOR_PROTO_GEN_%s_H" % base.upper()
    h = Emitter()
    h(HEADER_NOTE % ", ".join(m.fname for m in msgs))
    h("#ifndef " + guard)
    h("#define " + guard)
    h()
    h('#include "proto/codec.h"')
    h()
    c = Emitter()
    c(HEADER_NOTE % ", ".join(m.fname for m in msgs))
    c('#include "proto/gen/%s.h"' % base)
    c()
    for m in msgs:
        order = structs_in_order(m)
        for st in order:
            gen_struct_decl(h, st)
        cn = m.root.cname
        up = cn.upper()
        h("#define %s_MIN_VERSION %d" % (up, m.valid[0]))
        h("#define %s_MAX_VERSION %d" % (up, m.valid[1]))
        h("#define %s_FIRST_FLEXIBLE %d" % (up, m.flexible[0] if m.flexible else -1))
        h("/*")
        h(" * Decodes version `version` into *out (slices of r's buffer, arrays in r->arena).")
        h(" * Returns 0 or r->err (negative errno); -ENOTSUP for a version outside %s."
          % vstr(m.valid))
        h(" */")
        h("int %s_decode(struct kreader *r, int16_t version, struct %s *out);" % (cn, cn))
        h("/* Appends version `version` of *in to w; returns 0 or w->err (negative errno). */")
        h("int %s_encode(struct kwriter *w, int16_t version, const struct %s *in);" % (cn, cn))
        h()
        # prototypes first: structs may refer to each other in any order
        for st in order:
            c("static void %s_read(struct kreader *r, int16_t v, struct %s *o);"
              % (st.cname, st.cname))
            c("static void %s_write(struct kwriter *w, int16_t v, const struct %s *o);"
              % (st.cname, st.cname))
        c()
        for st in order:
            gen_struct_init(c, st)
        # is_default is only needed for structs used as non-nullable tagged fields; finding
        # them needs the write pass, so generate writes into a buffer first.
        body = Emitter()
        for st in order:
            gen_struct_read(body, st)
            gen_struct_write(body, st)
        changed = True
        while changed:  # nested structs of is_default structs need one too
            changed = False
            for st in order:
                if st.needs_is_default:
                    for f in st.fields:
                        is_default_expr(f)
                        if f.struct is not None and not f.is_nullable_struct \
                                and not f.is_array and not f.struct.needs_is_default:
                            f.struct.needs_is_default = True
                            changed = True
        for st in order:
            if st.needs_is_default:
                gen_struct_is_default(c, st)
        c.lines.extend(body.lines)
        lo, hi = m.valid
        c("int %s_decode(struct kreader *r, int16_t version, struct %s *out)" % (cn, cn))
        c("{")
        c("if (version < %d || version > %d) {" % (lo, hi), 1)
        c("%s_init(out);" % cn, 2)
        c("kr_fail(r, -ENOTSUP);", 2)
        c("return r->err;", 2)
        c("}", 1)
        c("%s_read(r, version, out);" % cn, 1)
        c("return r->err;", 1)
        c("}")
        c()
        c("int %s_encode(struct kwriter *w, int16_t version, const struct %s *in)" % (cn, cn))
        c("{")
        c("if (version < %d || version > %d)" % (lo, hi), 1)
        c("kw_fail(w, -ENOTSUP); /* still walked so that file ranges get released */", 2)
        c("%s_write(w, version, in);" % cn, 1)
        c("return w->err;", 1)
        c("}")
        c()
    h("#endif")
    write_file(os.path.join(outdir, base + ".h"), h.text())
    write_file(os.path.join(outdir, base + ".c"), c.text())


# ---- test fill ------------------------------------------------------------------------------


def gen_fill_field(e, f, ind, pres):
    x = "o->" + f.cname
    nl = cond(f.nullable, pres) if f.nullable is not None else "false"
    null_ok = nl
    if f.is_array:
        if f.is_struct:
            elem = "struct %s" % f.struct.cname
        elif f.base in PRIMS:
            elem = PRIMS[f.base][0]
        else:
            elem = {"string": "struct kstr", "bytes": "struct kbytes"}[f.base]
        pre = "" if null_ok == "false" else "if (!(%s) || !kproto_fill_null(f)) " % null_ok
        if null_ok == "true":
            pre = "if (!kproto_fill_null(f)) "
        e("%s{ /* %s */" % (pre, f.name), ind)
        e("%s.n = kproto_fill_count(f);" % x, ind + 1)
        e("%s.v = kproto_fill_alloc(f, (size_t)%s.n, sizeof(%s));" % (x, x, elem), ind + 1)
        e("f->depth++;", ind + 1)
        e("for (int32_t i = 0; i < %s.n; i++)" % x, ind + 1)
        if f.is_struct:
            e("%s_fill(f, v, &%s.v[i]);" % (f.struct.cname, x), ind + 2)
        else:
            e("%s.v[i] = %s;" % (x, fill_value(f)), ind + 2)
        e("f->depth--;", ind + 1)
        if null_ok != "false":
            e("} else {", ind)
            e("%s.n = -1;" % x, ind + 1)
        e("}", ind)
    elif f.is_nullable_struct:
        pre = "if (!(%s) || !kproto_fill_null(f)) " % nl if nl not in ("true", "false") else (
            "if (!kproto_fill_null(f)) " if nl == "true" else "")
        e("%s{ /* %s */" % (pre, f.name), ind)
        e("%s = kproto_fill_alloc(f, 1, sizeof(*%s));" % (x, x), ind + 1)
        e("%s_fill(f, v, %s);" % (f.struct.cname, x), ind + 1)
        e("}", ind)
    elif f.is_struct:
        e("%s_fill(f, v, &%s); /* %s */" % (f.struct.cname, x, f.name), ind)
    elif f.base in ("string", "bytes", "records") and nl != "false":
        e("if (%skproto_fill_null(f)) /* %s */" % ("" if nl == "true" else paren(nl) + " && ",
                                                   f.name), ind)
        e("%s = %s;" % (x, {"string": "KSTR_NULL", "bytes": "KBYTES_NULL",
                            "records": "(struct krecords){NULL, -1, NULL, 0}"}[f.base]), ind + 1)
        e("else", ind)
        e("%s = %s;" % (x, fill_value(f)), ind + 1)
    else:
        e("%s = %s; /* %s */" % (x, fill_value(f), f.name), ind)


def fill_value(f):
    b = f.base
    if b == "bool":
        return "%s" % ("false" if bool_default(f) and not f.is_array else "true")
    if b in INT_LIMITS:
        lo, hi = INT_LIMITS[b]
        d = 0 if f.is_array else int_default(f)
        return "(%s)kproto_fill_int(f, %s, %s, %s)" % (
            PRIMS[b][0], c_int(d, "int64"), c_int(lo, "int64"),
            c_int(min(hi, (1 << 63) - 1), "int64"))
    if b == "float64":
        return "kproto_fill_float(f)"
    if b == "uuid":
        return "kproto_fill_uuid(f)"
    if b == "string":
        return "kproto_fill_str(f)"
    if b == "bytes":
        return "kproto_fill_bytes(f)"
    if b == "records":
        return "kproto_fill_records(f)"
    raise SystemExit("cannot fill %s" % f.name)


def gen_fill_file(filldir, base, msgs):
    c = Emitter()
    c(HEADER_NOTE % ", ".join(m.fname for m in msgs))
    c("/* Test support: fills messages with deterministic non-default values. */")
    c('#include "gen/fill/fill.h"')
    c('#include "proto/gen/%s.h"' % base)
    c()
    for m in msgs:
        order = structs_in_order(m)
        for st in order:
            if st is not m.root:
                c("static void %s_fill(struct kproto_fill *f, int16_t v, struct %s *o);"
                  % (st.cname, st.cname))
        c()
        for st in order:
            body = Emitter()
            for fl in st.fields:
                pres = present_ctx(fl, st.ctx)
                if pres is None:
                    continue
                emit_guarded(body, cond(pres, st.ctx), 1, lambda ind, fl=fl, pres=pres:
                             gen_fill_field(body, fl, ind, pres))
            text = "\n".join(body.lines)
            static = "" if st is m.root else "static "
            c("%svoid %s_fill(struct kproto_fill *f, int16_t v, struct %s *o)"
              % (static, st.cname, st.cname))
            c("{")
            if not re.search(r"\bv\b", text):
                c("(void)v;", 1)
            c("%s_init(o);" % st.cname, 1)
            if body.lines:
                c("if (kproto_fill_keep_defaults(f))", 1)
                c("return;", 2)
            c.lines.extend(body.lines)
            c("}")
            c()
    write_file(os.path.join(filldir, base + ".c"), c.text())


# ---- tables ---------------------------------------------------------------------------------


def gen_tables(outdir, filldir, apis, datas, files):
    h = Emitter()
    h(HEADER_NOTE % "message schemas")
    h("/*")
    h(" * Per API key: name, versions, flexible versions, listeners and the codecs, with generic")
    h(" * signatures so a dispatcher can decode/encode any API through the table. Read-only.")
    h(" */")
    h("#ifndef GREGOR_PROTO_GEN_API_TABLE_H")
    h("#define GREGOR_PROTO_GEN_API_TABLE_H")
    h()
    h('#include "proto/codec.h"')
    h()
    h("enum kproto_api_key {")
    for key, req, resp in apis:
        h("KPROTO_API_%s = %d," % (snake(re.sub("Request$", "", req.name)).upper(), key), 1)
    h("};")
    h()
    h("#define KPROTO_API_KEY_COUNT %d" % (max(k for k, _, _ in apis) + 1))
    h()
    h("#define KPROTO_LISTENER_ZK_BROKER 0x1")
    h("#define KPROTO_LISTENER_BROKER 0x2")
    h("#define KPROTO_LISTENER_CONTROLLER 0x4")
    h()
    h("typedef void (*kproto_init_fn)(void *msg);")
    h("typedef int (*kproto_decode_fn)(struct kreader *r, int16_t version, void *out);")
    h("typedef int (*kproto_encode_fn)(struct kwriter *w, int16_t version, const void *in);")
    h()
    h("/* One message type: its C struct's size and functions. */")
    h("struct kproto_codec {")
    h("const char *name;         /* schema name, e.g. \"ProduceRequest\" */", 1)
    h("size_t size;              /* sizeof the C struct */", 1)
    h("kproto_init_fn init;", 1)
    h("kproto_decode_fn decode;", 1)
    h("kproto_encode_fn encode;", 1)
    h("};")
    h()
    h("struct kproto_api {")
    h("int16_t key;", 1)
    h("const char *name;              /* e.g. \"Produce\" */", 1)
    h("int16_t min_version;", 1)
    h("int16_t max_version;", 1)
    h("int16_t first_flexible;        /* -1: never flexible */", 1)
    h("int16_t deprecated_max;        /* versions <= this are deprecated; -1: none */", 1)
    h("bool latest_version_unstable;  /* max_version is not advertised by default */", 1)
    h("uint8_t listeners;             /* KPROTO_LISTENER_* */", 1)
    h("/* First version whose response body starts with ThrottleTimeMs (an int32 right after", 1)
    h(" * the response header); -1: none does. */", 1)
    h("int16_t throttle_first_from;", 1)
    h("struct kproto_codec request;", 1)
    h("struct kproto_codec response;", 1)
    h("};")
    h()
    h("/* Every API, in key order. */")
    h("extern const struct kproto_api kproto_apis[];")
    h("extern const int kproto_api_count;")
    h()
    h("/* The API with this key, or NULL when the key is unknown. */")
    h("const struct kproto_api *kproto_api_lookup(int16_t key);")
    h()
    h("/* Data schemas (no API key): versioned structs whose int16 version prefix, if any, is")
    h(" * the caller's business. */")
    h("struct kproto_data_schema {")
    h("struct kproto_codec codec;", 1)
    h("int16_t min_version;", 1)
    h("int16_t max_version;", 1)
    h("int16_t first_flexible;", 1)
    h("};")
    h("extern const struct kproto_data_schema kproto_data_schemas[];")
    h("extern const int kproto_data_schema_count;")
    h()
    h("#endif")
    write_file(os.path.join(outdir, "api_table.h"), h.text())

    c = Emitter()
    c(HEADER_NOTE % "message schemas")
    c('#include "proto/gen/api_table.h"')
    c('#include "proto/gen/kmsg.h"')
    c()
    c("/* Wrappers with the table's generic signatures (no function-pointer casts). */")
    c("#define KPROTO_CODEC(schema, cn)                                                        \\")
    c("    static void cn##_init_any(void *m) { cn##_init(m); }                                \\")
    c("    static int cn##_decode_any(struct kreader *r, int16_t v, void *out)                 \\")
    c("    {                                                                                   \\")
    c("        return cn##_decode(r, v, out);                                                  \\")
    c("    }                                                                                   \\")
    c("    static int cn##_encode_any(struct kwriter *w, int16_t v, const void *in)            \\")
    c("    {                                                                                   \\")
    c("        return cn##_encode(w, v, in);                                                   \\")
    c("    }")
    c("#define KPROTO_CODEC_REF(schema, cn) \\")
    c("    {schema, sizeof(struct cn), cn##_init_any, cn##_decode_any, cn##_encode_any}")
    c()
    for key, req, resp in apis:
        for m in (req, resp):
            c("KPROTO_CODEC(\"%s\", %s)" % (m.name, m.root.cname))
    for m in datas:
        c("KPROTO_CODEC(\"%s\", %s)" % (m.name, m.root.cname))
    c()
    c("const struct kproto_api kproto_apis[] = {")
    for key, req, resp in apis:
        ls = " | ".join(
            "KPROTO_LISTENER_%s" % {"zkBroker": "ZK_BROKER", "broker": "BROKER",
                                    "controller": "CONTROLLER"}[x]
            for x in req.listeners) or "0"
        c("{", 1)
        c(".key = %d," % key, 2)
        c(".name = \"%s\"," % re.sub("Request$", "", req.name), 2)
        c(".min_version = %d," % req.valid[0], 2)
        c(".max_version = %d," % req.valid[1], 2)
        c(".first_flexible = %d," % (req.flexible[0] if req.flexible else -1), 2)
        c(".deprecated_max = %d," % (req.deprecated[1] if req.deprecated else -1), 2)
        c(".latest_version_unstable = %s," % ("true" if req.unstable else "false"), 2)
        c(".listeners = %s," % ls, 2)
        f0 = resp.root.fields[0] if resp.root.fields else None
        tf = f0.versions[0] if f0 is not None and f0.name == "ThrottleTimeMs" and \
            f0.base == "int32" and f0.tag is None else -1
        c(".throttle_first_from = %d," % tf, 2)
        c(".request = KPROTO_CODEC_REF(\"%s\", %s)," % (req.name, req.root.cname), 2)
        c(".response = KPROTO_CODEC_REF(\"%s\", %s)," % (resp.name, resp.root.cname), 2)
        c("},", 1)
    c("};")
    c()
    c("const int kproto_api_count = (int)(sizeof(kproto_apis) / sizeof(kproto_apis[0]));")
    c()
    c("const struct kproto_api *kproto_api_lookup(int16_t key)")
    c("{")
    c("/* keys are dense from 0, so the table index is the key; check it anyway */", 1)
    c("if (key < 0 || key >= kproto_api_count || kproto_apis[key].key != key)", 1)
    c("return NULL;", 2)
    c("return &kproto_apis[key];", 1)
    c("}")
    c()
    c("const struct kproto_data_schema kproto_data_schemas[] = {")
    for m in datas:
        c("{KPROTO_CODEC_REF(\"%s\", %s), %d, %d, %d}," % (
            m.name, m.root.cname, m.valid[0], m.valid[1], m.flexible[0] if m.flexible else -1), 1)
    c("};")
    c()
    c("const int kproto_data_schema_count =")
    c("(int)(sizeof(kproto_data_schemas) / sizeof(kproto_data_schemas[0]));", 1)
    write_file(os.path.join(outdir, "api_table.c"), c.text())

    k = Emitter()
    k(HEADER_NOTE % "message schemas")
    k("/* Every generated message struct and codec. */")
    k("#ifndef GREGOR_PROTO_GEN_KMSG_H")
    k("#define GREGOR_PROTO_GEN_KMSG_H")
    k()
    for base in files:
        k('#include "proto/gen/%s.h"' % base)
    k()
    k("#endif")
    write_file(os.path.join(outdir, "kmsg.h"), k.text())

    # fill table
    fh = Emitter()
    fh(HEADER_NOTE % "message schemas")
    fh("/* Test support: deterministic non-default values for every generated message. */")
    fh("#ifndef GREGOR_TESTS_GEN_FILL_H")
    fh("#define GREGOR_TESTS_GEN_FILL_H")
    fh()
    fh('#include "support/proto_fill.h"')
    fh('#include "proto/gen/api_table.h"')
    fh('#include "proto/gen/kmsg.h"')
    fh()
    fh("typedef void (*kproto_fill_fn)(struct kproto_fill *f, int16_t version, void *msg);")
    fh()
    fh("/* Indexed like kproto_apis / kproto_data_schemas. */")
    fh("extern const kproto_fill_fn kproto_fill_requests[];")
    fh("extern const kproto_fill_fn kproto_fill_responses[];")
    fh("extern const kproto_fill_fn kproto_fill_data[];")
    fh()
    allm = [m for _, rq, rs in apis for m in (rq, rs)] + list(datas)
    for m in allm:
        fh("void %s_fill(struct kproto_fill *f, int16_t v, struct %s *o);"
           % (m.root.cname, m.root.cname))
    fh()
    fh("#endif")
    write_file(os.path.join(filldir, "fill.h"), fh.text())

    ft = Emitter()
    ft(HEADER_NOTE % "message schemas")
    ft('#include "gen/fill/fill.h"')
    ft('#include "proto/gen/kmsg.h"')
    ft()
    for m in allm:
        ft("static void %s_fill_any(struct kproto_fill *f, int16_t v, void *m)" % m.root.cname)
        ft("{")
        ft("%s_fill(f, v, m);" % m.root.cname, 1)
        ft("}")
    ft()
    ft("const kproto_fill_fn kproto_fill_requests[] = {")
    for _, rq, _ in apis:
        ft("%s_fill_any," % rq.root.cname, 1)
    ft("};")
    ft("const kproto_fill_fn kproto_fill_responses[] = {")
    for _, _, rs in apis:
        ft("%s_fill_any," % rs.root.cname, 1)
    ft("};")
    ft("const kproto_fill_fn kproto_fill_data[] = {")
    for m in datas:
        ft("%s_fill_any," % m.root.cname, 1)
    ft("};")
    write_file(os.path.join(filldir, "fill_table.c"), ft.text())


def gen_errors(outdir, csv_path):
    e = Emitter()
    e(HEADER_NOTE % "errors.csv")
    e("/* Kafka error codes, named as Kafka names them. Data carried in responses. */")
    e("#ifndef GREGOR_PROTO_GEN_ERRORS_H")
    e("#define GREGOR_PROTO_GEN_ERRORS_H")
    e()
    rows = []
    with open(csv_path, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 2 or not re.match(r"^-?\d+$", parts[0].strip()):
                continue
            rows.append((int(parts[0]), parts[1].strip(), parts[2].strip() if len(parts) > 2 else ""))
    known = set(code for code, _, _ in rows)
    rows.extend(row for row in LATER_ERRORS if row[0] not in known)
    rows.sort(key=lambda row: row[0])
    # guarded macros, so other headers that define a few of these with the same values coexist
    for code, name, retr in rows:
        e("#ifndef KAFKA_ERR_%s" % name)
        e("#define KAFKA_ERR_%s (%d)%s" % (name, code, " /* retriable */"
                                           if retr in ("yes", "true", "1") else ""))
        e("#endif")
    e()
    e("/* Kafka's name for an error code (\"NONE\", \"UNKNOWN_SERVER_ERROR\", ...), or NULL. */")
    e("static inline const char *kafka_error_name(int code)")
    e("{")
    e("switch (code) {", 1)
    for code, name, _ in rows:
        e("case %d: return \"%s\";" % (code, name), 1)
    e("default: return NULL;", 1)
    e("}", 1)
    e("}")
    e()
    e("/* Whether a client may retry after this error. */")
    e("static inline int kafka_error_retriable(int code)")
    e("{")
    e("switch (code) {", 1)
    for code, name, retr in rows:
        if retr in ("yes", "true", "1"):
            e("case %d:" % code, 1)
    e("return 1;", 2)
    e("default: return 0;", 1)
    e("}", 1)
    e("}")
    e()
    e("#endif")
    write_file(os.path.join(outdir, "errors.h"), e.text())


def write_file(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# ---- main -----------------------------------------------------------------------------------


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write("usage: genproto.py <kafka-protocol dir> <output dir> [<fill dir>]\n")
        return 2
    src, outdir = argv[1], argv[2]
    filldir = argv[3] if len(argv) == 4 else DEFAULT_FILL_DIR
    reqs, resps, datas = {}, {}, []
    for sub in ("messages", "group-coordinator", "transaction-coordinator"):
        d = os.path.join(src, sub)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".json"):
                continue
            js = load_schema(os.path.join(d, fn))
            m = Message(js, "%s/%s" % (sub, fn))
            if m.type == "request":
                reqs[m.api_key] = m
            elif m.type == "response":
                resps[m.api_key] = m
            elif m.type == "data":
                datas.append(m)
            # "header": RequestHeader / ResponseHeader are hand-written in src/proto/header.c
    apis = []
    for key in sorted(reqs):
        if key not in resps:
            raise SystemExit("API %d has no response schema" % key)
        apis.append((key, reqs[key], resps[key]))
    datas.sort(key=lambda m: m.name)
    for _, rq, rs in apis:
        rq.build()
        rs.build()
    for m in datas:
        m.build()
    # every struct name must be unique across all generated files
    seen = {}
    for m in [x for _, rq, rs in apis for x in (rq, rs)] + datas:
        for st in structs_in_order(m):
            if st.cname in seen and seen[st.cname] is not st:
                raise SystemExit("C name clash: %s (%s, %s)" % (st.cname, m.name,
                                                                 seen[st.cname].msg.name))
            seen[st.cname] = st
    files = []
    for _, rq, rs in apis:
        base = file_base([rq])
        gen_api_files(outdir, base, [rq, rs])
        gen_fill_file(filldir, base, [rq, rs])
        files.append(base)
    for m in datas:
        base = file_base([m])
        gen_api_files(outdir, base, [m])
        gen_fill_file(filldir, base, [m])
        files.append(base)
    if len(set(files)) != len(files):
        raise SystemExit("output file name clash")
    gen_tables(outdir, filldir, apis, datas, files)
    csv_path = os.path.join(src, "errors.csv")
    if os.path.exists(csv_path):
        gen_errors(outdir, csv_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
