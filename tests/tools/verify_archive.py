#!/usr/bin/env python3
"""Verifies a Fl0wer archive with nothing but docs/formats.md.

Usage: verify_archive.py ARCHIVE_DIR KEY_DIR

Written from the document alone, not from the C code, to show that the
document is enough to check a sensor's archive with one's own code.  It
reads archive.conf and every shard-NN/seg-*.fl0 and checks: segment
headers, names, shards and hours; each block's header, CRC-32C and
batch framing; the footer and the index of sealed segments (entries,
exact Bloom filters, prefix lists); each batch's Ed25519 signature with
the KEY_DIR/NAME.pub of its sensor, its statement, payload hash, the
columnar payload, canonical records, ChaCha20 salts and Merkle root;
and, across batches, each sensor's chain of sequence numbers and
`previous` ids.  Before that it checks the document's test vectors
(tests/tools/formats_vectors.py).

Needs Python 3 with the `cryptography` module (Ed25519 only) and the
`zstd` command.  Exit status: 0 and a one-line summary when everything
holds; 1 with "verify_archive: FILE offset N: what" at the first
failure; 2 on a usage error or a missing prerequisite.
"""

import os
import re
import shutil
import struct
import subprocess
import sys

import formats_vectors as fv

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PublicKey)
except ImportError:
    Ed25519PublicKey = None

SEGMENT_MAGIC = b"FL0WSEG1"
BLOCK_MAGIC = b"FLBK"
INDEX_MAGIC = b"FLIX"
FOOTER_MAGIC = b"FL0WEND1"
BATCH_MAGIC = b"FL0WBAT1"
SEGMENT_HEADER = 24
BLOCK_HEADER = 40
FOOTER = 32
INDEX_ENTRY = 80
INDEX_VERSION = 2
MAX_BLOCK_BODY = 256 * 1024 * 1024 + 4096
MAX_STATEMENT = 2048
MAX_RECORDS = 1000000
HOUR_MS = 3600000
SECTIONS = 35
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

STATEMENT_LINES = [
    ("sensor", r"[A-Za-z0-9._-]{1,64}"),
    ("key_id", r"[0-9a-f]{16}"),
    ("session", r"[0-9a-f]{32}"),
    ("sequence", "u64"),
    ("hash", r"blake2b-256|sha-256"),
    ("previous", r"[0-9a-f]{64}"),
    ("time_first", "u64"),
    ("time_last", "u64"),
    ("created", "u64"),
    ("records", "u32"),
    ("merkle_root", r"[0-9a-f]{64}"),
    ("payload_hash", r"[0-9a-f]{64}"),
    ("payload_len", "u64"),
    ("lost_socket", "u64"),
    ("lost_decode", "u64"),
    ("lost_sequence", "u64"),
    ("lost_spool", "u64"),
]

# Integer columns 13-22 of the payload and the width of their field.
PLAIN_COLUMNS = [("in_if", 32), ("out_if", 32), ("src_as", 32),
                 ("dst_as", 32), ("mpls", 32), ("domain", 32),
                 ("sampling", 32), ("vlan", 16), ("direction", 8),
                 ("fw_event", 8)]
ADDRESS_COLUMNS = ["src_addr", "dst_addr", "next_hop", "exporter"]
SEGMENT_NAME = re.compile(r"seg-(\d{4})(\d{2})(\d{2})T(\d{2})-\d{4}\.fl0$")
SHARD_NAME = re.compile(r"shard-(\d{2})$")


class Invalid(Exception):
    """A check that failed: the file, the byte offset in it, and what."""

    def __init__(self, path, offset, what):
        super().__init__(what)
        self.path = path
        self.offset = offset
        self.what = what


class Malformed(Exception):
    """A payload that does not decode; turned into Invalid by its caller,
    which knows where the payload lies in the file."""


class UsageError(Exception):
    """Wrong arguments or a missing prerequisite (exit status 2)."""


def require(ok, path, offset, what):
    """Raises Invalid(path, offset, what) unless ok."""
    if not ok:
        raise Invalid(path, offset, what)


class PublicKey:
    """A sensor's NAME.pub: its name, key id and 32-byte public key."""

    def __init__(self, name, key_id, raw):
        self.name = name
        self.key_id = key_id
        self.raw = raw
        self.verifier = Ed25519PublicKey.from_public_bytes(raw)


