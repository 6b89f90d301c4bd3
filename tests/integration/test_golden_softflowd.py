"""
Golden test on live exports: synthetic traffic of known flows is turned
into NetFlow v5, v9 and IPFIX by softflowd, captured off a loopback
socket, and decoded by fl0wer-sensor and tshark.  The sensor must agree
with tshark field by field and with the traffic itself on every flow's
addresses, ports, packets and bytes.
"""

import ipaddress
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402

BASE_TIME = 1700000000.0  # 2023-11-14T22:13:20Z
TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MAC_A = b'\x02\x00\x00\x00\x00\xaa'
MAC_B = b'\x02\x00\x00\x00\x00\xbb'
COLLECTOR_PORT = {5: 2055, 9: 2055, 10: 4739}


# ---- synthetic traffic ---------------------------------------------------


class Truth:
    """What one direction of a conversation really carried."""

    def __init__(self, key):
        self.key = key  # (src, dst, sport, dport, proto), as the sensor
        self.packets = 0
        self.bytes = 0
        self.flags = 0
        self.first = None
        self.last = None
        self.span = None  # (first, last) of the whole conversation

    def add(self, ts, length, flags):
        self.packets += 1
        self.bytes += length
        self.flags |= flags
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)


def _l4(proto, sport, dport, flags, body):
    if proto == TCP:
        return struct.pack('>HHIIBBHHH', sport, dport, 1, 0, 5 << 4, flags,
                           8192, 0, 0) + body
    if proto == UDP:
        return struct.pack('>HHHH', sport, dport, 8 + len(body), 0) + body
    # ICMP / ICMPv6 echo: type and code ride in sport/dport here.
    return struct.pack('>BBHHH', sport, dport, 0, 1, 1) + body


def _packet(src, dst, proto, sport, dport, flags, size):
    """Ethernet frame and the IP length softflowd counts."""
    body = bytes(size)
    l4 = _l4(proto, sport, dport, flags, body)
    if ipaddress.ip_address(src).version == 4:
        ip = bytearray(struct.pack(
            '>BBHHHBBH4s4s', 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0,
            ipaddress.IPv4Address(src).packed,
            ipaddress.IPv4Address(dst).packed))
        ip[10:12] = struct.pack('>H', golden.ip_checksum(ip))
        return MAC_B + MAC_A + b'\x08\x00' + bytes(ip) + l4, 20 + len(l4)
    ip = struct.pack('>IHBB16s16s', 6 << 28, len(l4), proto, 64,
                     ipaddress.IPv6Address(src).packed,
                     ipaddress.IPv6Address(dst).packed)
    return MAC_B + MAC_A + b'\x86\xdd' + ip + l4, 40 + len(l4)


def _conversation(rng, frames, truth, spec):
    """One exchange: client packets, server answers, spread in time."""
    client, server, proto, cport, sport, n = spec
    t = BASE_TIME + rng.uniform(0, 50)
    keys = []
    for i in range(n):
        for fwd in (True, False):
            if proto == UDP and not fwd and i % 2:
                continue  # some UDP requests go unanswered
            src, dst = (client, server) if fwd else (server, client)
            a, b = (cport, sport) if fwd else (sport, cport)
            flags = 0
            if proto == TCP:
                flags = ACK | PSH
                if i == 0:
                    flags = SYN if fwd else SYN | ACK
                elif i == n - 1:
                    flags = FIN | ACK
            elif proto in (ICMP, ICMP6):
                a, b = ((8, 0) if fwd else (0, 0)) if proto == ICMP else \
                    ((128, 0) if fwd else (129, 0))
            size = rng.randrange(0, 1200)
            frame, length = _packet(src, dst, proto, a, b, flags, size)
            t += rng.uniform(0.001, 0.2)
            frames.append((t, frame))
            if proto in (ICMP, ICMP6):
                key = (src, dst, 0, a * 256 + b, proto)
            else:
                key = (src, dst, a, b, proto)
            truth.setdefault(key, Truth(key)).add(t, length, flags)
            keys.append(key)
    # softflowd keeps one start and end time for both directions of a
    # TCP or UDP flow; ICMP requests and replies are flows of their own.
    for key in keys:
        one = truth[key]
        one.span = ((one.first, one.last) if proto in (ICMP, ICMP6) else
                    (truth[keys[0]].first, t))


