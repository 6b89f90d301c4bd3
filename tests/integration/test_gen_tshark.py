#!/usr/bin/env python3
"""Checks fl0wer-gen against an independent decoder: tshark.

fl0wer-gen writes NetFlow v5, v9 and IPFIX captures with --write and the
flows it encoded with --truth.  tshark must decode every datagram without
expert warnings, every flow it decodes must equal the truth line at the
same position, and the header sequence numbers must count what the RFCs
say (v5: flows, v9: export packets, IPFIX: data records).

Environment: FL_GEN (the generator).  Exit 77 (skipped) without tshark.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal

START_MS = 1700000000000
FLOWS = 3000
RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("ok  " if ok else "FAIL", name,
                       (": " + detail) if detail and not ok else ""))


def pairs_hook(pairs):
    # tshark repeats keys (one "Flow 1" per set); keep them all, in order.
    return pairs


def leaves(pairs, out):
    """Flattens a flow's (key, value) tree into cflow.* -> first value."""
    for key, value in pairs:
        if isinstance(value, list):
            leaves(value, out)
        elif key not in out:
            out[key] = value
    return out


def lookup(pairs, key):
    for k, v in pairs:
        if k == key:
            return v
    return None


def ms_of(seconds_text):
    return int(Decimal(seconds_text) * 1000)


