#!/usr/bin/env python3
"""End to end: fl0wer-sensor --archive keeps what it decodes, signed.

A key is made with `fl0wer keygen`; fl0wer-sensor listens on a free
loopback port with --archive, fl0wer-gen sends it v9 and IPFIX flows
(--truth), SIGTERM stops it, and then `fl0wer query --archive` must give
back exactly the truth (as multisets, every field equal, sensor = NAME),
host filters must equal a brute-force filter of the truth, and `fl0wer
fsck` must find no damage.  A restart continues the chain (sequence
numbers read from the archive's statements are consecutive), a `kill -9`
mid-stream loses only that run's unstored tail, and damaged or foreign
inputs (chain file, key) stop the sensor with a clear error.

Environment: FL_SENSOR, FL_GEN, FL_CLI.  Prints one line per check, then
"N passed, N failed"; exits 1 on a failure, 77 when it cannot run.
"""

import collections
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procs  # noqa: E402

NAME = "edge-1"
RATE = 50000
RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("ok  " if ok else "FAIL", name,
                       (": " + detail) if detail and not ok else ""))
    sys.stdout.flush()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Env:
    """Paths of one test run: keys, archive and state directories."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.keys = os.path.join(workdir, "keys")
        self.archive = os.path.join(workdir, "archive")
        self.state = os.path.join(workdir, "state")
        self.key = os.path.join(self.keys, NAME + ".key")
        os.mkdir(self.keys)


class Sensor(procs.Daemon):
    """One fl0wer-sensor --archive process on a free loopback port."""

    def __init__(self, env, tag, name=NAME, key=None):
        self.port = free_port()
        self.target = "127.0.0.1:%d" % self.port
        self.err_path = os.path.join(env.workdir, tag + ".err")
        args = [os.environ["FL_SENSOR"], "--listen", self.target,
                "--archive", env.archive, "--state", env.state,
                "--key", key or env.key, "--name", name]
        super().__init__(args, self.err_path)


def gen_args(sensor, truth, version, flows, seed):
    args = [os.environ["FL_GEN"], "--quiet", "--version", str(version),
            "--flows", str(flows), "--rate", str(RATE), "--domains", "3",
            "--seed", str(seed), "--target", sensor.target, "--truth", truth]
    if version != 5:
        args += ["--v6-share", "30"]
    return args


def generate(env, sensor, tag, version, flows, seed):
    truth = os.path.join(env.workdir, tag + ".truth")
    gen = subprocess.run(gen_args(sensor, truth, version, flows, seed),
                         capture_output=True, text=True, timeout=300)
    if gen.returncode != 0:
        print("fl0wer-gen failed: " + gen.stderr.strip())
        return []
    return read_ndjson(truth)


def read_ndjson(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def cli(*args, timeout=300):
    return subprocess.run([os.environ["FL_CLI"]] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def query(env, *filt):
    """The flows `fl0wer query` returns, sensor field checked and removed."""
    res = cli("query", "--archive", env.archive, "-o", "ndjson", *filt)
    if res.returncode != 0:
        return None, "exit %d: %s" % (res.returncode,
                                      res.stderr.strip()[-300:])
    flows = []
    for line in res.stdout.splitlines():
        if not line.strip():
            continue
        flow = json.loads(line)
        if flow.pop("sensor", None) != NAME:
            return None, "a flow without sensor=%s: %s" % (NAME, line)
        flows.append(flow)
    return flows, ""


def key(flow):
    return json.dumps(flow, sort_keys=True)


def diff(got, want):
    """Empty when got equals want as multisets, else a short story."""
    if got is None:
        return "no result"
    g = collections.Counter(map(key, got))
    w = collections.Counter(map(key, want))
    missing, extra = w - g, g - w
    if not missing and not extra:
        return ""
    story = "%d wanted, %d got, %d missing, %d unexpected" % (
        len(want), len(got), sum(missing.values()), sum(extra.values()))
    for k in list(missing)[:2]:
        story += "; missing " + k
    for k in list(extra)[:2]:
        story += "; unexpected " + k
    return story


def statements(archive):
    """(sensor, session, sequence) of every batch stored in the archive's
    files, found by the batch magic; batches are kept as signed, so their
    statements can be read without the archive's code."""
    found = []
    for root, _, files in os.walk(archive):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                data = fh.read()
            pos = data.find(b"FL0WBAT1")
            while pos >= 0:
                found.extend(parse_batch(data, pos))
                pos = data.find(b"FL0WBAT1", pos + 8)
    return found