class Run:
    """What the verification collects: keys, shard count, chains and
    counts."""

    def __init__(self, keys, shards):
        self.keys = keys
        self.shards = shards
        self.chains = {}
        self.counts = {"sealed": 0, "open": 0, "blocks": 0, "batches": 0,
                       "records": 0, "heartbeats": 0}


def load_public_key(path):
    """Parses NAME.pub: four exact lines; the key id is the first 8
    bytes of SHA-256 of the public key, and the name is the file's."""
    with open(path, "rb") as fh:
        text = fh.read()
    pattern = (rb"fl0wer-public-key 1\nname: ([A-Za-z0-9._-]{1,64})\n"
               rb"key_id: ([0-9a-f]{16})\npublic: ([0-9a-f]{64})\n")
    match = re.fullmatch(pattern, text)
    require(match is not None, path, 0, "not a fl0wer public key file")
    name = match.group(1).decode()
    key_id = match.group(2).decode()
    raw = bytes.fromhex(match.group(3).decode())
    require(fv.sha256(raw)[:8].hex() == key_id, path, 0,
            "key_id is not the hash of the public key")
    require(os.path.basename(path) == name + ".pub", path, 0,
            "the file of key %s is not named %s.pub" % (name, name))
    return PublicKey(name, key_id, raw)


def load_keys(keydir):
    """Every KEY_DIR/*.pub, by sensor name."""
    keys = {}
    for entry in sorted(os.listdir(keydir)):
        if entry.endswith(".pub"):
            key = load_public_key(os.path.join(keydir, entry))
            keys[key.name] = key
    if not keys:
        raise UsageError("no *.pub file in " + keydir)
    return keys


def read_archive_conf(archive):
    """The shard count from archive.conf: `version = 1`, `shards = N`
    (1..100), comment lines starting with #."""
    path = os.path.join(archive, "archive.conf")
    require(os.path.isfile(path), path, 0, "missing")
    values = {}
    with open(path, "rb") as fh:
        lines = fh.read().decode("ascii", "replace").splitlines()
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    require(values.get("version") == "1", path, 0, "not version = 1")
    shards = values.get("shards", "")
    require(shards.isdigit() and 1 <= int(shards) <= 100, path, 0,
            "shards is not 1..100")
    return int(shards)


def decimal_fits(text, bits):
    """A decimal as the statement writes it: digits, no leading zero,
    within an unsigned integer of the given width."""
    if not re.fullmatch(r"0|[1-9][0-9]*", text):
        return False
    return int(text) < (1 << bits)


def parse_statement(text, path, offset):
    """The statement's 18 lines, strictly as docs/formats.md gives them;
    returns its values by key."""
    require(len(text) <= MAX_STATEMENT, path, offset, "statement too long")
    require(all(0x20 <= b <= 0x7E or b == 0x0A for b in text), path,
            offset, "statement: a byte outside 0x20..0x7e and LF")
    lines = text.decode("ascii").split("\n")
    require(lines[0] == "fl0wer-statement 1", path, offset,
            "statement: line 1 is not fl0wer-statement 1")
    require(len(lines) == len(STATEMENT_LINES) + 2 and lines[-1] == "",
            path, offset, "statement: not 18 lines each ending in LF")
    values = {}
    for number, (line, (key, form)) in enumerate(
            zip(lines[1:-1], STATEMENT_LINES), start=2):
        name, sep, value = line.partition(": ")
        require(sep and name == key, path, offset,
                "statement: line %d is not %s" % (number, key))
        if form in ("u64", "u32"):
            ok = decimal_fits(value, int(form[1:]))
        else:
            ok = re.fullmatch(form, value) is not None
        require(ok, path, offset,
                "statement: line %d: bad %s %r" % (number, key, value))
        values[key] = value
    return values


