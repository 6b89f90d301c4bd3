#!/usr/bin/env python3
"""Independent check of the Merkle and salt test vectors used by
tests/unit/common/test_common_merkle.c: RFC 6962 tree heads over the
Certificate Transparency test leaves, with Python's hashlib, written
from the RFC's recursive definition rather than from our C code."""
import hashlib
import sys

LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31",
          b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
          bytes(range(0x60, 0x70))]


def mth(data, h):
    if not data:
        return h(b"").digest()
    if len(data) == 1:
        return h(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return h(b"\x01" + mth(data[:k], h) + mth(data[k:], h)).digest()


def blake2b256(b=b""):
    return hashlib.blake2b(b, digest_size=32)


def salt(secret, i):
    """salt_i: bytes 16i..16i+15 of the ChaCha20 (RFC 8439) keystream,
    key = secret, nonce zero; needs the "cryptography" module."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
    nonce = (i // 4).to_bytes(4, "little") + bytes(12)
    enc = Cipher(algorithms.ChaCha20(secret, nonce), mode=None).encryptor()
    block = enc.update(bytes(64))
    return block[16 * (i % 4):16 * (i % 4) + 16]


def main():
    print("sha-256 empty", mth([], hashlib.sha256).hex())
    for n in range(1, 9):
        print("sha-256", n, mth(LEAVES[:n], hashlib.sha256).hex())
    print("blake2b-256 empty", mth([], blake2b256).hex())
    for n in range(1, 9):
        print("blake2b-256", n, mth(LEAVES[:n], blake2b256).hex())
    try:
        for i in (0, 1, 2, 5):
            print("salt", i, salt(bytes(range(32)), i).hex())
    except ImportError:
        print("salt: python3-cryptography not installed, skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
