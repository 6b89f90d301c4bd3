#!/usr/bin/env python3
"""The primitives of docs/formats.md, written from that text alone.

CRC-32C, the canonical record, ChaCha20 salts, the Merkle tree, the
Bloom filter's hashes and sizes, and the FNV-1a shard hash, in plain
Python (stdlib only, no code of the project).  check_vectors() compares
them with every test vector the document gives; run as a program, this
file prints the result of that comparison and exits 1 on a mismatch.
tests/tools/verify_archive.py builds on these functions.
"""

import hashlib
import ipaddress
import math
import struct
import sys

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
V4_MAPPED = bytes(10) + b"\xff\xff"
CANON_MAX = 196


def addr_bytes(text):
    """The 16 bytes of an address as struct fl_addr holds it."""
    addr = ipaddress.ip_address(text)
    if addr.version == 4:
        return V4_MAPPED + addr.packed
    return addr.packed


def is_v4(addr16):
    """True when 16 address bytes are an IPv4-mapped address."""
    return addr16[:12] == V4_MAPPED


def blake2b256(data):
    """BLAKE2b, unkeyed, digest length 32 (not truncated BLAKE2b-512)."""
    return hashlib.blake2b(data, digest_size=32).digest()


def sha256(data):
    """SHA-256."""
    return hashlib.sha256(data).digest()