class Section:
    """One section of the column block, read front to back."""

    def __init__(self, number, data):
        self.number = number
        self.data = data
        self.pos = 0

    def fail(self, what):
        raise Malformed("section %d: %s" % (self.number, what))

    def take(self, count):
        """The next count bytes."""
        if self.pos + count > len(self.data):
            self.fail("ends early")
        out = self.data[self.pos:self.pos + count]
        self.pos += count
        return out

    def varint(self):
        """An unsigned LEB128 of at most 10 bytes, within 64 bits."""
        value = 0
        for shift in range(0, 70, 7):
            byte = self.take(1)[0]
            if shift == 63 and byte > 1:
                self.fail("varint exceeds 64 bits")
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
        self.fail("varint longer than 10 bytes")
        return None

    def signed(self):
        """A zigzag varint, as a difference modulo 2^64."""
        value = self.varint()
        return ((value >> 1) ^ -(value & 1)) & fv.MASK64

    def done(self):
        """Fails when bytes are left over."""
        if self.pos != len(self.data):
            self.fail("%d bytes left over" % (len(self.data) - self.pos))


def integer_column(section, count, bits=64):
    """An integer column of count values: mode 0 plain varints, mode 1
    runs (run >= 1, runs summing to count); values within bits."""
    # An empty column of no values may leave out even its mode byte.
    mode = section.take(1)[0] if count or section.data else None
    values = []
    if mode == 0:
        values = [section.varint() for _ in range(count)]
    elif mode == 1:
        while len(values) < count:
            run = section.varint()
            value = section.varint()
            if run < 1 or len(values) + run > count:
                section.fail("run of %d" % run)
            values.extend([value] * run)
    elif mode is not None:
        section.fail("integer column mode %d" % mode)
    section.done()
    if any(value >> bits for value in values):
        section.fail("a value wider than %d bits" % bits)
    return values


def fixed_column(section, count, width):
    """count big-endian integers of width bytes each."""
    values = [int.from_bytes(section.take(width), "big")
              for _ in range(count)]
    section.done()
    return values