def make_traffic(path, with_v6):
    """Writes the capture; returns {key: Truth} per direction."""
    rng = random.Random(20240601)
    frames = []
    truth = {}
    specs = []
    for i in range(120):
        specs.append(('10.1.%d.%d' % (i // 50, 10 + i % 50),
                      '192.0.2.%d' % (1 + i % 20), TCP, 20000 + i,
                      rng.choice([22, 80, 443, 8080]), rng.randrange(3, 12)))
    for i in range(80):
        specs.append(('10.2.0.%d' % (1 + i), '198.51.100.%d' % (1 + i % 5),
                      UDP, 30000 + i, rng.choice([53, 123, 514]),
                      rng.randrange(1, 6)))
    for i in range(30):
        specs.append(('10.3.0.%d' % (1 + i), '203.0.113.%d' % (1 + i),
                      ICMP, 0, 0, rng.randrange(1, 5)))
    if with_v6:
        for i in range(40):
            specs.append(('2001:db8:1::%x' % (i + 1), '2001:db8:2::%x' %
                          (1 + i % 7), TCP, 40000 + i, 443,
                          rng.randrange(3, 9)))
        for i in range(30):
            specs.append(('2001:db8:1::%x' % (0x100 + i), '2001:db8:3::53',
                          UDP, 50000 + i, 53, rng.randrange(1, 4)))
        for i in range(10):
            specs.append(('2001:db8:1::%x' % (0x200 + i), '2001:db8:4::1',
                          ICMP6, 0, 0, rng.randrange(1, 4)))
    for spec in specs:
        _conversation(rng, frames, truth, spec)
    frames.sort(key=lambda f: f[0])
    golden.pcap_write(path, frames)
    return truth


# ---- softflowd and the capture of its exports ---------------------------


def processed(stats):
    for line in stats.splitlines():
        if line.startswith('Packets processed:'):
            return int(line.split(':')[1])
    return 0


def capture_exports(softflowd, traffic, version, tmp, out):
    """Runs softflowd on traffic towards a local socket; writes what
    arrived as a capture out.  Returns the number of datagrams."""
    packets = len(golden.pcap_read(traffic))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sock.settimeout(0.5)
    port = sock.getsockname()[1]
    cmd = [softflowd, '-r', traffic, '-n', '127.0.0.1:%d' % port,
           '-v', str(version), '-d', '-T', 'full',
           '-c', os.path.join(tmp, 'ctl.%d' % version),
           '-p', os.path.join(tmp, 'pid.%d' % version)]
    if version != 5:
        cmd.append('-6')
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # softflowd 1.1 reading a file waits on its control socket between
    # batches of packets: ask for statistics until it has read them all,
    # then 'shutdown' expires every flow and exports it before exiting.
    ctl = os.path.join(tmp, 'ctl.%d' % version)
    deadline = time.time() + 30
    try:
        while processed(control(ctl, b'statistics\n', proc)) < packets:
            if time.time() > deadline:
                break
        control(ctl, b'shutdown\n', proc)
    except OSError:
        pass  # it finished the file and left by itself
    frames = []
    deadline = time.time() + 60
    quiet_since = None
    while time.time() < deadline:
        try:
            data, (addr, sport) = sock.recvfrom(65535)
        except socket.timeout:
            if proc.poll() is not None:
                if quiet_since is None:
                    quiet_since = time.time()
                elif time.time() - quiet_since > 1.0:
                    break
            continue
        frames.append((time.time(), golden.udp_frame(
            addr, '127.0.0.1', sport, COLLECTOR_PORT[version], data)))
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate()
    sock.close()
    if proc.returncode not in (0, None, -9):
        print('softflowd -v %d exited %d: %s' % (version, proc.returncode,
                                                 err.strip()[-300:]))
    golden.pcap_write(out, frames)
    return len(frames)


def control(path, command, proc, wait=10.0):
    """Sends one command to softflowd's control socket; returns the
    reply."""
    deadline = time.time() + wait
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ctl:
                ctl.settimeout(wait)
                ctl.connect(path)
                ctl.sendall(command)
                reply = b''
                while True:
                    chunk = ctl.recv(4096)
                    if not chunk:
                        return reply.decode(errors='replace')
                    reply += chunk
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)


# ---- checks --------------------------------------------------------------


def check_truth(flows, truth, version, show=5):
    """Every flow the sensor printed is a direction of the traffic, with
    its packets and bytes; every direction of the traffic is there."""
    diffs = []
    seen = set()
    for flow in flows:
        key = (flow['src_addr'], flow['dst_addr'], flow['src_port'],
               flow['dst_port'], flow['proto'])
        want = truth.get(key)
        if want is None:
            diffs.append('flow not in the traffic: %s' % (key,))
            continue
        if key in seen:
            diffs.append('flow printed twice: %s' % (key,))
        seen.add(key)
        for name, val in (('packets', want.packets), ('bytes', want.bytes)):
            if flow[name] != val:
                diffs.append('%s: %s: traffic %d, sensor %d' %
                             (key, name, val, flow[name]))
        # Export times count from softflowd's own start, so only a flow's
        # length can be checked: to the ms, each end truncated once.
        length = (golden.text_to_ms(flow['time_end']) -
                  golden.text_to_ms(flow['time_start']))
        real = (want.span[1] - want.span[0]) * 1000
        if abs(length - real) > 1.0:
            diffs.append('%s: time_end - time_start: traffic %.3f ms, '
                         'sensor %d ms' % (key, real, length))
        if flow['proto'] == TCP and flow['tcp_flags'] != want.flags:
            diffs.append('%s: tcp_flags: traffic %d, sensor %d' %
                         (key, want.flags, flow['tcp_flags']))
    for key in truth:
        if key not in seen:
            diffs.append('traffic flow missing: %s' % (key,))
    label = 'softflowd -v %d vs traffic' % version
    status = 'ok' if not diffs else 'FAIL'
    print('%s %s %d flows, %d in the traffic%s' % (
        status, label, len(flows), len(truth),
        '' if not diffs else ': %d differences' % len(diffs)))
    for line in diffs[:show]:
        print('    ' + line)
    if len(diffs) > show:
        print('    ... and %d more' % (len(diffs) - show))
    return not diffs


def main():
    tshark = golden.need_tool('tshark')
    softflowd = golden.need_tool('softflowd')
    sensor = golden.sensor_path()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for version in (5, 9, 10):
            traffic = os.path.join(tmp, 'traffic%d.pcap' % version)
            # NetFlow v5 has no room for IPv6 addresses.
            truth = make_traffic(traffic, with_v6=version != 5)
            exports = os.path.join(tmp, 'softflowd-v%d.pcap' % version)
            count = capture_exports(softflowd, traffic, version, tmp,
                                    exports)
            run = golden.run_sensor(sensor, exports)
            expected = golden.expected_flows(
                golden.tshark_messages(tshark, exports))
            label = 'softflowd -v %d (%d datagrams)' % (version, count)
            for ok in (golden.compare_file(label, expected, run),
                       check_truth(run.flows, truth, version)):
                passed += ok
                failed += not ok
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