HASHES = {"blake2b-256": blake2b256, "sha-256": sha256}


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0x82F63B78
            else:
                crc >>= 1
        table.append(crc)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C: reflected polynomial 0x82f63b78, init and xor 0xffffffff."""
    crc = 0xFFFFFFFF
    table = CRC32C_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def _canon_bits(flow):
    """The u32 bitmap of a record, rule by rule as the table gives them."""
    zero = bytes(16)
    rules = [
        is_v4(flow["src_addr"]), is_v4(flow["dst_addr"]),
        is_v4(flow["exporter"]),
        flow["next_hop"] != zero,
        flow["next_hop"] != zero and is_v4(flow["next_hop"]),
        (flow["time_end"] < flow["time_start"]
         or flow["time_end"] - flow["time_start"] > MASK32),
        flow["packets"] > MASK32, flow["bytes"] > MASK32,
    ]
    rules += [flow[name] != 0 for name in (
        "in_if", "out_if", "src_as", "dst_as", "mpls", "domain")]
    rules.append(flow["sampling"] != 1)
    rules += [flow[name] != 0 for name in (
        "vlan", "tcp_flags", "tos", "direction", "fw_event")]
    for name in ("xlate_src_addr", "xlate_dst_addr"):
        rules.append(flow[name] != zero)
        rules.append(flow[name] != zero and is_v4(flow[name]))
    rules += [flow[name] != 0 for name in (
        "xlate_src_port", "xlate_dst_port", "rev_packets", "rev_bytes")]
    rules.append(len(flow["extra"]) != 0)
    return sum(1 << bit for bit, rule in enumerate(rules) if rule)


def _canon_addr(addr16, v4):
    return addr16[12:] if v4 else addr16


# The optional fields after proto: (bit, struct format, field name).
_CANON_OPTIONAL = [
    (8, "I", "in_if"), (9, "I", "out_if"), (10, "I", "src_as"),
    (11, "I", "dst_as"), (12, "I", "mpls"), (13, "I", "domain"),
    (14, "I", "sampling"), (15, "H", "vlan"), (16, "B", "tcp_flags"),
    (17, "B", "tos"), (18, "B", "direction"), (19, "B", "fw_event"),
    (20, "addr 21", "xlate_src_addr"), (22, "addr 23", "xlate_dst_addr"),
    (24, "H", "xlate_src_port"), (25, "H", "xlate_dst_port"),
    (26, "Q", "rev_packets"), (27, "Q", "rev_bytes"),
]


def canon(flow):
    """The canonical record, layout version 2: version, bits, the fields
    every record has, the optional fields whose bit is set, extra.

    flow maps every field name of the record to its value; addresses
    are 16 bytes each, extra is bytes."""
    bits = _canon_bits(flow)

    def has(bit):
        return bits >> bit & 1 == 1

    out = struct.pack(">BIQ", 2, bits, flow["time_start"])
    if has(5):
        out += struct.pack(">Q", flow["time_end"])
    else:
        out += struct.pack(">I", flow["time_end"] - flow["time_start"])
    out += _canon_addr(flow["src_addr"], has(0))
    out += _canon_addr(flow["dst_addr"], has(1))
    out += _canon_addr(flow["exporter"], has(2))
    if has(3):
        out += _canon_addr(flow["next_hop"], has(4))
    out += struct.pack(">Q" if has(6) else ">I", flow["packets"])
    out += struct.pack(">Q" if has(7) else ">I", flow["bytes"])
    out += struct.pack(">HHB", flow["src_port"], flow["dst_port"],
                       flow["proto"])
    for bit, form, name in _CANON_OPTIONAL:
        if not has(bit):
            continue
        if form.startswith("addr"):
            out += _canon_addr(flow[name], has(int(form.split()[1])))
        else:
            out += struct.pack(">" + form, flow[name])
    if has(28):
        out += struct.pack(">I", len(flow["extra"])) + flow["extra"]
    return out


def _rotl32(value, count):
    return ((value << count) | (value >> (32 - count))) & MASK32


def _quarter_round(state, a, b, c, d):
    state[a] = (state[a] + state[b]) & MASK32
    state[d] = _rotl32(state[d] ^ state[a], 16)
    state[c] = (state[c] + state[d]) & MASK32
    state[b] = _rotl32(state[b] ^ state[c], 12)
    state[a] = (state[a] + state[b]) & MASK32
    state[d] = _rotl32(state[d] ^ state[a], 8)
    state[c] = (state[c] + state[d]) & MASK32
    state[b] = _rotl32(state[b] ^ state[c], 7)


def chacha20_block(key, counter, nonce):
    """One 64-byte ChaCha20 keystream block (RFC 8439 section 2.3)."""
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key))
    state.append(counter)
    state += list(struct.unpack("<3I", nonce))
    work = list(state)
    for _ in range(10):
        _quarter_round(work, 0, 4, 8, 12)
        _quarter_round(work, 1, 5, 9, 13)
        _quarter_round(work, 2, 6, 10, 14)
        _quarter_round(work, 3, 7, 11, 15)
        _quarter_round(work, 0, 5, 10, 15)
        _quarter_round(work, 1, 6, 11, 12)
        _quarter_round(work, 2, 7, 8, 13)
        _quarter_round(work, 3, 4, 9, 14)
    words = [(work[i] + state[i]) & MASK32 for i in range(16)]
    return struct.pack("<16I", *words)


def salt(secret, index):
    """salt_i: keystream bytes 16i..16i+15, key = secret, nonce zero."""
    block = chacha20_block(secret, index // 4, bytes(12))
    quarter = 16 * (index % 4)
    return block[quarter:quarter + 16]


def merkle_root_of_leaves(leaf_hashes, hash_fn):
    """RFC 6962 tree head over leaves that are already hashed."""
    if not leaf_hashes:
        return hash_fn(b"")
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    split = 1
    while split * 2 < len(leaf_hashes):
        split *= 2
    left = merkle_root_of_leaves(leaf_hashes[:split], hash_fn)
    right = merkle_root_of_leaves(leaf_hashes[split:], hash_fn)
    return hash_fn(b"\x01" + left + right)


def merkle_root(leaf_data, hash_fn):
    """RFC 6962 tree head over leaf data (each leaf H(0x00 || data))."""
    leaves = [hash_fn(b"\x00" + data) for data in leaf_data]
    return merkle_root_of_leaves(leaves, hash_fn)


def record_leaf(secret, index, flow, hash_fn):
    """The leaf hash of record index: H(0x00 || salt_i || canon)."""
    return hash_fn(b"\x00" + salt(secret, index) + canon(flow))


def _mix(value):
    """MurmurHash3's 64-bit finalizer, modulo 2^64."""
    value ^= value >> 33
    value = (value * 0xFF51AFD7ED558CCD) & MASK64
    value ^= value >> 33
    value = (value * 0xC4CEB9FE1A85EC53) & MASK64
    value ^= value >> 33
    return value