def parse_batch(data, pos):
    if pos + 16 > len(data):
        return []
    slen, _ = struct.unpack(">II", data[pos + 8:pos + 16])
    text = data[pos + 16:pos + 16 + slen].decode("utf-8", "replace")
    fields = dict(re.findall(r"^(\w+): (\S+)$", text, re.M))
    if "sequence" not in fields or "sensor" not in fields:
        return []
    return [(fields["sensor"], fields.get("session"),
             int(fields["sequence"]))]


def fsck(env, name):
    res = cli("fsck", "--archive", env.archive, "--keys", env.keys)
    check(name + ": fl0wer fsck reports no damage", res.returncode == 0,
          "exit %d: %s" % (res.returncode,
                           (res.stdout + res.stderr).strip()[-400:]))


def check_sequences(env, name, runs):
    """Sequences consecutive from 0, each once, one session per run."""
    st = [s for s in statements(env.archive) if s[0] == NAME]
    if not st:
        print("note %s: no statement readable in the archive files, "
              "sequence check skipped" % name)
        return None
    seqs = sorted(s[2] for s in st)
    check(name + ": sequence numbers are consecutive from 0, none repeated",
          seqs == list(range(len(seqs))),
          "first %s ... last %s, %d batches, %d distinct"
          % (seqs[:5], seqs[-5:], len(seqs), len(set(seqs))))
    sessions = {s[1] for s in st}
    check(name + ": one session per run (%d)" % runs,
          len(sessions) == runs, "%d sessions" % len(sessions))
    return seqs


def run_first(env):
    name = "first run"
    sensor = Sensor(env, "run1")
    if not sensor.wait_listening():
        sensor.stop(0)
        check(name + ": sensor starts listening", False,
              sensor.stderr()[-500:])
        return None
    truth = generate(env, sensor, "run1-v9", 9, 100000, 1)
    truth += generate(env, sensor, "run1-ipfix", 10, 100000, 2)
    status = sensor.stop(1.0)
    check(name + ": sensor exits 0 on SIGTERM", status == 0,
          "exit %s: %s" % (status, sensor.stderr()[-500:]))
    check(name + ": 200000 flows sent", len(truth) == 200000,
          "%d" % len(truth))
    got, why = query(env)
    check(name + ": query returns exactly the flows sent, sensor=" + NAME,
          got is not None and diff(got, truth) == "", why or diff(got, truth))
    run_hosts(env, name, truth)
    fsck(env, name)
    check_sequences(env, name, 1)
    return truth


def run_hosts(env, name, truth):
    # The busiest addresses (most flows), one seen once, and one absent.
    seen = collections.Counter(a for f in truth
                               for a in (f["src_addr"], f["dst_addr"]))
    v4 = [a for a, _ in seen.most_common() if ":" not in a]
    v6 = [a for a, _ in seen.most_common() if ":" in a]
    hosts = v4[:2] + v6[:1] + [v4[-1], "192.0.2.254"]
    for host in hosts:
        want = [f for f in truth if host in (f["src_addr"], f["dst_addr"])]
        got, why = query(env, "host " + host)
        check("%s: 'host %s' equals a brute-force filter (%d flows)"
              % (name, host, len(want)),
              got is not None and diff(got, want) == "",
              why or diff(got, want))