def presence(section, count):
    """Which of count records have an optional group: mode 0 none, 1 all,
    2 a bitmap with zero padding bits."""
    mode = section.take(1)[0]
    if mode in (0, 1):
        section.done()
        return [mode == 1] * count
    if mode != 2:
        section.fail("presence mode %d" % mode)
    bitmap = section.take((count + 7) // 8)
    section.done()
    has = [bool(bitmap[i // 8] >> (i % 8) & 1) for i in range(count)]
    if count % 8 and bitmap[-1] >> (count % 8):
        section.fail("padding bits set")
    return has


def zstd_content_size(frame):
    """The content size a zstd frame header declares (RFC 8878 3.1.1.1),
    or None when it declares none."""
    if len(frame) < 6 or frame[:4] != ZSTD_MAGIC:
        raise Malformed("payload does not hold a zstd frame")
    descriptor = frame[4]
    size_flag = descriptor >> 6
    single = descriptor >> 5 & 1
    dict_bytes = [0, 1, 2, 4][descriptor & 3]
    size_bytes = [1 if single else 0, 2, 4, 8][size_flag]
    if size_bytes == 0:
        return None
    start = 5 + (0 if single else 1) + dict_bytes
    if start + size_bytes > len(frame):
        raise Malformed("zstd frame header ends early")
    size = int.from_bytes(frame[start:start + size_bytes], "little")
    return size + 256 if size_bytes == 2 else size


def inflate(frame):
    """The column block: the frame inflated with the zstd command, which
    must be the size the frame declares."""
    declared = zstd_content_size(frame)
    if declared is None:
        raise Malformed("zstd frame declares no content size")
    result = subprocess.run(["zstd", "-q", "-d", "-c"], input=frame,
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise Malformed("zstd: " + result.stderr.decode(errors="replace"))
    if len(result.stdout) != declared:
        raise Malformed("zstd frame inflates to %d bytes, declares %d"
                        % (len(result.stdout), declared))
    return result.stdout


def split_sections(block):
    """Exactly 35 sections (u32 length, bytes), nothing after them."""
    sections = []
    pos = 0
    while pos < len(block):
        if pos + 4 > len(block):
            raise Malformed("section length cut short")
        (length,) = struct.unpack(">I", block[pos:pos + 4])
        if pos + 4 + length > len(block):
            raise Malformed("section %d runs past the end" % len(sections))
        sections.append(Section(len(sections), block[pos + 4:
                                                     pos + 4 + length]))
        pos += 4 + length
    if len(sections) != SECTIONS:
        raise Malformed("%d sections, want %d" % (len(sections), SECTIONS))
    return sections


def read_dictionary(section):
    """Section 34: the IPv4 and IPv6 address entries, as 16 bytes."""
    count4 = section.varint()
    count6 = section.varint()
    v4 = [fv.V4_MAPPED + section.take(4) for _ in range(count4)]
    v6 = [section.take(16) for _ in range(count6)]
    section.done()
    return v4, v6


def resolve(section, refs, v4, v6):
    """Address references (2i IPv4, 2i + 1 IPv6) to 16-byte addresses."""
    out = []
    for ref in refs:
        table = v6 if ref & 1 else v4
        if ref >> 1 >= len(table):
            section.fail("reference %d past the dictionary" % ref)
        out.append(table[ref >> 1])
    return out


def decode_times(sections, count):
    """Sections 0 and 1: end times as steps from a base, durations."""
    times = sections[0]
    previous = times.varint() if count or times.data else 0
    ends = []
    for _ in range(count):
        previous = (previous + times.signed()) & fv.MASK64
        ends.append(previous)
    times.done()
    durations = [sections[1].signed() for _ in range(count)]
    sections[1].done()
    return [{"time_end": end, "time_start": (end - back) & fv.MASK64}
            for end, back in zip(ends, durations)]


def decode_main_columns(sections, flows, v4, v6):
    """Sections 2-22: the fields every record has."""
    count = len(flows)
    columns = {"packets": integer_column(sections[2], count),
               "bytes": integer_column(sections[3], count)}
    for number, name in enumerate(ADDRESS_COLUMNS, start=4):
        refs = integer_column(sections[number], count)
        columns[name] = resolve(sections[number], refs, v4, v6)
    columns["src_port"] = fixed_column(sections[8], count, 2)
    columns["dst_port"] = fixed_column(sections[9], count, 2)
    for number, name in enumerate(("proto", "tcp_flags", "tos"), start=10):
        columns[name] = fixed_column(sections[number], count, 1)
    for number, (name, bits) in enumerate(PLAIN_COLUMNS, start=13):
        columns[name] = integer_column(sections[number], count, bits)
    for name, values in columns.items():
        for flow, value in zip(flows, values):
            flow[name] = value


def decode_optional(sections, flows, v4, v6):
    """Sections 23-33: the NAT, reverse and extra groups, zero or empty
    for a record without them."""
    count = len(flows)
    for flow in flows:
        flow.update(xlate_src_addr=bytes(16), xlate_dst_addr=bytes(16),
                    xlate_src_port=0, xlate_dst_port=0, rev_packets=0,
                    rev_bytes=0, extra=b"")
    rows = [i for i, has in enumerate(presence(sections[23], count)) if has]
    columns = {}
    for number, name in ((24, "xlate_src_addr"), (25, "xlate_dst_addr")):
        refs = integer_column(sections[number], len(rows))
        columns[name] = resolve(sections[number], refs, v4, v6)
    columns["xlate_src_port"] = fixed_column(sections[26], len(rows), 2)
    columns["xlate_dst_port"] = fixed_column(sections[27], len(rows), 2)
    set_rows(flows, rows, columns)
    rows = [i for i, has in enumerate(presence(sections[28], count)) if has]
    set_rows(flows, rows, {
        "rev_packets": integer_column(sections[29], len(rows)),
        "rev_bytes": integer_column(sections[30], len(rows))})
    rows = [i for i, has in enumerate(presence(sections[31], count)) if has]
    lengths = integer_column(sections[32], len(rows), 32)
    if any(length == 0 for length in lengths):
        sections[32].fail("an extra_len of 0")
    set_rows(flows, rows, {
        "extra": [sections[33].take(length) for length in lengths]})
    sections[33].done()


def set_rows(flows, rows, columns):
    """Stores each column's values in the records rows names, in order."""
    for name, values in columns.items():
        for row, value in zip(rows, values):
            flows[row][name] = value


def decode_payload(payload, records):
    """The batch payload: version 1, the record count (the statement's),
    the 32-byte secret, one zstd frame of 35 sections; returns the secret
    and the records in payload order."""
    if len(payload) < 37 or payload[0] != 1:
        raise Malformed("short payload or version other than 1")
    (count,) = struct.unpack(">I", payload[1:5])
    if count != records or count > MAX_RECORDS:
        raise Malformed("record count %d, statement says %d"
                        % (count, records))
    secret = payload[5:37]
    sections = split_sections(inflate(payload[37:]))
    v4, v6 = read_dictionary(sections[34])
    flows = decode_times(sections, count)
    decode_main_columns(sections, flows, v4, v6)
    decode_optional(sections, flows, v4, v6)
    return secret, flows


def verify_signature(key, signature, text, path, offset):
    """Ed25519 over the statement's exact bytes."""
    try:
        key.verifier.verify(signature, text)
    except InvalidSignature:
        raise Invalid(path, offset, "signature does not verify with key "
                      + key.name) from None


def sensor_of(text, path, offset):
    """The sensor named by a statement (not yet verified), to choose the
    key; the statement itself is checked after the signature."""
    match = re.match(rb"fl0wer-statement 1\nsensor: ([A-Za-z0-9._-]+)\n",
                     text)
    require(match is not None, path, offset, "statement: no sensor line")
    return match.group(1).decode()


def check_records(statement, secret, flows, path, offset):
    """Steps 7 and 8: the Merkle root over salted canonical records, and
    time_first / time_last."""
    hash_fn = fv.HASHES[statement["hash"]]
    leaves = [fv.record_leaf(secret, i, flow, hash_fn)
              for i, flow in enumerate(flows)]
    root = fv.merkle_root_of_leaves(leaves, hash_fn)
    require(root.hex() == statement["merkle_root"], path, offset,
            "merkle_root differs from the root of the records")
    if flows:
        first = min(flow["time_start"] for flow in flows)
        last = max(flow["time_end"] for flow in flows)
    else:
        first = last = 0
    require(int(statement["time_first"]) == first, path, offset,
            "time_first is not the least time_start of the records")
    require(int(statement["time_last"]) == last, path, offset,
            "time_last is not the greatest time_end of the records")


def verify_batch(data, base, path, run):
    """One signed batch at file offset base, steps 1-8 of "Verifying a
    batch"; records its place in its sensor's chain and returns
    (statement, records)."""
    require(data[:8] == BATCH_MAGIC, path, base, "not a batch")
    slen, plen = struct.unpack(">II", data[8:16])
    require(1 <= slen <= MAX_STATEMENT, path, base + 8,
            "statement length %d" % slen)
    require(80 + slen + plen == len(data), path, base + 12,
            "batch length differs from 80 + S + P")
    text = data[16:16 + slen]
    payload = data[80 + slen:]
    sensor = sensor_of(text, path, base + 16)
    require(sensor in run.keys, path, base + 16,
            "no public key for sensor " + sensor)
    key = run.keys[sensor]
    verify_signature(key, data[16 + slen:80 + slen], text, path,
                     base + 16 + slen)
    statement = parse_statement(text, path, base + 16)
    require(statement["key_id"] == key.key_id, path, base + 16,
            "key_id is not the key's")
    hash_fn = fv.HASHES[statement["hash"]]
    where = base + 80 + slen
    require(int(statement["payload_len"]) == plen, path, where,
            "payload_len differs from P")
    require(hash_fn(payload).hex() == statement["payload_hash"], path,
            where, "payload_hash differs from the payload's hash")
    try:
        secret, flows = decode_payload(payload, int(statement["records"]))
    except Malformed as err:
        raise Invalid(path, where, "payload: %s" % err) from None
    check_records(statement, secret, flows, path, where)
    link = (int(statement["sequence"]), statement["previous"],
            hash_fn(text).hex(), path, base)
    run.chains.setdefault(sensor, []).append(link)
    return statement, flows


def batch_hour(statement):
    """The time that places a batch in an hour: time_first, or for a
    heartbeat the time it was closed."""
    if int(statement["records"]) == 0:
        return int(statement["created"])
    return int(statement["time_first"])


def verify_block(data, offset, limit, segment, run):
    """The block at offset, before limit (the index or the end of the
    file): magic, header, CRC-32C, the batches tiling its body, counts
    and times; returns its index facts."""
    path = segment["path"]
    require(limit - offset >= BLOCK_HEADER, path, offset,
            "incomplete block header")
    require(data[offset:offset + 4] == BLOCK_MAGIC, path, offset,
            "no block magic")
    fields = struct.unpack(">IIIQQII", data[offset + 4:offset + 40])
    length, records, batches, first, last, flags, crc = fields
    require(length <= MAX_BLOCK_BODY, path, offset + 4, "body too long")
    end = offset + BLOCK_HEADER + length
    require(end <= limit, path, offset, "block runs past the end")
    body = data[offset + BLOCK_HEADER:end]
    require(fv.crc32c(data[offset:offset + 36] + body) == crc, path,
            offset + 36, "block CRC-32C does not match")
    require(flags == 0, path, offset + 32, "block flags not 0")
    pos = 0
    flows = []
    for _ in range(batches):
        base = offset + BLOCK_HEADER + pos
        require(pos + 8 <= length, path, base, "batch header past the body")
        blen, brecords = struct.unpack(">II", body[pos:pos + 8])
        require(pos + 8 + blen <= length, path, base, "batch past the body")
        statement, got = verify_batch(body[pos + 8:pos + 8 + blen],
                                      base + 8, path, run)
        require(len(got) == brecords, path, base + 4,
                "records differ from the batch's")
        hour = batch_hour(statement)
        require(segment["hour"] <= hour < segment["hour"] + HOUR_MS, path,
                base + 8, "batch of another hour than the segment's")
        require(fv.fnv1a32(statement["sensor"].encode()) % run.shards
                == segment["shard"], path, base + 8,
                "batch of sensor %s in the wrong shard"
                % statement["sensor"])
        flows.extend(got)
        pos += 8 + blen
        run.counts["batches"] += 1
        if not got:
            run.counts["heartbeats"] += 1
    require(pos == length, path, offset, "batches do not tile the body")
    require(len(flows) == records, path, offset + 8,
            "records differ from the sum over the batches")
    if flows:
        require(first == min(f["time_start"] for f in flows), path,
                offset + 16, "time_first is not the least flow start")
        require(last == max(f["time_end"] for f in flows), path,
                offset + 24, "time_last is not the greatest flow end")
    run.counts["blocks"] += 1
    run.counts["records"] += records
    addresses = set()
    for flow in flows:
        addresses.add(flow["src_addr"])
        addresses.add(flow["dst_addr"])
    return {"offset": offset, "length": end - offset, "records": records,
            "first": first, "last": last, "addresses": addresses}


def read_footer(data, path):
    """The index's offset and bytes of a sealed segment (footer magic),
    with both CRCs checked; None for an open segment."""
    if len(data) < SEGMENT_HEADER + FOOTER or \
            data[-FOOTER:-FOOTER + 8] != FOOTER_MAGIC:
        return None
    at = len(data) - FOOTER
    offset, length, index_crc, footer_crc = struct.unpack(
        ">QQII", data[at + 8:])
    require(fv.crc32c(data[at:at + 28]) == footer_crc, path, at + 28,
            "footer CRC-32C does not match")
    require(offset + length == at, path, at + 8,
            "index offset + length is not file size - 32")
    require(offset >= SEGMENT_HEADER, path, at + 8, "index offset too low")
    index = data[offset:offset + length]
    require(fv.crc32c(index) == index_crc, path, at + 24,
            "index CRC-32C does not match")
    return offset, index


def prefixes(addresses, v4, width):
    """The sorted, unique first width bytes of the IPv4 (v4 true, from
    the 4-byte address) or the IPv6 addresses."""
    if v4:
        picked = {a[12:12 + width] for a in addresses if fv.is_v4(a)}
    else:
        picked = {a[:width] for a in addresses if not fv.is_v4(a)}
    return sorted(picked)


def prefix_keys(addresses, v4, width):
    """The block's distinct prefixes of one summary level as integers:
    the first width bytes of the IPv4 address (v4 true) or of the IPv6
    address, IPv4-mapped addresses excluded."""
    return [int.from_bytes(b, "big") for b in prefixes(addresses, v4, width)]


def decode_list(raw, count, width):
    """Encoding 1: count big-endian keys of width bytes, ascending."""
    if len(raw) != count * width:
        return None
    return [int.from_bytes(raw[j * width:(j + 1) * width], "big")
            for j in range(count)]


def decode_bitmap(raw, count):
    """Encoding 2 (/16 only): 65,536 bits, key v is bit v % 8 of byte
    v / 8; count must be the number of bits set and above 0."""
    if len(raw) != 8192 or count == 0:
        return None
    keys = [v for v in range(65536) if raw[v // 8] >> (v % 8) & 1]
    return keys if len(keys) == count else None


def decode_delta(raw, count):
    """Encoding 3: LEB128 varints, the first key then each gap minus 1;
    exactly count of them, using every byte."""
    keys = []
    pos = 0
    for _ in range(count):
        value = shift = 0
        while True:
            if pos >= len(raw) or shift > 63:
                return None
            byte = raw[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        keys.append(value if not keys else keys[-1] + value + 1)
    return keys if pos == len(raw) else None


def decode_summary(code, raw, count, width, level):
    """Keys of one summary, [] for an absent one, None when malformed."""
    if code == 0:
        return [] if not raw else None
    if code == 1:
        return decode_list(raw, count, width)
    if code == 2:
        return decode_bitmap(raw, count) if level == 16 else None
    if code == 3:
        return decode_delta(raw, count)
    return None


def verify_index_entry(index, pos, block, path, base):
    """One entry against its block: place, times, no damage flag, the
    exact Bloom filter, exact prefix counts, and every summary kept
    decoding to exactly the block's prefixes; returns the position after
    it."""
    require(pos + INDEX_ENTRY <= len(index), path, base + pos,
            "index entry cut short")
    entry = struct.unpack(">QIIQQIIB4B3s4I4I", index[pos:pos + INDEX_ENTRY])
    want = (block["offset"], block["length"], block["records"],
            block["first"], block["last"], 0)
    require(entry[:6] == want, path, base + pos,
            "index entry differs from the block at %d" % block["offset"])
    bits, k, filt = fv.bloom_filter(block["addresses"])
    require(entry[6:8] == (bits, k) and entry[12] == bytes(3), path,
            base + pos + 36,
            "Bloom m, k or zero bytes differ from m=%d k=%d" % (bits, k))
    codes, counts, lengths = entry[8:12], entry[13:17], entry[17:21]
    pos += INDEX_ENTRY
    require(index[pos:pos + len(filt)] == filt, path, base + pos,
            "Bloom filter differs from the block's addresses")
    pos += len(filt)
    levels = ((True, 3, 24), (True, 2, 16), (False, 6, 48), (False, 4, 32))
    for code, count, length, (v4, width, level) in zip(codes, counts,
                                                       lengths, levels):
        want_keys = prefix_keys(block["addresses"], v4, width)
        require(count == len(want_keys), path, base + pos,
                "/%d count %d, the block has %d" % (level, count,
                                                    len(want_keys)))
        raw = index[pos:pos + length]
        require(len(raw) == length, path, base + pos,
                "/%d summary cut short" % level)
        keys = decode_summary(code, raw, count, width, level)
        require(keys is not None, path, base + pos,
                "/%d summary malformed (encoding %d)" % (level, code))
        require(code == 0 or keys == want_keys, path, base + pos,
                "/%d summary differs from the block's prefixes" % level)
        pos += length
    return pos


def verify_index(index, base, blocks, path):
    """"FLIX", the version, the entry count, one entry per block,
    nothing after."""
    require(index[:4] == INDEX_MAGIC, path, base, "no index magic")
    (version, count) = struct.unpack(">II", index[4:12])
    require(version == INDEX_VERSION, path, base + 4,
            "index version %d, want %d" % (version, INDEX_VERSION))
    require(count == len(blocks), path, base + 8,
            "%d index entries for %d blocks" % (count, len(blocks)))
    pos = 12
    for block in blocks:
        pos = verify_index_entry(index, pos, block, path, base)
    require(pos == len(index), path, base + pos, "bytes after the entries")


def segment_facts(path, data, run):
    """Header checks and what the segment's name and directory say:
    its shard and hour (the header's, matching the name)."""
    require(data[:8] == SEGMENT_MAGIC, path, 0, "no segment magic")
    require(len(data) >= SEGMENT_HEADER, path, 0, "header cut short")
    version, flags, hour = struct.unpack(">IIQ", data[8:24])
    require((version, flags) == (1, 0), path, 8,
            "version %d flags %d, want 1 and 0" % (version, flags))
    name = SEGMENT_NAME.match(os.path.basename(path))
    shard = SHARD_NAME.match(os.path.basename(os.path.dirname(path)))
    require(name is not None and shard is not None, path, 0,
            "not named shard-NN/seg-YYYYMMDDTHH-SSSS.fl0")
    require(int(shard.group(1)) < run.shards, path, 0,
            "shard beyond archive.conf's count")
    stamp = "%s-%s-%sT%s" % name.groups()
    require(hour % HOUR_MS == 0 and hour_name(hour) == stamp, path, 16,
            "header hour is not the hour of the file's name")
    return {"path": path, "shard": int(shard.group(1)), "hour": hour}


def hour_name(hour_ms):
    """YYYY-MM-DDTHH of an hour given in ms since the epoch, UTC."""
    days, rest = divmod(hour_ms // 1000, 86400)
    year, month, day = civil_from_days(days)
    return "%04d-%02d-%02dT%02d" % (year, month, day, rest // 3600)


def civil_from_days(days):
    """(year, month, day) of a day count since 1970-01-01 (proleptic
    Gregorian), without the local time zone."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def verify_segment(path, run):
    """A segment: header, blocks, and for a sealed one footer and
    index."""
    with open(path, "rb") as fh:
        data = fh.read()
    segment = segment_facts(path, data, run)
    sealed = read_footer(data, path)
    end = sealed[0] if sealed else len(data)
    offset = SEGMENT_HEADER
    blocks = []
    while offset < end:
        block = verify_block(data, offset, end, segment, run)
        blocks.append(block)
        offset += block["length"]
    if sealed:
        verify_index(sealed[1], sealed[0], blocks, path)
        run.counts["sealed"] += 1
    else:
        run.counts["open"] += 1


def verify_chains(run):
    """Per sensor: sequences consecutive, each once; `previous` is the
    id of the batch before; a chain starting at 0 starts from zeros."""
    for links in run.chains.values():
        links.sort()
        sequence, previous, _, path, offset = links[0]
        require(sequence != 0 or previous == "0" * 64, path, offset,
                "sequence 0 with a previous id that is not zeros")
        for before, after in zip(links, links[1:]):
            require(after[0] == before[0] + 1, after[3], after[4],
                    "sequence %d follows %d" % (after[0], before[0]))
            require(after[1] == before[2], after[3], after[4],
                    "previous is not the id of batch %d" % before[0])


def segment_paths(archive):
    """Every shard-NN/seg-*.fl0 of the archive, in name order."""
    paths = []
    for shard in sorted(os.listdir(archive)):
        folder = os.path.join(archive, shard)
        if shard.startswith("shard-") and os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                if name.startswith("seg-") and name.endswith(".fl0"):
                    paths.append(os.path.join(folder, name))
    return paths


def summary(archive, run):
    """The line printed when everything holds."""
    counts = run.counts
    chains = ", ".join("%s %d..%d" % (name, links[0][0], links[-1][0])
                       for name, links in sorted(run.chains.items()))
    return ("verify_archive: %s: %d segments (%d sealed, %d open), %d "
            "blocks, %d batches (%d heartbeats), %d records; chains: %s; "
            "all valid" % (archive, counts["sealed"] + counts["open"],
                           counts["sealed"], counts["open"],
                           counts["blocks"], counts["batches"],
                           counts["heartbeats"], counts["records"],
                           chains or "none"))


def check_prerequisites(argv):
    """The arguments and the tools; raises UsageError."""
    if len(argv) != 3:
        raise UsageError("usage: verify_archive.py ARCHIVE_DIR KEY_DIR")
    for folder in argv[1:]:
        if not os.path.isdir(folder):
            raise UsageError("not a directory: " + folder)
    if Ed25519PublicKey is None:
        raise UsageError("needs the python3 module cryptography (Ed25519)")
    if shutil.which("zstd") is None:
        raise UsageError("needs the zstd command")


def main(argv):
    try:
        check_prerequisites(argv)
        failures = fv.check_vectors()
        if failures:
            print("verify_archive: docs/formats.md test vector: "
                  + failures[0])
            return 1
        archive, keydir = argv[1], argv[2]
        run = Run(load_keys(keydir), read_archive_conf(archive))
        for path in segment_paths(archive):
            verify_segment(path, run)
        verify_chains(run)
    except UsageError as err:
        print("verify_archive: %s" % err, file=sys.stderr)
        return 2
    except Invalid as err:
        print("verify_archive: %s offset %d: %s"
              % (err.path, err.offset, err.what))
        return 1
    print(summary(archive, run))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