def bloom_hashes(addr16):
    """(h1, h2) of 16 address bytes."""
    high = int.from_bytes(addr16[:8], "big")
    low = int.from_bytes(addr16[8:], "big")
    h1 = _mix(high ^ _mix(low ^ 0x9E3779B97F4A7C15))
    h2 = _mix(low ^ _mix(high ^ 0xD6E8FEB86659FD93))
    return h1, h2


def bloom_bits(count):
    """m for count distinct addresses, a false-positive rate of 1 %."""
    return max(64, math.ceil(-count * math.log(0.01) / math.log(2) ** 2))


def bloom_k(bits, count):
    """k for m bits and count addresses, within 1..16."""
    if count == 0:
        return 1
    return min(16, max(1, round(bits / count * math.log(2))))


def bloom_probes(addr16, bits, k):
    """The k bit numbers an address sets in a filter of m bits."""
    h1, h2 = bloom_hashes(addr16)
    probes = []
    for i in range(k):
        mixed = (h1 + i * h2) & MASK64
        probes.append(((mixed >> 32) * bits) >> 32)
    return probes


def bloom_filter(addresses):
    """(m, k, filter bytes) of a block's distinct 16-byte addresses."""
    bits = bloom_bits(len(addresses))
    k = bloom_k(bits, len(addresses))
    out = bytearray((bits + 7) // 8)
    for addr16 in addresses:
        for bit in bloom_probes(addr16, bits, k):
            out[bit >> 3] |= 1 << (bit & 7)
    return bits, k, bytes(out)


def fnv1a32(data):
    """32-bit FNV-1a: offset basis 2166136261, prime 16777619."""
    value = 2166136261
    for byte in data:
        value = ((value ^ byte) * 16777619) & MASK32
    return value


VECTOR_FLOW = {
    "time_start": 1700000000123, "time_end": 1700000004567,
    "src_addr": addr_bytes("192.0.2.1"),
    "dst_addr": addr_bytes("2001:db8::1"),
    "next_hop": addr_bytes("198.51.100.254"),
    "exporter": addr_bytes("203.0.113.7"),
    "packets": 10, "bytes": 1500, "in_if": 3, "out_if": 7,
    "src_as": 64512, "dst_as": 65001, "mpls": 16, "domain": 256,
    "sampling": 1, "src_port": 51000, "dst_port": 443, "vlan": 100,
    "proto": 6, "tcp_flags": 0x1B, "tos": 0x20, "direction": 1,
    "fw_event": 1, "xlate_src_addr": addr_bytes("198.51.100.10"),
    "xlate_dst_addr": addr_bytes("203.0.113.50"),
    "xlate_src_port": 40000, "xlate_dst_port": 443, "rev_packets": 8,
    "rev_bytes": 6000, "extra": bytes.fromhex("00000000005200" "04deadbeef"),
}

VECTOR_CANON = (
    "021fffbf1d0000018bcfe5687b0000115cc000020120010db800000000000000"
    "0000000001cb007107c63364fe0000000a000005dcc73801bb06000000030000"
    "00070000fc000000fde9000000100000010000641b200101c633640acb007132"
    "9c4001bb000000000000000800000000000017700000000c0000000000520004"
    "deadbeef")

CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31",
             b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
             bytes(range(0x60, 0x70))]

CT_SHA256_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

SALTS = [
    (bytes(range(32)), 0, "39fd2b7dd9c5196a8dbd0377b8dc4a49"),
    (bytes(range(32)), 1, "8a35d86fbcde6accb2cc7d4cd8ea2492"),
    (bytes(range(32)), 5, "f8b1f3f5e1ad5b5cecf8fc122a35755c"),
    (bytes(32), 0, "76b8e0ada0f13d90405d6ae55386bd28"),
]

BLOOM_HASHES = [
    ("192.0.2.1", 0xAF547D1BA5B23157, 0x5F66926CF3B6D50B),
    ("2001:db8::1", 0x8F46BB85516DE784, 0xF778A321C0FD6E5B),
    ("::", 0x6393D51C06C618DC, 0x3FE17FBA800DC67D),
]


def _expect(failures, what, got, want):
    if got != want:
        failures.append("%s: got %s, want %s" % (what, got, want))


