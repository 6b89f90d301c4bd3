#!/usr/bin/env python3
"""docs/formats.md is enough to verify an archive with one's own code.

tests/tools/verify_archive.py was written from the document alone.  This
test has fl0wer-sensor archive real captures of tests/data (NetFlow v5,
v9, IPFIX, IPv6 among them; their hours are over, so their segments are
sealed) and a live run fed by fl0wer-gen (v9 and IPFIX, IPv4 and IPv6
flows, over IPv4 and IPv6 loopback; its segment of the current hour
stays open; idle at the end, the sensor adds a heartbeat), then runs
the verifier, which must accept the archive, count every flow and see
one chain over every batch.  Copies of the archive with one byte
flipped (a block body, an index, a statement, a signature; with and
without the CRC-32C put right so the deeper check must catch it) must
make it exit 1 naming the file.

Environment: FL_SENSOR, FL_GEN, FL_CLI, FL_SOURCE_ROOT.  Prints one line
per check, then "N passed, N failed"; exits 1 on a failure, 77 when it
cannot run (no python3 `cryptography` module or no `zstd` command).
"""

import importlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procs  # noqa: E402

NAME = "edge-1"
RESULTS = {"passed": 0, "failed": 0}
CAPTURES = [
    "generic/netflow5.pcap",
    "generic/netflow9_valid01.pcap",
    "generic/ipfix_basic.pcap",
    "cisco/cisco_asa_1.pcap",
    "cisco/cisco_asr9k_260.pcap",
    "mikrotik/mikrotik_ipfix.pcap",
    "vmware/vmware_vds.pcap",
    "citrix/netscaler.pcap",
    "yaf/yaf.pcap",
]
# (NetFlow version, flows, target address) of the live run.
LIVE = [(9, 2000, "127.0.0.1"), (10, 2000, "127.0.0.1"),
        (10, 1000, "[::1]")]
HOUR_MS = 3600000


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("ok  " if ok else "FAIL", name,
                       (": " + detail) if detail and not ok else ""))
    sys.stdout.flush()


def free_port():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::", 0))
        return s.getsockname()[1]


def tools_dir():
    return os.path.join(os.environ["FL_SOURCE_ROOT"], "tests", "tools")


def missing_prerequisite():
    """Why the test cannot run here, or None."""
    for var in ("FL_SENSOR", "FL_GEN", "FL_CLI"):
        path = os.environ.get(var)
        if not path or not os.access(path, os.X_OK):
            return "%s is not an executable" % var
    root = os.environ.get("FL_SOURCE_ROOT")
    if not root or not os.path.isdir(os.path.join(root, "tests", "data")):
        return "FL_SOURCE_ROOT does not name the source tree"
    try:
        importlib.import_module(
            "cryptography.hazmat.primitives.asymmetric.ed25519")
    except ImportError:
        return ("the python3 module cryptography is not installed for %s "
                "(Debian: python3-cryptography)" % sys.executable)
    if shutil.which("zstd") is None:
        return "the zstd command is not installed (Debian: zstd)"
    return None


class Sensor(procs.Daemon):
    """One fl0wer-sensor --archive process on a free port, IPv4 and
    IPv6."""

    def __init__(self, env):
        self.port = free_port()
        self.err_path = os.path.join(env["work"], "live.err")
        args = [os.environ["FL_SENSOR"], "--listen", str(self.port),
                "--archive", env["archive"], "--state", env["state"],
                "--key", env["key"], "--name", NAME]
        super().__init__(args, self.err_path)


def archive_captures(env):
    """Each capture through --read --archive; returns the flows sent."""
    total = 0
    data = os.path.join(os.environ["FL_SOURCE_ROOT"], "tests", "data")
    for capture in CAPTURES:
        path = os.path.join(data, capture)
        printed = subprocess.run(
            [os.environ["FL_SENSOR"], "--read", path, "--print", "ndjson",
             "--name", NAME], capture_output=True, text=True, timeout=60)
        flows = len(printed.stdout.splitlines())
        res = subprocess.run(
            [os.environ["FL_SENSOR"], "--read", path, "--archive",
             env["archive"], "--state", env["state"], "--key", env["key"],
             "--name", NAME], capture_output=True, text=True, timeout=60)
        check("archiving %s (%d flows) exits 0" % (capture, flows),
              res.returncode == 0 and flows > 0,
              "exit %d: %s" % (res.returncode, res.stderr.strip()[-300:]))
        total += flows
    return total


