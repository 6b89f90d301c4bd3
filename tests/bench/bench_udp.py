#!/usr/bin/env python3
"""End-to-end loss over UDP loopback (issue 2, "Speed").

fl0wer-gen sends the same flows at a fixed rate to fl0wer-sensor and, in
turn, to nfcapd, both given the same receive buffer; the table compares
what each received with what was sent. Python 3 standard library only.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

VERSION_NAMES = {5: "v5", 9: "v9", 10: "IPFIX"}


def parse_rate(text):
    """'500k', '1.5M' or '2000000' as flows per second."""
    m = re.fullmatch(r"([0-9.]+)([kKmM]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError("bad rate: " + text)
    scale = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}[m.group(2)]
    return int(float(m.group(1)) * scale)


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


def drain(port, proc, settle=0.3, timeout=30.0):
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
        time.sleep(0.02)
    return state[1] if state else 0


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_gen(args, version, rate, flows, port, seed):
    cmd = [args.gen, "--version", str(version), "--target",
           "127.0.0.1:%d" % port, "--flows", str(flows), "--rate",
           str(rate), "--seed", str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=flows / max(rate, 1) * 3 + 60)
    if out.returncode != 0:
        raise RuntimeError("fl0wer-gen failed: " + out.stderr.strip())
    m = re.search(r"flows=(\d+) seconds=([0-9.]+) rate=(\d+)", out.stderr)
    if not m:
        raise RuntimeError("no summary from fl0wer-gen: " + out.stderr)
    return int(m.group(1)), float(m.group(3))


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def run_sensor(args, version, rate, flows, seed):
    port = free_udp_port()
    proc = subprocess.Popen(
        [args.sensor, "--listen", "127.0.0.1:%d" % port, "--rcvbuf",
         str(args.rcvbuf), "--log-level", "notice"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_bound(port, proc)
        sent, achieved = run_gen(args, version, rate, flows, port, seed)
        kdrops = drain(port, proc)
        rss = peak_rss_kib(proc.pid)
    finally:
        err = stop(proc)
    m = re.search(r"FL-SENSOR-SUMMARY:.* flows=(\d+)", err)
    if not m:
        raise RuntimeError("no summary from fl0wer-sensor: " + err)
    return dict(sent=sent, got=int(m.group(1)), rate=achieved, rss=rss,
                kdrops=kdrops)


def nfcapd_flows(args, flowdir):
    out = subprocess.run([args.nfdump, "-R", flowdir, "-I"],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"^Flows: (\d+)", out.stdout, re.M)
    if not m:
        raise RuntimeError("no flow count from nfdump -I: " + out.stderr)
    return int(m.group(1))


def run_nfcapd(args, version, rate, flows, seed):
    port = free_udp_port()
    flowdir = tempfile.mkdtemp(prefix="bench-nfcapd-")
    try:
        # -t: one file for the whole run; -B: the same buffer as the sensor
        proc = subprocess.Popen(
            [args.nfcapd, "-w", flowdir, "-b", "127.0.0.1", "-p", str(port),
             "-B", str(args.rcvbuf), "-t", "3600"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_bound(port, proc)
            sent, achieved = run_gen(args, version, rate, flows, port, seed)
            kdrops = drain(port, proc)
            rss = peak_rss_kib(proc.pid)
        finally:
            stop(proc)
        got = nfcapd_flows(args, flowdir)
    finally:
        shutil.rmtree(flowdir, ignore_errors=True)
    return dict(sent=sent, got=got, rate=achieved, rss=rss, kdrops=kdrops)


def loss(r):
    return 1.0 - r["got"] / r["sent"] if r["sent"] else 0.0


def fmt_loss(x):
    return "%.4f%%" % (x * 100)


def verdict(s_loss, n_loss):
    """Issue 2: nothing lost where nfcapd loses nothing, else <= half."""
    if n_loss <= 0:
        return "met" if s_loss <= 0 else "NOT met"
    return "met" if s_loss <= n_loss / 2 else "NOT met"


def print_table(args, rows):
    print()
    print("UDP loopback, %g s worth of flows per cell, median of %d run(s), "
          "receive buffer %d bytes requested for both" %
          (args.seconds, args.runs, args.rcvbuf))
    head = ("version", "rate asked", "gen rate", "sensor loss", "worst",
            "nfcapd loss", "worst", "ratio", "sensor RSS", "nfcapd RSS",
            "target")
    fmt = "%-7s %10s %9s %11s %8s %11s %8s %6s %10s %10s %7s"
    print(fmt % head)
    for r in rows:
        ratio = "-" if r["n_loss"] <= 0 else "%.2f" % (r["s_loss"] /
                                                     r["n_loss"])
        print(fmt % (VERSION_NAMES.get(r["version"], str(r["version"])),
                     "%.2fM" % (r["rate"] / 1e6),
                     "%.2fM" % (r["gen_rate"] / 1e6),
                     fmt_loss(r["s_loss"]), fmt_loss(r["s_worst"]),
                     fmt_loss(r["n_loss"]), fmt_loss(r["n_worst"]), ratio,
                     "%.1f MiB" % (r["s_rss"] / 1024),
                     "%.1f MiB" % (r["n_rss"] / 1024),
                     verdict(r["s_loss"], r["n_loss"])))
    print("loss: median of the runs; worst: the run that lost most. "
          "ratio: sensor loss / nfcapd loss\n(lower is better; '-' when "
          "nfcapd lost nothing). gen rate: fl0wer-gen's achieved rate, "
          "median over all runs\nof the cell. target: issue 2's, on the "
          "medians.")


def run_cell(args, version, rate):
    flows = int(rate * args.seconds)
    sensor, nfcapd = [], []
    for i in range(args.runs):
        # interleaved, so both receivers see the same machine noise
        sensor.append(run_sensor(args, version, rate, flows, i + 1))
        nfcapd.append(run_nfcapd(args, version, rate, flows, i + 1))
        # the load average shows when others shared the machine
        load = os.getloadavg()[0]
        for name, r in (("sensor", sensor[-1]), ("nfcapd", nfcapd[-1])):
            print("run: %s %s rate=%d sent=%d received=%d gen_rate=%.0f "
                  "kernel_drops=%d peak_rss_kib=%d load1=%.2f" %
                  (VERSION_NAMES.get(version), name, rate, r["sent"],
                   r["got"], r["rate"], r["kdrops"], r["rss"], load),
                  flush=True)
    return dict(version=version, rate=rate,
                gen_rate=statistics.median(r["rate"]
                                           for r in sensor + nfcapd),
                s_loss=statistics.median(loss(r) for r in sensor),
                n_loss=statistics.median(loss(r) for r in nfcapd),
                s_worst=max(loss(r) for r in sensor),
                n_worst=max(loss(r) for r in nfcapd),
                s_rss=statistics.median(r["rss"] for r in sensor),
                n_rss=statistics.median(r["rss"] for r in nfcapd))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build",
                   help="meson build directory (default: build)")
    p.add_argument("--sensor", help="fl0wer-sensor (default: in --build)")
    p.add_argument("--gen", help="fl0wer-gen (default: in --build)")
    p.add_argument("--nfcapd", default="nfcapd")
    p.add_argument("--nfdump", default="nfdump")
    p.add_argument("--rates", default="500k,1M,2M,3M",
                   help="flows/s, comma separated (default: 500k,1M,2M,3M)")
    p.add_argument("--versions", default="10",
                   help="NetFlow versions, comma separated (default: 10)")
    p.add_argument("--seconds", type=float, default=1.0,
                   help="flows per cell = rate * seconds (default: 1)")
    p.add_argument("--runs", type=int, default=1,
                   help="runs per cell, median shown (default: 1)")
    p.add_argument("--rcvbuf", type=int, default=4 * 1024 * 1024,
                   help="receive buffer asked of both receivers "
                   "(default: 4 MiB)")
    args = p.parse_args()
    args.sensor = args.sensor or os.path.join(args.build, "sensor",
                                              "fl0wer-sensor")
    args.gen = args.gen or os.path.join(args.build, "tests", "tools",
                                        "fl0wer-gen")
    rates = [parse_rate(r) for r in args.rates.split(",")]
    versions = [int(v) for v in args.versions.split(",")]
    rows = [run_cell(args, v, r) for v in versions for r in rates]
    print_table(args, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