def _check_canon_vectors(failures):
    encoded = canon(VECTOR_FLOW)
    _expect(failures, "canonical record length",
            len(encoded), len(VECTOR_CANON) // 2)
    widest = dict(VECTOR_FLOW, src_addr=addr_bytes("2001:db8::1"),
                  dst_addr=addr_bytes("2001:db8::2"),
                  exporter=addr_bytes("2001:db8::3"),
                  next_hop=addr_bytes("2001:db8::4"),
                  xlate_src_addr=addr_bytes("2001:db8::5"),
                  xlate_dst_addr=addr_bytes("2001:db8::6"),
                  packets=1 << 40, bytes=1 << 40, sampling=0)
    widest["time_end"] = widest["time_start"] - 1
    _expect(failures, "longest canonical record before extra",
            len(canon(widest)) - len(widest["extra"]), CANON_MAX)
    _expect(failures, "canonical record", encoded.hex(), VECTOR_CANON)


def _check_salt_vectors(failures):
    for secret, index, want in SALTS:
        _expect(failures, "salt %d of secret %s..." % (index,
                                                      secret[:2].hex()),
                salt(secret, index).hex(), want)


def _check_merkle_vectors(failures):
    for count, want in enumerate(CT_SHA256_ROOTS):
        _expect(failures, "SHA-256 root of %d leaves" % count,
                merkle_root(CT_LEAVES[:count], sha256).hex(), want)
    _expect(failures, "BLAKE2b-256 root of 0 leaves",
            merkle_root([], blake2b256).hex(),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
    _expect(failures, "BLAKE2b-256 root of 8 leaves",
            merkle_root(CT_LEAVES, blake2b256).hex(),
            "59cc7108743d34853ea37ea07558da3407712c7f0fdb76e59753eb243e0c438e")


def _check_record_leaf_vectors(failures):
    secret = bytes(range(32))
    second = dict(VECTOR_FLOW, src_port=51001, extra=b"")
    leaf0 = record_leaf(secret, 0, VECTOR_FLOW, blake2b256)
    leaf1 = record_leaf(secret, 1, second, blake2b256)
    _expect(failures, "record leaf 0", leaf0.hex(),
            "cd347a232ad331e16bf3ccad5b681ff0a4a33493d9c865a98af7836ee53b53f6")
    _expect(failures, "record leaf 1", leaf1.hex(),
            "320c410c236daf6f2e1da91d7cda395ebab39829a2ac305f69dbb965b89ad7dd")
    _expect(failures, "root of the two records",
            merkle_root_of_leaves([leaf0, leaf1], blake2b256).hex(),
            "2c5a83295240c947f34010a1aa580108ac3e2d1dedf2cec84eeb78333f39f4a2")


def _check_bloom_vectors(failures):
    for text, h1, h2 in BLOOM_HASHES:
        _expect(failures, "Bloom hashes of " + text,
                bloom_hashes(addr_bytes(text)), (h1, h2))
    _expect(failures, "probes of 192.0.2.1, m=64, k=7",
            bloom_probes(addr_bytes("192.0.2.1"), 64, 7),
            [43, 3, 27, 51, 11, 35, 58])
    pair = [addr_bytes("192.0.2.1"), addr_bytes("2001:db8::1")]
    bits, k, filt = bloom_filter(pair)
    _expect(failures, "Bloom filter of two addresses",
            (bits, k, filt.hex()), (64, 16, "2c5d97ae0a0c0c06"))
    for count, want_bits in ((100, 959), (1000, 9586)):
        bits = bloom_bits(count)
        _expect(failures, "Bloom m, k for n=%d" % count,
                (bits, bloom_k(bits, count)), (want_bits, 7))


def _check_crc_vectors(failures):
    _expect(failures, "crc32c of 123456789", crc32c(b"123456789"),
            0xE3069283)
    _expect(failures, "crc32c of 32 zero bytes", crc32c(bytes(32)),
            0x8A9136AA)


def check_vectors():
    """Every test vector of docs/formats.md; returns the mismatches."""
    failures = []
    _check_canon_vectors(failures)
    _check_salt_vectors(failures)
    _check_merkle_vectors(failures)
    _check_record_leaf_vectors(failures)
    _check_bloom_vectors(failures)
    _check_crc_vectors(failures)
    return failures


def main():
    failures = check_vectors()
    for failure in failures:
        print("formats_vectors: " + failure)
    if failures:
        return 1
    print("formats_vectors: every test vector of docs/formats.md matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