def run_restart(env, before):
    name = "restart"
    seqs_before = statements(env.archive)
    sensor = Sensor(env, "run2")
    if not sensor.wait_listening():
        sensor.stop(0)
        check(name + ": sensor starts again", False, sensor.stderr()[-500:])
        return before
    truth = before + generate(env, sensor, "run2-v9", 9, 20000, 3)
    status = sensor.stop(1.0)
    check(name + ": sensor exits 0", status == 0, "exit %s" % status)
    got, why = query(env)
    check(name + ": query returns both runs' flows exactly",
          got is not None and diff(got, truth) == "", why or diff(got, truth))
    fsck(env, name)
    seqs = check_sequences(env, name, 2)
    if seqs is not None and seqs_before:
        check(name + ": the sequence continued past the first run's",
              len(seqs) > len(seqs_before), "%d then %d batches"
              % (len(seqs_before), len(seqs)))
    return truth


def run_kill(env, before):
    name = "kill -9"
    sensor = Sensor(env, "run3")
    if not sensor.wait_listening():
        sensor.stop(0)
        check(name + ": sensor starts", False, sensor.stderr()[-500:])
        return
    lost_truth = os.path.join(env.workdir, "run3.truth")
    gen = subprocess.Popen(gen_args(sensor, lost_truth, 10, 100000, 4),
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    sensor.kill()
    gen.wait(timeout=120)
    maybe = read_ndjson(lost_truth)
    again = Sensor(env, "run4")
    if not again.wait_listening():
        again.stop(0)
        check(name + ": sensor restarts after the kill", False,
              again.stderr()[-500:])
        return
    truth = before + generate(env, again, "run4-v9", 9, 5000, 5)
    status = again.stop(1.0)
    check(name + ": restarted sensor exits 0", status == 0,
          "exit %s: %s" % (status, again.stderr()[-500:]))
    fsck(env, name)
    got, why = query(env)
    ok = got is not None
    if ok:
        g = collections.Counter(map(key, got))
        missing = collections.Counter(map(key, truth)) - g
        extra = g - collections.Counter(map(key, truth + maybe))
        ok = not missing and not extra
        why = "%d missing, %d unexpected" % (sum(missing.values()),
                                             sum(extra.values()))
    check(name + ": every stored run intact, the killed run's flows a "
          "subset of what it was sent", ok, why)
    # The chain state is saved before each append, so a kill can leave a
    # gap in the sequence but never use one number twice.
    st = [s[2] for s in statements(env.archive) if s[0] == NAME]
    check(name + ": no sequence number used twice after the kill",
          len(st) == len(set(st)), "%d batches" % len(st))


def run_refusals(env):
    chain = os.path.join(env.state, "chain.state")
    with open(chain, "rb") as fh:
        good = fh.read()
    with open(chain, "wb") as fh:
        fh.write(good.replace(b"next_sequence ", b"next_sequence 9"))
    sensor = Sensor(env, "damaged")
    status = sensor.wait_exit(timeout=15)
    err = sensor.stderr()
    check("a damaged chain file stops the sensor (exit 1), naming the file",
          status == 1 and "chain.state" in err and "damaged" in err,
          "exit %s: %s" % (status, err[-300:]))
    with open(chain, "wb") as fh:
        fh.write(good)
    other = cli("keygen", "edge-2", "-o", env.keys)
    if other.returncode != 0:
        check("fl0wer keygen makes a second key", False, other.stderr)
        return
    sensor = Sensor(env, "wrongkey",
                    key=os.path.join(env.keys, "edge-2.key"))
    status = sensor.wait_exit(timeout=15)
    check("a key of another sensor is a usage error (exit 2)",
          status == 2 and "edge-2" in sensor.stderr(),
          "exit %s: %s" % (status, sensor.stderr()[-300:]))


def main():
    for var in ("FL_SENSOR", "FL_GEN", "FL_CLI"):
        path = os.environ.get(var)
        if not path or not os.access(path, os.X_OK):
            print("skipped: %s is not an executable" % var)
            return 77
    with tempfile.TemporaryDirectory() as workdir:
        env = Env(workdir)
        made = cli("keygen", NAME, "-o", env.keys)
        if made.returncode != 0 or not os.path.exists(env.key):
            print("skipped: fl0wer keygen does not work: " +
                  made.stderr.strip())
            return 77
        truth = run_first(env)
        if truth is not None:
            truth = run_restart(env, truth)
            run_kill(env, truth)
            run_refusals(env)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
