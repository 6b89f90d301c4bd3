#!/usr/bin/env python3
"""The archive next to nfdump (issue 3, "Speed"): size and lookups.

The same fl0wer-gen invocations (one a hour over --days days, flows placed
in the past with --start) are sent over UDP loopback to
`fl0wer-sensor --archive` and to `nfcapd -w`; then both stores are
measured: bytes per flow on disk, the index's share of the archive, and
lookups (an address in a handful of flows, an address in none, a /24, a
/16), each the median of --runs runs of the whole command, with results
compared flow by flow. Python 3 standard library only.
"""

import argparse
import collections
import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HOUR_MS = 3600000
PLANTED = 5            # flows planted with one address, days apart
PLANT_SEED = 999999    # a seed no bulk invocation uses
PROTO = {"TCP": 6, "UDP": 17, "ICMP": 1, "GRE": 47, "ICMP6": 58,
         "ESP": 50, "AH": 51, "SCTP": 132}
NFCAPD_COMPRESS = {"none": [], "lzo": ["-z"], "lz4": ["-y"], "bz2": ["-j"]}


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_socket_state(port):
    """(rx_queue bytes, drops) of the 127.0.0.1:port socket, or None."""
    want = "0100007F:%04X" % port
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[1] == want:
                return int(cols[4].split(":")[1], 16), int(cols[-1])
    return None


def wait_bound(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("receiver exited early: rc=%d" % proc.returncode)
        if udp_socket_state(port) is not None:
            return
        time.sleep(0.02)
    raise RuntimeError("receiver did not bind port %d" % port)


def drain(port, proc, settle=1.0, timeout=600.0):
    """Waits until the receiver has emptied its socket; returns drops."""
    end = time.monotonic() + timeout
    empty_since = None
    state = udp_socket_state(port)
    while time.monotonic() < end and proc.poll() is None:
        state = udp_socket_state(port)
        if state is None or state[0] > 0:
            empty_since = None
        elif empty_since is None:
            empty_since = time.monotonic()
        elif time.monotonic() - empty_since >= settle:
            break
        time.sleep(0.05)
    return state[1] if state else 0


def stop(proc, timeout=600):
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def gen(args, port, flows, seed, start_ms, truth=None):
    cmd = [args.gen, "--version", "10", "--target", "127.0.0.1:%d" % port,
           "--flows", str(flows), "--rate", str(args.rate), "--seed",
           str(seed), "--start", str(start_ms), "--v6-share",
           str(args.v6_share)]
    if truth:
        cmd += ["--truth", truth]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=flows / max(args.rate, 1) * 3 + 60)
    m = re.search(r"flows=(\d+)", out.stderr)
    if out.returncode != 0 or not m:
        raise RuntimeError("fl0wer-gen failed: " + out.stderr.strip())
    return int(m.group(1))


