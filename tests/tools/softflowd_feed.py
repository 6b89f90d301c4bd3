#!/usr/bin/env python3
"""Makes synthetic traffic (the softflowd golden test's) and has softflowd
export it to a live collector: the demonstration's second exporter.

usage: softflowd_feed.py HOST:PORT VERSION WORKDIR
"""
import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', 'integration'))
import test_golden_softflowd as sf  # noqa: E402


def main():
    target, version, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    traffic = os.path.join(work, 'traffic.pcap')
    truth = sf.make_traffic(traffic, version != 5)
    packets = len(sf.golden.pcap_read(traffic))
    ctl = os.path.join(work, 'softflowd.ctl')
    cmd = ['softflowd', '-r', traffic, '-n', target, '-v', str(version),
           '-d', '-T', 'full', '-c', ctl,
           '-p', os.path.join(work, 'softflowd.pid')]
    if version != 5:
        cmd.append('-6')
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # softflowd reading a file waits on its control socket: see the test.
    deadline = time.time() + 30
    try:
        while sf.processed(sf.control(ctl, b'statistics\n', proc)) < packets:
            if time.time() > deadline:
                break
        sf.control(ctl, b'shutdown\n', proc)
    except OSError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    print('softflowd exported %d flows of synthetic traffic' % len(truth))


if __name__ == '__main__':
    main()