def live_run(env):
    """fl0wer-gen into a listening sensor; returns the flows sent."""
    sensor = Sensor(env)
    if not sensor.wait_listening():
        sensor.stop(0)
        check("live sensor starts listening", False, sensor.stderr()[-400:])
        return 0
    now = int(time.time() * 1000)
    # Flows of the current hour only, so their segment stays open.
    start = max(now - now % HOUR_MS, now - 300000)
    sent = 0
    for seed, (version, flows, host) in enumerate(LIVE, start=1):
        res = subprocess.run(
            [os.environ["FL_GEN"], "--quiet", "--version", str(version),
             "--flows", str(flows), "--rate", "50000", "--seed", str(seed),
             "--v6-share", "30", "--start", str(start), "--target",
             "%s:%d" % (host, sensor.port)],
            capture_output=True, text=True, timeout=120)
        check("fl0wer-gen sends %d v%d flows to %s" % (flows, version, host),
              res.returncode == 0, res.stderr.strip()[-300:])
        sent += flows if res.returncode == 0 else 0
    # Idle for over 10 s, the sensor writes a heartbeat (no records).
    status = sensor.stop(settle=12.0)
    check("live sensor exits 0 on SIGTERM", status == 0,
          "exit %s: %s" % (status, sensor.stderr()[-400:]))
    return sent


def segments(archive):
    """Paths of the archive's segments, and which are sealed."""
    found = {}
    for root, _, files in os.walk(archive):
        for name in files:
            if name.endswith(".fl0"):
                path = os.path.join(root, name)
                with open(path, "rb") as fh:
                    data = fh.read()
                found[path] = data[-32:-24] == b"FL0WEND1"
    return found


def check_segment_kinds(env, hour_before):
    found = segments(env["archive"])
    sealed = sum(1 for s in found.values() if s)
    check("the old captures gave sealed segments (%d)" % sealed,
          sealed > 0, "%d segments, none sealed" % len(found))
    opened = len(found) - sealed
    env["kinds"] = "(%d sealed, %d open)" % (sealed, opened)
    hour_now = int(time.time() * 1000) // HOUR_MS
    if opened == 0 and hour_now != hour_before:
        print("note: the hour ended during the live run, so its segment "
              "was sealed; open segments not covered this time")
        return
    check("the live run left an open segment (%d)" % opened, opened > 0,
          "%d segments, all sealed" % len(found))


def verify(archive, keys):
    res = subprocess.run(
        [sys.executable, os.path.join(tools_dir(), "verify_archive.py"),
         archive, keys], capture_output=True, text=True, timeout=300)
    return res.returncode, (res.stdout + res.stderr).strip()


def check_intact(env, flows):
    status, out = verify(env["archive"], env["keys"])
    check("the verifier accepts the archive (exit 0)", status == 0,
          "exit %d: %s" % (status, out[-400:]))
    counted = re.search(r"(\d+) records", out)
    check("the verifier counted every flow archived (%d)" % flows,
          counted is not None and int(counted.group(1)) == flows, out)
    check("the verifier read every segment " + env["kinds"],
          env["kinds"] in out, out)
    heartbeats = re.search(r"\((\d+) heartbeats\)", out)
    check("the verifier checked a heartbeat (a batch without records)",
          heartbeats is not None and int(heartbeats.group(1)) > 0, out)
    batches = re.search(r"(\d+) batches", out)
    chain = re.search(NAME + r" 0\.\.(\d+);", out)
    check("the chain of %s runs from 0 over every batch" % NAME,
          batches is not None and chain is not None
          and int(chain.group(1)) + 1 == int(batches.group(1)), out)


def crc32c(data):
    sys.path.insert(0, tools_dir())
    import formats_vectors
    return formats_vectors.crc32c(data)


def first_block(data):
    """Offsets in a segment's first block: its start, its first batch's
    statement, signature and payload, and the statement length."""
    slen, plen = struct.unpack(">II", data[24 + 56:24 + 64])
    statement = 24 + 64
    return {"block": 24, "statement": statement, "slen": slen,
            "signature": statement + slen, "payload": statement + slen + 64,
            "plen": plen}