def plan(args):
    """(flows, seed, start_ms, truth) of every generator invocation."""
    hours = max(1, int(args.days * 24))
    now_hour = int(time.time()) // 3600 * HOUR_MS
    t0 = now_hour - (hours + 2) * HOUR_MS
    each, extra = divmod(args.flows, hours)
    runs = []
    for h in range(hours):
        n = each + (1 if h < extra else 0)
        if n:
            # 20 minutes into the hour: the 5-minute window stays inside
            runs.append((n, args.seed + h, t0 + h * HOUR_MS + 1200000, None))
    for j in range(PLANTED):
        at = t0 + (hours * j // PLANTED) * HOUR_MS + 2400000
        runs.append((1, PLANT_SEED, at, "plant"))
    # in time order, so the planted flows land in separate batches
    return sorted(runs, key=lambda r: r[2])


def ingest(args, tmp, runs):
    """Feeds every invocation to the sensor and to nfcapd, in turn."""
    arch, state, nfdir = (os.path.join(tmp, d) for d in ("archive", "state",
                                                         "nfcapd"))
    os.makedirs(nfdir)
    sport, nport = free_udp_port(), free_udp_port()
    sensor = subprocess.Popen(
        [args.sensor, "--name", "bench", "--listen", "127.0.0.1:%d" % sport,
         "--archive", arch, "--state", state, "--key",
         os.path.join(tmp, "keys", "bench.key"), "--log-level", "notice"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    nfcapd = subprocess.Popen(
        [args.nfcapd, "-w", nfdir, "-b", "127.0.0.1", "-p", str(nport),
         "-B", str(4 << 20), "-t", "3600"] +
        NFCAPD_COMPRESS[args.nfcapd_compress],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sent = 0
    t_start = time.monotonic()
    try:
        wait_bound(sport, sensor)
        wait_bound(nport, nfcapd)
        for i, (n, seed, start, truth) in enumerate(runs):
            tpath = None
            if truth:
                tpath = os.path.join(tmp, "plant%d.ndjson" % i)
            got = gen(args, sport, n, seed, start, tpath)
            if gen(args, nport, n, seed, start) != got:
                raise RuntimeError("the generator sent different counts")
            sent += got
            if i % 100 == 0:
                print("ingest: %d/%d invocations, %d flows sent to each" %
                      (i, len(runs), sent), file=sys.stderr, flush=True)
        sdrops = drain(sport, sensor)
        ndrops = drain(nport, nfcapd)
    finally:
        serr = stop(sensor)
        stop(nfcapd)
    m = re.search(r"flows_archived=(\d+).*queue_waits=(\d+)", serr)
    if not m:
        raise RuntimeError("no summary from fl0wer-sensor: " + serr[-2000:])
    return dict(sent=sent, seconds=time.monotonic() - t_start,
                archived=int(m.group(1)), queue_waits=int(m.group(2)),
                sensor_kdrops=sdrops, nfcapd_kdrops=ndrops,
                archive=arch, nfdir=nfdir)


def fsck_records(args, tmp, arch):
    out = subprocess.run([args.fl0wer, "fsck", "--archive", arch, "--keys",
                          os.path.join(tmp, "keys")],
                         capture_output=True, text=True, timeout=3600)
    m = re.search(r"^records (\d+)", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError("fsck failed: %s %s" % (out.stdout, out.stderr))
    return int(m.group(1)), out.stdout.strip()


def nfdump_count(args, nfdir):
    out = subprocess.run([args.nfdump, "-R", nfdir, "-I"],
                         capture_output=True, text=True, timeout=600)
    m = re.search(r"^Flows: (\d+)", out.stdout, re.M)
    if not m:
        raise RuntimeError("no flow count from nfdump -I: " + out.stderr)
    return int(m.group(1))


def tree_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def index_bytes(arch):
    """Index + footer bytes of sealed segments, and segments by kind."""
    ix, sealed, opened, blocks = 0, 0, 0, 0
    for p in glob.glob(os.path.join(arch, "shard-*", "seg-*.fl0")):
        size = os.path.getsize(p)
        with open(p, "rb") as f:
            f.seek(max(0, size - 32))
            foot = f.read(32)
            if len(foot) == 32 and foot[:8] == b"FL0WEND1":
                off, length = struct.unpack(">QQ", foot[8:24])
                f.seek(off + 4)
                blocks += struct.unpack(">I", f.read(4))[0]
                ix += length + 32
                sealed += 1
            else:
                opened += 1
    return dict(index=ix, sealed=sealed, open=opened, blocks=blocks)


def timed(cmd, runs):
    """Median wall seconds of runs (after one warm-up) and the last run."""
    secs = []
    last = None
    for i in range(runs + 1):
        t = time.monotonic()
        last = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=3600)
        dt = time.monotonic() - t
        if last.returncode != 0:
            raise RuntimeError("%s failed: %s" % (cmd[0], last.stderr))
        if i > 0:
            secs.append(dt)
    return statistics.median(secs), (max(secs) - min(secs)), last


def fl0wer_tuples(text):
    rows = collections.Counter()
    lines = text.splitlines()
    for line in lines[1:]:
        c = line.split(",")
        rows[(c[2], c[3], int(c[4]), int(c[5]), int(c[6]), int(c[9]),
              int(c[10]))] += 1
    return rows


def nfdump_tuples(text):
    rows = collections.Counter()
    for line in text.splitlines():
        c = line.split(",")
        if len(c) < 13:
            continue
        proto = c[7].strip()
        proto = PROTO[proto] if proto in PROTO else int(proto)
        rows[(c[3], c[4], int(c[5]), int(float(c[6])), proto, int(c[11]),
              int(c[12]))] += 1
    return rows


def lookup(args, arch, nfdir, name, flt):
    fcmd = [args.fl0wer, "query", "--archive", arch, "-o", "csv", flt]
    ncmd = [args.nfdump, "-R", nfdir, "-q", "-o", "csv", flt]
    ft, fspread, fout = timed(fcmd, args.runs)
    nt, nspread, nout = timed(ncmd, args.runs)
    m = re.search(r"(\d+) flows matched; (\d+) blocks in the window, (\d+) "
                  r"pruned by the index, (\d+) read", fout.stderr)
    if not m:
        raise RuntimeError("no summary from fl0wer query: " + fout.stderr)
    fr, nr = fl0wer_tuples(fout.stdout), nfdump_tuples(nout.stdout)
    row = dict(name=name, filter=flt, f_s=ft, n_s=nt, f_spread=fspread,
               n_spread=nspread, f_rows=sum(fr.values()),
               n_rows=sum(nr.values()), same=fr == nr,
               blocks=int(m.group(2)), pruned=int(m.group(3)),
               read=int(m.group(4)))
    print("lookup: %s %r fl0wer=%.4fs (%d flows, %d/%d blocks read) "
          "nfdump=%.4fs (%d flows) same=%s" %
          (name, flt, ft, row["f_rows"], row["read"], row["blocks"], nt,
           row["n_rows"], row["same"]), file=sys.stderr, flush=True)
    return row


def quick_count(args, arch, flt):
    out = subprocess.run([args.fl0wer, "query", "--archive", arch, "-o",
                          "csv", "-q", flt], capture_output=True, text=True,
                         timeout=600)
    return max(0, len(out.stdout.splitlines()) - 1)


def pick_absent(args, arch):
    """An address in an occupied IPv4 range that no flow has."""
    for third in range(7, 250, 13):
        addr = "100.64.%d.77" % third
        if quick_count(args, arch, "host " + addr) == 0:
            return addr
    raise RuntimeError("no absent address found")


def print_report(args, info, rows):
    flows = info["archived"]
    a_b, n_b, ix = info["archive_bytes"], info["nfdump_bytes"], info["ix"]
    print()
    print("archive next to nfdump: %d flows over %g days (%d generator "
          "invocations), IPFIX, v6 share %d%%" %
          (flows, args.days, info["invocations"], args.v6_share))
    print("ingest: sent %d to each at %d flows/s; archived %d (fsck: %d "
          "records), nfcapd %d (nfdump -I); kernel drops sensor %d, nfcapd "
          "%d; sensor queue waits %d; %.0f s" %
          (info["sent"], args.rate, info["archived"], info["fsck"],
           info["nfcapd"], info["sensor_kdrops"], info["nfcapd_kdrops"],
           info["queue_waits"], info["seconds"]))
    print()
    print("%-34s %16s %16s %8s" % ("on disk", "fl0wer archive",
                                   "nfdump (%s)" % args.nfcapd_compress,
                                   "ratio"))
    print("%-34s %16d %16d %8.2f" % ("bytes", a_b, n_b, n_b / a_b))
    print("%-34s %16.1f %16.1f %8.2f" % ("bytes per flow", a_b / flows,
                                         n_b / info["nfcapd"],
                                         (n_b / info["nfcapd"]) /
                                         (a_b / flows)))
    print("%-34s %16.1f %16s" % ("  of which index (B/flow)",
                                 ix["index"] / flows, "-"))
    print("%-34s %15.1f%% %16s" % ("  index share of the archive",
                                   100.0 * ix["index"] / a_b, "-"))
    print("%-34s %16s %16s" % ("segments (sealed/open), blocks",
                               "%d/%d, %d" % (ix["sealed"], ix["open"],
                                              ix["blocks"]), "-"))
    print("ratio: nfdump / fl0wer (above 1: the archive is smaller)")
    print()
    print("lookups, whole archive, wall time of the whole command, median of "
          "%d runs after a warm-up, warm page cache" % args.runs)
    fmt = "%-9s %-24s %8s %10s %10s %8s %7s %7s %6s"
    print(fmt % ("lookup", "filter", "flows", "fl0wer s", "nfdump s",
                 "x faster", "target", "blocks", "same"))
    for r in rows:
        speed = r["n_s"] / r["f_s"]
        ok = speed >= r["target"] and r["same"]
        if r["name"] == "absent":
            ok = ok and r["read"] == 0
        print(fmt % (r["name"], r["filter"], r["f_rows"], "%.4f" % r["f_s"],
                     "%.4f" % r["n_s"], "%.1f" % speed,
                     "met" if ok else "NOT met",
                     "%d/%d" % (r["read"], r["blocks"]),
                     "yes" if r["same"] else "NO (%d)" % r["n_rows"]))
    print("blocks: read / in the window (fl0wer); same: identical multisets "
          "of (src, dst, sport, dport, proto, packets, bytes)")
    print("targets: handful >= 100x, absent >= 500x (0 blocks read), /24 and "
          "/16 faster with identical results")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build",
                   help="meson build directory (default: build)")
    p.add_argument("--flows", type=int, default=2000000,
                   help="bulk flows (default: 2000000)")
    p.add_argument("--days", type=float, default=30,
                   help="span, one generator invocation an hour (30)")
    p.add_argument("--rate", type=int, default=250000,
                   help="flows/s each invocation is sent at (250000)")
    p.add_argument("--runs", type=int, default=5,
                   help="timed runs per lookup, median shown (5)")
    p.add_argument("--seed", type=int, default=1000,
                   help="seed of the first invocation; +1 each hour")
    p.add_argument("--v6-share", type=int, default=0,
                   help="percent of IPv6 flows (default 0)")
    p.add_argument("--nfcapd-compress", default="lz4",
                   choices=sorted(NFCAPD_COMPRESS),
                   help="nfcapd's file compression (default lz4: -y)")
    p.add_argument("--tmp", default=None,
                   help="where the archive and nfcapd files go")
    p.add_argument("--keep", action="store_true",
                   help="keep the archive and the nfcapd files")
    p.add_argument("--nfcapd", default="nfcapd")
    p.add_argument("--nfdump", default="nfdump")
    args = p.parse_args()
    args.sensor = os.path.join(args.build, "sensor", "fl0wer-sensor")
    args.gen = os.path.join(args.build, "tests", "tools", "fl0wer-gen")
    args.fl0wer = os.path.join(args.build, "aggregator", "fl0wer")

    tmp = tempfile.mkdtemp(prefix="bench-archive-", dir=args.tmp)
    try:
        subprocess.run([args.fl0wer, "keygen", "bench", "-o",
                        os.path.join(tmp, "keys")], check=True,
                       capture_output=True)
        runs = plan(args)
        info = ingest(args, tmp, runs)
        info["invocations"] = len(runs)
        info["fsck"], _ = fsck_records(args, tmp, info["archive"])
        info["nfcapd"] = nfdump_count(args, info["nfdir"])
        info["archive_bytes"] = tree_bytes(info["archive"])
        info["nfdump_bytes"] = tree_bytes(info["nfdir"])
        info["ix"] = index_bytes(info["archive"])
        if not (info["sent"] == info["archived"] == info["fsck"] ==
                info["nfcapd"]):
            print("WARNING: the receivers did not store every flow sent",
                  file=sys.stderr)
        with open(glob.glob(os.path.join(tmp, "plant*.ndjson"))[0]) as f:
            planted = json.loads(f.readline())["src_addr"]
        net24 = ".".join(planted.split(".")[:3]) + ".0/24"
        net16 = ".".join(planted.split(".")[:2]) + ".0.0/16"
        absent = pick_absent(args, info["archive"])
        rows = []
        for name, flt, target in (("handful", "host " + planted, 100),
                                  ("absent", "host " + absent, 500),
                                  ("/24", "net " + net24, 1),
                                  ("/16", "net " + net16, 1)):
            r = lookup(args, info["archive"], info["nfdir"], name, flt)
            r["target"] = target
            rows.append(r)
        print_report(args, info, rows)
    finally:
        if args.keep:
            print("kept: " + tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