def rfc3339(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def abs_ms(text):
    """'Nov 14, 2023 22:17:16.191000000 UTC' -> ms since the epoch."""
    stamp, frac = text.replace(" UTC", "").split(".")
    t = datetime.datetime.strptime(stamp, "%b %d, %Y %H:%M:%S")
    t = t.replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1000 + int(frac[:3])


def flow_times(version, header, f):
    if version == 10:
        return abs_ms(f["cflow.abstimestart"]), abs_ms(f["cflow.abstimeend"])
    export_ms = int(lookup(lookup(header, "cflow.timestamp_tree"),
                           "cflow.unix_secs")) * 1000
    if version == 5:
        nsecs = lookup(lookup(header, "cflow.timestamp_tree"),
                       "cflow.unix_nsecs")
        export_ms += int(nsecs) // 1000000
    boot = export_ms - ms_of(lookup(header, "cflow.sysuptime"))
    return (boot + ms_of(f["cflow.timestart"]),
            boot + ms_of(f["cflow.timeend"]))


def header_domain(version, header):
    if version == 5:
        return (int(lookup(header, "cflow.engine_type")) << 8 |
                int(lookup(header, "cflow.engine_id")))
    return int(lookup(header, "cflow.source_id" if version == 9
                      else "cflow.od_id"))


def as_record(version, header, exporter, f):
    start, end = flow_times(version, header, f)
    rec = {
        "time_start": rfc3339(start), "time_end": rfc3339(end),
        "src_addr": f.get("cflow.srcaddr", f.get("cflow.srcaddrv6")),
        "dst_addr": f.get("cflow.dstaddr", f.get("cflow.dstaddrv6")),
        "src_port": int(f["cflow.srcport"]),
        "dst_port": int(f["cflow.dstport"]),
        "proto": int(f["cflow.protocol"]),
        "tcp_flags": int(f["cflow.tcpflags"], 16),
        "tos": int(f["cflow.tos"], 16),
        "packets": int(f["cflow.packets"]), "bytes": int(f["cflow.octets"]),
        "in_if": int(f["cflow.inputint"]), "out_if": int(f["cflow.outputint"]),
        "src_as": int(f["cflow.srcas"]), "dst_as": int(f["cflow.dstas"]),
        "vlan": int(f.get("cflow.vlanid", 0)), "mpls": 0,
        "direction": int(f.get("cflow.direction", 0)),
        "exporter": exporter, "domain": header_domain(version, header),
        "sampling": 1,
        "next_hop": f.get("cflow.nexthop", f.get("cflow.nexthopv6")),
    }
    if version == 5:
        # A v5 record's prefix lengths have no field: kept as extra elements.
        rec["extra"] = [
            {"pen": 0, "id": 9, "hex": "%02x" % int(f["cflow.srcmask"])},
            {"pen": 0, "id": 13, "hex": "%02x" % int(f["cflow.dstmask"])}]
    return rec


def packet_flows(cflow):
    """The flows of one datagram, in wire order, as flat dicts."""
    for key, value in cflow:
        if key.startswith("pdu "):
            yield leaves(value, {})
        elif key.startswith("FlowSet ") or key.startswith("Set "):
            for k, v in value:
                if k.startswith("Flow "):
                    yield leaves(v, {})


def decode(gen, version, workdir):
    pcap = os.path.join(workdir, "v%d.pcap" % version)
    truth = os.path.join(workdir, "v%d.ndjson" % version)
    args = [gen, "--quiet", "--version", str(version), "--flows", str(FLOWS),
            "--domains", "3", "--start", str(START_MS), "--write", pcap,
            "--truth", truth, "--seed", "7", "--template-every", "10"]
    if version != 5:
        args += ["--v6-share", "30"]
    subprocess.run(args, check=True)
    out = subprocess.run(
        ["tshark", "-r", pcap, "-d", "udp.port==2055,cflow",
         "-d", "udp.port==4739,cflow", "-T", "json"],
        check=True, capture_output=True, text=True).stdout
    with open(truth) as fh:
        lines = [json.loads(line) for line in fh]
    return json.loads(out, object_pairs_hook=pairs_hook), lines


def check_version(gen, version, workdir):
    packets, truth = decode(gen, version, workdir)
    decoded = []
    seq_errors = []
    expected_seq = {}
    text = json.dumps(packets)
    check("v%d: tshark reports no expert warning or malformed packet"
          % version, "_ws.expert" not in text and "_ws.malformed" not in text)
    for pkt in packets:
        layers = lookup(pkt, "_source")
        layers = lookup(layers, "layers")
        exporter = lookup(lookup(layers, "ip"), "ip.src")
        cflow = lookup(layers, "cflow")
        flows = [as_record(version, cflow, exporter, f)
                 for f in packet_flows(cflow)]
        key = (exporter, header_domain(version, cflow))
        seq = int(lookup(cflow, "cflow.sequence"))
        if seq != expected_seq.get(key, 0) and len(seq_errors) < 3:
            seq_errors.append("%s seq %d, expected %d"
                              % (key, seq, expected_seq.get(key, 0)))
        units = 1 if version == 9 else len(flows)
        expected_seq[key] = expected_seq.get(key, 0) + units
        decoded += flows
    check("v%d: tshark decodes as many flows as the truth holds (%d)"
          % (version, len(truth)), len(decoded) == len(truth),
          "%d decoded" % len(decoded))
    diffs = []
    for i, (got, want) in enumerate(zip(decoded, truth)):
        want = dict(want)
        want.setdefault("next_hop", None)
        for k in want:
            if got.get(k) != want[k] and len(diffs) < 5:
                diffs.append("flow %d %s: tshark %r, truth %r"
                             % (i, k, got.get(k), want[k]))
    check("v%d: every field of every flow equals the truth" % version,
          not diffs, "; ".join(diffs))
    check("v%d: sequence numbers count as the RFC says" % version,
          not seq_errors, "; ".join(seq_errors))
    v6 = sum(1 for t in truth if ":" in t["src_addr"])
    domains = {t["domain"] for t in truth}
    check("v%d: flows cover the requested domains and families" % version,
          domains == {1, 2, 3} and (v6 > 0) == (version != 5),
          "domains %s, %d IPv6" % (sorted(domains), v6))


def main():
    gen = os.environ.get("FL_GEN")
    if shutil.which("tshark") is None or not gen:
        print("skipped: needs tshark and FL_GEN")
        return 77
    with tempfile.TemporaryDirectory() as workdir:
        for version in (5, 9, 10):
            check_version(gen, version, workdir)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