def fix_block_crc(data, block):
    (length,) = struct.unpack(">I", data[block + 4:block + 8])
    body = bytes(data[block + 40:block + 40 + length])
    crc = crc32c(bytes(data[block:block + 36]) + body)
    data[block + 36:block + 40] = struct.pack(">I", crc)


def fix_index_crcs(data):
    at = len(data) - 32
    offset, length = struct.unpack(">QQ", data[at + 8:at + 24])
    crc = crc32c(bytes(data[offset:offset + length]))
    data[at + 24:at + 28] = struct.pack(">I", crc)
    crc = crc32c(bytes(data[at:at + 28]))
    data[at + 28:at + 32] = struct.pack(">I", crc)


def flip_payload(data):
    where = first_block(data)
    data[where["payload"] + where["plen"] // 2] ^= 0x01


def flip_statement(data):
    where = first_block(data)
    data[where["statement"] + where["slen"] // 2] ^= 0x01


def flip_signature(data):
    data[first_block(data)["signature"] + 10] ^= 0x80


def flip_index_entry(data):
    # The records field of the index's first entry.
    (offset,) = struct.unpack(">Q", data[len(data) - 24:len(data) - 16])
    data[offset + 8 + 12 + 3] ^= 0x01


def tamper(env, tag, path, flip, fix, expect):
    """Flips a byte of one segment of a copy of the archive (fix: put the
    CRC-32C right again) and checks the verifier exits 1 naming the file
    and the failure."""
    copy = os.path.join(env["work"], "tamper-" + tag)
    shutil.copytree(env["archive"], copy)
    target = os.path.join(copy, os.path.relpath(path, env["archive"]))
    with open(target, "rb") as fh:
        data = bytearray(fh.read())
    flip(data)
    if fix == "block":
        fix_block_crc(data, 24)
    elif fix == "index":
        fix_index_crcs(data)
    with open(target, "wb") as fh:
        fh.write(data)
    status, out = verify(copy, env["keys"])
    named = target in out and re.search(r"offset \d+", out) is not None
    check("a flipped byte (%s) makes the verifier exit 1: %s"
          % (tag, expect), status == 1 and named and expect in out,
          "exit %d: %s" % (status, out[-300:]))
    shutil.rmtree(copy)


def check_tampering(env):
    found = segments(env["archive"])
    sealed = [p for p, s in sorted(found.items()) if s]
    opened = [p for p, s in sorted(found.items()) if not s]
    if not sealed:
        check("a sealed segment to damage", False)
        return
    live = opened[0] if opened else sealed[-1]
    tamper(env, "block body", sealed[0], flip_payload, None,
           "block CRC-32C")
    tamper(env, "payload, CRC fixed", live, flip_payload, "block",
           "payload_hash")
    tamper(env, "index", sealed[0], flip_index_entry, None,
           "index CRC-32C")
    tamper(env, "index, CRCs fixed", sealed[0], flip_index_entry, "index",
           "index entry differs")
    tamper(env, "statement, CRC fixed", live, flip_statement, "block",
           "signature does not verify")
    tamper(env, "signature, CRC fixed", live, flip_signature, "block",
           "signature does not verify")
    tamper(env, "signature", sealed[-1], flip_signature, None,
           "block CRC-32C")


def check_vectors():
    res = subprocess.run(
        [sys.executable, os.path.join(tools_dir(), "formats_vectors.py")],
        capture_output=True, text=True, timeout=60)
    check("formats_vectors.py reproduces the test vectors of "
          "docs/formats.md", res.returncode == 0,
          (res.stdout + res.stderr).strip()[-400:])


def main():
    why = missing_prerequisite()
    if why:
        print("skipped: " + why)
        return 77
    check_vectors()
    with tempfile.TemporaryDirectory() as work:
        env = {"work": work, "keys": os.path.join(work, "keys"),
               "archive": os.path.join(work, "archive"),
               "state": os.path.join(work, "state")}
        env["key"] = os.path.join(env["keys"], NAME + ".key")
        made = subprocess.run([os.environ["FL_CLI"], "keygen", NAME, "-o",
                               env["keys"]], capture_output=True, text=True)
        if made.returncode != 0:
            print("skipped: fl0wer keygen does not work: "
                  + made.stderr.strip())
            return 77
        hour_before = int(time.time() * 1000) // HOUR_MS
        flows = archive_captures(env)
        flows += live_run(env)
        check_segment_kinds(env, hour_before)
        check_intact(env, flows)
        check_tampering(env)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
