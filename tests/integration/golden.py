"""
Shared parts of the golden tests: runs tshark and fl0wer-sensor on the
same capture, turns tshark's per-record values into the sensor's NDJSON
fields, and compares the two record by record.

tshark is the independent decoder.  Its field names are not stable
enough to map by name (reverse and enterprise elements share names with
their forward twins), so every value is attributed to the template
element whose bytes it came from, using the byte positions tshark prints
with -x; the value itself is always tshark's.
"""

import calendar
import ipaddress
import json
import os
import shutil
import struct
import subprocess
import time

TSHARK_DECODE = ['-d', 'udp.port==2055,cflow', '-d', 'udp.port==4739,cflow']

# Set ids that carry templates: id -> is an options template
# (RFC 3954 section 5.2 and 6.1; RFC 7011 section 3.3.2).
TEMPLATE_SETS = {9: {0: False, 1: True}, 10: {2: False, 3: True}}

VARLEN = 65535
PEN_REVERSE = 29305  # RFC 5103 reverse information elements
U32 = 1 << 32

# Leaves that do not carry an element's value.
_NOT_VALUES = ('cflow.timedelta', 'cflow.string_len_short',
               'cflow.string_len_long', 'cflow.padding')


def skip(why):
    """Exit with the code meson reads as 'skipped'."""
    print('skipped: %s' % why)
    raise SystemExit(77)


def need_tool(name):
    path = shutil.which(name)
    if path is None:
        skip('%s is not installed' % name)
    return path


def sensor_path():
    path = os.environ.get('FL_SENSOR')
    if not path or not os.access(path, os.X_OK):
        skip('FL_SENSOR does not name a built fl0wer-sensor')
    return path


# ---- tshark's JSON -------------------------------------------------------


class Leaf:
    """One decoded value: tshark's name and text, and where it came from."""

    def __init__(self, name, value, pos=None, size=None):
        self.name = name
        self.value = value
        self.pos = pos
        self.size = size


def _pairs(items):
    """json hook keeping duplicate keys: tshark repeats names freely."""
    return items


def _is_tree(val):
    return isinstance(val, list) and (not val or isinstance(val[0], tuple))


def _is_raw(val):
    return (isinstance(val, list) and len(val) >= 3 and
            isinstance(val[0], str) and isinstance(val[1], int))


def _flatten(items, out):
    """Leaves of a tshark subtree in wire order, with their positions."""
    raw = {}
    for key, val in items:
        if key.endswith('_raw') and _is_raw(val):
            raw[key[:-4]] = val
        elif _is_tree(val):
            _flatten(val, out)
        elif isinstance(val, str):
            r = raw.pop(key, None)
            out.append(Leaf(key, val, r[1] if r else None,
                            r[2] if r else None))
    return out


def _find(items, name):
    for key, val in items:
        if key == name:
            return val
    return None


class Element:
    """One template field of one record: its id, bytes and tshark leaves."""

    def __init__(self, pen, eid, off, size, data):
        self.pen = pen
        self.id = eid
        self.off = off
        self.size = size
        self.data = data  # the value bytes (after a varlen prefix)
        self.leaves = []

    def value(self):
        for leaf in self.leaves:
            if leaf.name not in _NOT_VALUES and '.' not in leaf.name[6:]:
                return leaf
        for leaf in self.leaves:
            if leaf.name not in _NOT_VALUES:
                return leaf
        return None


class Record:
    """One data or options data record as tshark shows it."""

    def __init__(self, msg, set_id, leaves, options):
        self.msg = msg
        self.set_id = set_id
        self.leaves = leaves
        self.options = options
        self.elements = None  # [Element] when the template is known

    def get(self, name):
        for leaf in self.leaves:
            if leaf.name == name:
                return leaf.value
        return None

    def element(self, pen, eid):
        for el in self.elements or []:
            if el.pen == pen and el.id == eid and el.value() is not None:
                return el
        return None


class Message:
    """One NetFlow/IPFIX message: header facts and its records."""

    def __init__(self, frame, exporter):
        self.frame = frame
        self.exporter = exporter
        self.hdr = {}
        self.version = 0
        self.malformed = False
        self.records = []
        self.wire_records = 0  # data records by set lengths and templates
        self.short_sets = []  # set ids where tshark showed fewer records

    def set_header(self, leaves):
        self.hdr = {leaf.name: leaf.value for leaf in leaves}
        self.version = int(self.hdr.get('cflow.version', 0))

    def domain(self):
        if self.version == 5:
            return (int(self.hdr.get('cflow.engine_type', 0)) << 8
                    | int(self.hdr.get('cflow.engine_id', 0)))
        if self.version == 9:
            return int(self.hdr.get('cflow.source_id', 0))
        return int(self.hdr.get('cflow.od_id', 0))

    def export_ms(self):
        """Header export time in ms since the epoch."""
        if self.version == 10:
            return int(self.hdr['cflow.exporttime']) * 1000
        secs = int(self.hdr['cflow.unix_secs'])
        nsecs = int(self.hdr.get('cflow.unix_nsecs', 0))
        return secs * 1000 + nsecs // 1000000

    def uptime_ms(self):
        return seconds_to_ms(self.hdr['cflow.sysuptime'])


class Template:
    def __init__(self, options, fields):
        self.options = options
        self.fields = fields  # [(pen, id, length)]


class Decoder:
    """Walks tshark's JSON frame by frame, keeping templates as it goes."""

    def __init__(self):
        self.templates = {}
        self.messages = []
        self.payload_end = None
        self.next_set = None

    def frame(self, num, layers):
        frame_hex = ''
        exporter = None
        self.payload_end = None
        for key, val in layers:
            if key == 'frame_raw' and _is_raw(val):
                frame_hex = val[0]
            elif key in ('ip', 'ipv6') and _is_tree(val):
                exporter = _find(val, key + '.src')
            elif key == 'udp' and _is_tree(val):
                port = _find(val, 'udp.srcport_raw')
                if _is_raw(port):
                    self.payload_end = port[1] + int(_find(val, 'udp.length'))
            elif key == 'cflow':
                self.cflow(num, exporter, bytes.fromhex(frame_hex), val)

    def cflow(self, num, exporter, frame, items):
        msg = Message(num, exporter)
        hdr = []
        self.next_set = None
        for key, val in items:
            if not _is_tree(val):
                if key == '_ws.malformed':
                    msg.malformed = True
                elif isinstance(val, str) and not key.endswith('_raw'):
                    hdr.append(Leaf(key, val))
                continue
            if not msg.hdr and (key.startswith(('pdu ', 'FlowSet ',
                                                'Set '))):
                msg.set_header(hdr)
            if key.startswith('pdu '):
                msg.records.append(Record(msg, None, _flatten(val, []),
                                          False))
                msg.wire_records += 1
            elif key.startswith(('FlowSet ', 'Set ')):
                self.set(msg, frame, val)
            elif any(x.name == '_ws.malformed' for x in _flatten(val, [])):
                msg.malformed = True
            else:
                hdr.extend(_flatten(val, []))
        if not msg.hdr:
            msg.set_header(hdr)
        if msg.malformed:
            self.tail(msg, frame)
        self.messages.append(msg)

    def tail(self, msg, frame):
        """tshark stops a message at the first malformed field; count the
        data records of the sets it never showed, by set length and the
        templates it did show, so the flows after them still line up."""
        off = self.next_set
        end = min(self.payload_end or len(frame), len(frame))
        while off is not None and off + 4 <= end:
            set_id = int.from_bytes(frame[off:off + 2], 'big')
            set_len = int.from_bytes(frame[off + 2:off + 4], 'big')
            if set_len < 4 or off + set_len > end:
                break
            tpl = self.templates.get((msg.version, msg.domain(), set_id))
            if tpl is not None and not tpl.options:
                count = _attribute(tpl, frame, off + 4, off + set_len, [])
                msg.wire_records += count
                msg.short_sets.append(set_id)
                for _ in range(count):
                    msg.records.append(Record(msg, set_id, [], False))
            off += set_len

    def set(self, msg, frame, items):
        id_raw = _find(items, 'cflow.flowset_id_raw')
        set_id = int(_find(items, 'cflow.flowset_id'))
        set_len = int(_find(items, 'cflow.flowset_length') or 0)
        self.next_set = id_raw[1] + set_len if _is_raw(id_raw) else None
        kinds = TEMPLATE_SETS.get(msg.version, {})
        if set_id in kinds:
            self.template_set(msg, items, kinds[set_id])
            return
        key = (msg.version, msg.domain(), set_id)
        tpl = self.templates.get(key)
        options = tpl.options if tpl else False
        shown = 0
        for k, val in items:
            if k.startswith('Flow ') and _is_tree(val):
                leaves = _flatten(val, [])
                msg.records.append(Record(msg, set_id, leaves, options))
                msg.malformed |= any(x.name == '_ws.malformed'
                                     for x in leaves)
                shown += 1
            elif k == '_ws.malformed' or (
                    _is_tree(val) and any(x.name == '_ws.malformed'
                                          for x in _flatten(val, []))):
                msg.malformed = True
        if tpl is None or not _is_raw(id_raw):
            return
        recs = msg.records[len(msg.records) - shown:]
        start = id_raw[1] + 4
        end = min(id_raw[1] + set_len, len(frame))
        count = _attribute(tpl, frame, start, end, recs)
        if not options:
            msg.wire_records += count
        if count > shown:
            # tshark gave up inside this set: keep the places of the
            # records it did not show, so later flows still line up.
            msg.short_sets.append(set_id)
            for _ in range(count - shown):
                msg.records.append(Record(msg, set_id, [], options))

    def template_set(self, msg, items, options):
        for key, val in items:
            if not _is_tree(val) or 'Template (Id' not in key:
                continue
            tid = _find(val, 'cflow.template_id')
            fields = []
            for fkey, fval in val:
                if fkey.startswith('Field (') and _is_tree(fval):
                    fields.append(_template_field(fval))
            if tid is not None:
                self.templates[(msg.version, msg.domain(), int(tid))] = \
                    Template(options, fields)


def _template_field(items):
    get = dict((k, v) for k, v in items if isinstance(v, str))
    # IANA ids are template_[ipfix_]field_type; vendors' own elements
    # come as template_<vendor>_field_type or ..._field_type_enterprise.
    eid = '0'
    for name, val in get.items():
        if name.startswith('cflow.template_') and name.endswith(
                ('_field_type', '_field_type_enterprise')):
            eid = val
            if 'enterprise' in name or 'ipfix' not in name:
                break
    size = get.get('cflow.template_field_length',
                   get.get('cflow.template_scope_field_length', '0'))
    pen = get.get('cflow.template_ipfix_field_pen', '0')
    return (int(pen), int(eid), int(size))


def _walk(tpl, frame, off, end):
    """Elements of the record at off, or None if it does not fit."""
    els = []
    for pen, eid, size in tpl.fields:
        head = off
        if size == VARLEN:
            if off >= end:
                return None
            size = frame[off]
            off += 1
            if size == 255:
                if off + 2 > end:
                    return None
                size = int.from_bytes(frame[off:off + 2], 'big')
                off += 2
        if off + size > end:
            return None
        el = Element(pen, eid, head, off + size - head, frame[off:off + size])
        els.append(el)
        off += size
    return els


def _attribute(tpl, frame, off, end, recs):
    """Gives each record its elements; returns how many records fit."""
    count = 0
    while off < end:
        els = _walk(tpl, frame, off, end)
        if els is None or not els or els[-1].off + els[-1].size == off:
            break
        if count < len(recs):
            rec = recs[count]
            rec.elements = els
            for leaf in rec.leaves:
                for el in els:
                    if (leaf.pos is not None and
                            el.off <= leaf.pos < el.off + el.size):
                        el.leaves.append(leaf)
                        break
        off = els[-1].off + els[-1].size
        count += 1
    return count


def tshark_messages(tshark, pcap):
    """Every NetFlow/IPFIX message of pcap as tshark decodes it."""
    proc = subprocess.run([tshark, '-r', pcap] + TSHARK_DECODE +
                          ['-T', 'json', '-x'], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError('tshark failed on %s: %s' % (pcap, proc.stderr))
    frames = json.loads(proc.stdout or '[]', object_pairs_hook=_pairs)
    dec = Decoder()
    for num, pkt in enumerate(frames, 1):
        layers = _find(_find(pkt, '_source'), 'layers')
        dec.frame(num, layers)
    return dec.messages


# ---- values ------------------------------------------------------------


def seconds_to_ms(text):
    """'1704740.613000000' -> 1704740613, exactly (no float rounding)."""
    whole, _, frac = text.partition('.')
    return int(whole) * 1000 + int((frac + '000')[:3])


_MONTHS = {m: i for i, m in enumerate(
    ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct',
     'Nov', 'Dec'], 1)}


def date_to_ms(text):
    """tshark's 'Oct  9, 2015 09:47:49.599000000 UTC' -> ms, floored."""
    parts = text.replace(',', ' ').split()
    mon, day, year, clock = parts[0], int(parts[1]), int(parts[2]), parts[3]
    hms, _, frac = clock.partition('.')
    hh, mm, ss = (int(x) for x in hms.split(':'))
    secs = calendar.timegm((year, _MONTHS[mon], day, hh, mm, ss))
    return secs * 1000 + int((frac + '000')[:3])


def ms_to_text(ms):
    """The sensor's RFC 3339 form, for messages and comparisons."""
    secs, rem = divmod(ms, 1000)
    tm = time.gmtime(secs)
    return '%04d-%02d-%02dT%02d:%02d:%02d.%03dZ' % (
        tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        rem)


def text_to_ms(text):
    """The sensor's '2015-10-09T09:47:49.599Z' -> ms."""
    date, _, clock = text.rstrip('Z').partition('T')
    year, mon, day = (int(x) for x in date.split('-'))
    hms, _, frac = clock.partition('.')
    hh, mm, ss = (int(x) for x in hms.split(':'))
    secs = calendar.timegm((year, mon, day, hh, mm, ss))
    return secs * 1000 + int((frac + '000')[:3])


def to_int(text):
    """tshark integers: decimal, 0x hex or 'aa:bb' bytes."""
    text = text.split()[0]
    if ':' in text:
        return int(text.replace(':', ''), 16)
    return int(text, 0)


def to_addr(text):
    """Address text as the sensor prints it (IPv4-mapped as dotted)."""
    addr = ipaddress.ip_address(text.split()[0])
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def time_value(leaf):
    """An absolute time leaf in ms, or a relative one's offset in ms."""
    if leaf.value[:3] in _MONTHS:
        return date_to_ms(leaf.value)
    return seconds_to_ms(leaf.value)


# ---- what tshark says the sensor must print ----------------------------

# (pen, id) lists in order of preference for each field of the record.
ADDR_FIELDS = {
    'src_addr': [(0, 8), (0, 27)],
    'dst_addr': [(0, 12), (0, 28)],
    # ipNextHop first; a record with only the BGP next hop still has one.
    'next_hop': [(0, 15), (0, 62), (0, 18), (0, 63)],
    # IANA post-NAT elements; 40001/40002 are Cisco NSEL's v9 ids.
    'xlate_src_addr': [(0, 225), (0, 281), (0, 40001)],
    'xlate_dst_addr': [(0, 226), (0, 282), (0, 40002)],
}
INT_FIELDS = {
    'src_port': [(0, 7)],
    'dst_port': [(0, 11)],
    'proto': [(0, 4)],
    'tos': [(0, 5)],
    'tcp_flags': [(0, 6)],
    'in_if': [(0, 10)],
    'out_if': [(0, 14)],
    'src_as': [(0, 16)],
    'dst_as': [(0, 17)],
    'vlan': [(0, 58)],
    'direction': [(0, 61)],
    'xlate_src_port': [(0, 227), (0, 40003)],
    'xlate_dst_port': [(0, 228), (0, 40004)],
}
# Delta counts first, totals when a record has only those (NSEL, YAF).
COUNT_FIELDS = {
    'packets': [(0, 2), (0, 86)],
    'bytes': [(0, 1), (0, 85)],
    'rev_packets': [(PEN_REVERSE, 2), (PEN_REVERSE, 86)],
    'rev_bytes': [(PEN_REVERSE, 1), (PEN_REVERSE, 85)],
}
OPTIONAL = ('next_hop', 'xlate_src_addr', 'xlate_dst_addr', 'xlate_src_port',
            'xlate_dst_port', 'rev_packets', 'rev_bytes', 'fw_event')
ICMP_TYPE_CODE = [((0, 176), (0, 177)), ((0, 178), (0, 179))]
ICMP_COMBINED = [(0, 32), (0, 139)]
START_ABS = [(0, 152), (0, 150), (0, 154), (0, 156)]
END_ABS = [(0, 153), (0, 151), (0, 155), (0, 157)]
EXTRA_MAX = 1024  # FL_EXTRA_MAX in sensor/sensor_int.h


class Expected:
    """The fields one record must show, and why some were not checked."""

    def __init__(self, rec):
        self.rec = rec
        self.fields = {}
        self.counts = {}  # raw counts, to be multiplied by sampling
        self.sampling = None  # None: tshark could not tell
        self.duration = None  # ms, when only relative times are known
        self.missing = rec is None or not rec.leaves


class Context:
    """What options data taught so far, per (version, domain)."""

    def __init__(self):
        self.sampling = {}
        self.samplers = {}
        self.sys_init = {}

    def learn(self, rec):
        key = (rec.msg.version, rec.msg.domain())
        interval = _first(rec, [(0, 34), (0, 305)])
        sampler = _first(rec, [(0, 48), (0, 302)])
        if interval is not None and to_int(interval.value) > 0:
            if sampler is not None:
                self.samplers[key + (to_int(sampler.value),)] = \
                    to_int(interval.value)
            else:
                self.sampling[key] = to_int(interval.value)
        init = _first(rec, [(0, 160)])
        if init is not None:
            self.sys_init[key] = time_value(init)


def _first(rec, ids):
    for pen, eid in ids:
        el = rec.element(pen, eid)
        if el is not None:
            return el.value()
    return None


def expect_v5(rec):
    exp = Expected(rec)
    msg = rec.msg
    f = exp.fields
    for name, key in (('src_addr', 'cflow.srcaddr'),
                      ('dst_addr', 'cflow.dstaddr'),
                      ('next_hop', 'cflow.nexthop')):
        f[name] = to_addr(rec.get(key))
    for name, key in (('src_port', 'cflow.srcport'),
                      ('dst_port', 'cflow.dstport'),
                      ('proto', 'cflow.protocol'), ('tos', 'cflow.tos'),
                      ('tcp_flags', 'cflow.tcpflags'),
                      ('in_if', 'cflow.inputint'),
                      ('out_if', 'cflow.outputint'),
                      ('src_as', 'cflow.srcas'), ('dst_as', 'cflow.dstas')):
        if rec.get(key) is not None:
            f[name] = to_int(rec.get(key))
    exp.counts['packets'] = to_int(rec.get('cflow.packets'))
    exp.counts['bytes'] = to_int(rec.get('cflow.octets'))
    _uptime_times(exp, seconds_to_ms(rec.get('cflow.timestart')),
                  seconds_to_ms(rec.get('cflow.timeend')))
    rate = to_int(msg.hdr.get('cflow.samplerate', '0'))
    exp.sampling = rate if rate > 1 else 1
    f['exporter'] = to_addr(msg.exporter)
    f['domain'] = msg.domain()
    return exp


def _uptime_times(exp, start, end):
    """v5/v9 times are sysUptime ms, taken back from the header's export
    time modulo 2^32 (the counter wraps after 49.7 days).  A time more
    than 2^31 ms ahead of the header's uptime is a flow that would end
    after it was exported: the exporter's clocks disagree (FortiOS 5.2
    does this), so only the flow's length is checked."""
    msg = exp.rec.msg
    up = msg.uptime_ms()
    back = [None if t is None else (up - t) % U32 for t in (start, end)]
    if any(b is not None and b >= U32 // 2 for b in back):
        if start is not None and end is not None:
            exp.duration = (end - start) % U32
        return
    if back[0] is not None:
        exp.fields['time_start'] = msg.export_ms() - back[0]
    if back[1] is not None:
        exp.fields['time_end'] = msg.export_ms() - back[1]


def expect_template(rec, ctx):
    """Fields of a v9 or IPFIX data record, by element id."""
    exp = Expected(rec)
    msg = rec.msg
    f = exp.fields
    for name, ids in ADDR_FIELDS.items():
        leaf = _first(rec, ids)
        if leaf is not None:
            f[name] = to_addr(leaf.value)
    for name, ids in INT_FIELDS.items():
        leaf = _first(rec, ids)
        if leaf is not None:
            f[name] = to_int(leaf.value)
    if 'tcp_flags' in f:
        f['tcp_flags'] &= 0xff  # the record keeps the classic 8 bits
    fw = _first(rec, [(0, 233), (0, 40005)])
    if fw is not None:
        f['fw_event'] = to_int(fw.value) if 1 <= to_int(fw.value) <= 5 else 0
    for name, ids in COUNT_FIELDS.items():
        leaf = _first(rec, ids)
        if leaf is not None:
            exp.counts[name] = to_int(leaf.value)
    _expect_icmp(rec, f)
    _expect_times(rec, ctx, exp)
    _expect_sampling(rec, ctx, exp)
    f['exporter'] = to_addr(msg.exporter)
    f['domain'] = msg.domain()
    return exp


def _expect_icmp(rec, f):
    """DESIGN.md: ICMP type * 256 + code travels in the destination port."""
    if f.get('proto') not in (1, 58):
        return
    for tid, cid in ICMP_TYPE_CODE:
        t, c = _first(rec, [tid]), _first(rec, [cid])
        if t is not None and c is not None:
            f['dst_port'] = to_int(t.value) * 256 + to_int(c.value)
            return
    for pen, eid in ICMP_COMBINED:
        el = rec.element(pen, eid)
        if el is None:
            continue
        # tshark shows one value, or type and code as two leaves.
        parts = {leaf.name.rsplit('_', 1)[-1]: to_int(leaf.value)
                 for leaf in el.leaves}
        if 'type' in parts and 'code' in parts:
            f['dst_port'] = parts['type'] * 256 + parts['code']
        else:
            f['dst_port'] = to_int(el.value().value)
        return


def _expect_times(rec, ctx, exp):
    msg = rec.msg
    f = exp.fields
    start, end = _first(rec, START_ABS), _first(rec, END_ABS)
    if start is not None:
        f['time_start'] = time_value(start)
    if end is not None:
        f['time_end'] = time_value(end)
    rstart, rend = _first(rec, [(0, 22)]), _first(rec, [(0, 21)])
    if msg.version == 9:
        _uptime_times(exp, time_value(rstart) if rstart else None,
                      time_value(rend) if rend else None)
        return
    init = ctx.sys_init.get((msg.version, msg.domain()))
    if rstart is not None and rend is not None and init is None:
        # IPFIX uptime without systemInitTime: only the length is known.
        exp.duration = (time_value(rend) - time_value(rstart)) % U32
        return
    if rstart is not None:
        f['time_start'] = init + time_value(rstart)
    if rend is not None:
        f['time_end'] = init + time_value(rend)
    dstart, dend = _first(rec, [(0, 158)]), _first(rec, [(0, 159)])
    if dstart is not None:
        f['time_start'] = (msg.export_ms() * 1000 - to_int(dstart.value)) \
            // 1000
    if dend is not None:
        f['time_end'] = (msg.export_ms() * 1000 - to_int(dend.value)) \
            // 1000


def _expect_sampling(rec, ctx, exp):
    key = (rec.msg.version, rec.msg.domain())
    interval = _first(rec, [(0, 34), (0, 305)])
    if interval is not None:
        exp.sampling = max(to_int(interval.value), 1)
        return
    sampler = _first(rec, [(0, 48), (0, 302)])
    if sampler is not None:
        exp.sampling = ctx.samplers.get(key + (to_int(sampler.value),), 1)
        return
    for pen, eid in ((0, 34), (0, 305)):
        for el in rec.elements or []:
            if (el.pen, el.id) == (pen, eid):
                return  # in the record, but tshark could not decode it
    exp.sampling = ctx.sampling.get(key, 1)


def expected_flows(msgs):
    """Expected per data record, in wire order; options data teaches."""
    ctx = Context()
    out = []
    for msg in msgs:
        for rec in msg.records:
            if rec.options:
                if rec.elements is not None:
                    ctx.learn(rec)
            elif rec.msg.version == 5:
                out.append(expect_v5(rec))
            elif not rec.leaves:
                out.append(Expected(None))
            else:
                out.append(expect_template(rec, ctx))
    return out


# ---- comparing ----------------------------------------------------------


def _sensor_value(flow, name):
    if name in ('time_start', 'time_end'):
        return text_to_ms(flow[name]) if name in flow else None
    val = flow.get(name)
    if name in ADDR_FIELDS or name == 'exporter':
        if val is None:
            return '0.0.0.0'
        return to_addr(val)
    if val is None and name in OPTIONAL:
        return 0
    return val


def _same(name, want, got):
    if isinstance(want, str) and want in ('0.0.0.0', '::'):
        return got in ('0.0.0.0', '::')
    return want == got


def _show(name, val):
    if name in ('time_start', 'time_end') and isinstance(val, int):
        return ms_to_text(val)
    return val


def compare(exp, flow):
    """Returns ([(field, tshark value, sensor value)], fields compared)."""
    diffs = []
    n = 0
    for name, want in exp.fields.items():
        got = _sensor_value(flow, name)
        n += 1
        if not _same(name, want, got):
            diffs.append((name, _show(name, want), _show(name, got)))
    sampling = flow.get('sampling', 1)
    if exp.sampling is not None:
        n += 1
        if exp.sampling != sampling:
            diffs.append(('sampling', exp.sampling, sampling))
        sampling = exp.sampling
    for name, raw in exp.counts.items():
        n += 1
        got = flow.get(name, 0)
        if raw * sampling != got:
            diffs.append((name, '%d x %d' % (raw, sampling), got))
    if exp.duration is not None:
        n += 1
        got = text_to_ms(flow['time_end']) - text_to_ms(flow['time_start'])
        if got != exp.duration:
            diffs.append(('time_end - time_start', exp.duration, got))
    d, k = _compare_extra(exp.rec, flow)
    return diffs + d, n + k


def _compare_extra(rec, flow):
    """Every kept element must be the record's own bytes, and enterprise
    elements the sensor cannot know must be kept (DESIGN.md)."""
    if rec is None or rec.elements is None:
        return [], 0
    diffs = []
    n = 0
    wire = {}
    for el in rec.elements:
        wire.setdefault((el.pen, el.id), []).append(el.data.hex())
    kept = {}
    for x in flow.get('extra', []):
        n += 1
        key = (x['pen'], x['id'])
        kept.setdefault(key, []).append(x['hex'])
        if x['hex'] not in wire.get(key, []):
            diffs.append(('extra %d/%d' % key, wire.get(key, 'absent'),
                          x['hex']))
    unknown = [el for el in rec.elements
               if el.pen not in (0, PEN_REVERSE)]
    if sum(8 + len(el.data) for el in unknown) <= EXTRA_MAX:
        for el in unknown:
            n += 1
            if el.data.hex() not in kept.get((el.pen, el.id), []):
                diffs.append(('extra %d/%d' % (el.pen, el.id),
                              el.data.hex(), 'missing'))
    return diffs, n


# ---- running the sensor ---------------------------------------------------


class SensorRun:
    def __init__(self, proc):
        self.code = proc.returncode
        self.stderr = proc.stderr
        self.flows = []
        self.bad_lines = []
        for line in proc.stdout.splitlines():
            try:
                self.flows.append(json.loads(line))
            except ValueError:
                self.bad_lines.append(line)

    def errors(self):
        """Sum of error_* counters in the summary on stderr."""
        total = 0
        for word in self.stderr.split():
            if word.startswith('error_') and '=' in word:
                total += int(word.split('=', 1)[1].strip(',') or 0)
        return total


def run_sensor(sensor, pcap, timeout=120):
    try:
        proc = subprocess.run([sensor, '--read', pcap, '--print', 'ndjson'],
                              capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        proc = subprocess.CompletedProcess(e.cmd, -1, '',
                                           'timed out after %ds' % timeout)
    return SensorRun(proc)


def compare_file(label, expected, run, invalid=False, show=5):
    """Compares one capture; prints one line (and differences); True if ok.
    Expected entries whose record tshark did not show count but are not
    compared field by field."""
    problems = []
    if run.code != 0:
        problems.append('sensor exited %d: %s' % (run.code,
                                                  run.stderr.strip()[-300:]))
    if run.bad_lines:
        problems.append('sensor printed %d lines that are not JSON, first: %r'
                        % (len(run.bad_lines), run.bad_lines[0][:120]))
    if invalid:
        if len(run.flows) > len(expected):
            problems.append('sensor printed %d flows, tshark sees only %d' %
                            (len(run.flows), len(expected)))
        if run.errors() == 0:
            problems.append('no decode error in the sensor summary')
    elif len(run.flows) != len(expected):
        problems.append('flow count: tshark %d, sensor %d' %
                        (len(expected), len(run.flows)))
    fields = 0
    diffs = []
    for i, (exp, flow) in enumerate(zip(expected, run.flows)):
        if exp.missing:
            continue
        d, n = compare(exp, flow)
        fields += n
        for name, want, got in d:
            diffs.append('flow %d (frame %d): %s: tshark %s, sensor %s' %
                         (i + 1, exp.rec.msg.frame, name, want, got))
    if diffs:
        problems.append('%d field differences' % len(diffs))
    status = 'ok' if not problems else 'FAIL'
    lengths = sum(1 for exp in expected if exp.duration is not None)
    print('%s %s %d flows, %d fields compared%s%s' % (
        status, label, len(run.flows), fields,
        ' (%d flows: exporter times give only the length)' % lengths
        if lengths else '',
        '' if not problems else ': ' + '; '.join(problems)))
    for line in diffs[:show]:
        print('    ' + line)
    if len(diffs) > show:
        print('    ... and %d more' % (len(diffs) - show))
    return not problems


# ---- pcap files, by hand -------------------------------------------------

PCAP_MAGIC = 0xa1b2c3d4
LINKTYPE_ETHERNET = 1


def pcap_write(path, frames):
    """frames: [(time in seconds as float, bytes)]; little-endian, us."""
    with open(path, 'wb') as out:
        out.write(struct.pack('<IHHiIII', PCAP_MAGIC, 2, 4, 0, 0, 65535,
                              LINKTYPE_ETHERNET))
        for ts, data in frames:
            secs = int(ts)
            usecs = int(round((ts - secs) * 1e6))
            if usecs >= 1000000:
                secs, usecs = secs + 1, usecs - 1000000
            out.write(struct.pack('<IIII', secs, usecs, len(data),
                                  len(data)))
            out.write(data)


def pcap_read(path):
    """[(time, frame bytes)] of a little-endian microsecond capture."""
    with open(path, 'rb') as f:
        data = f.read()
    magic, = struct.unpack('<I', data[:4])
    if magic != PCAP_MAGIC:
        raise ValueError('%s: not a little-endian pcap file' % path)
    off = 24
    frames = []
    while off + 16 <= len(data):
        secs, usecs, caplen, _ = struct.unpack('<IIII', data[off:off + 16])
        off += 16
        frames.append((secs + usecs / 1e6, data[off:off + caplen]))
        off += caplen
    return frames


def _udp_payload_offset(frame):
    """Offset of the UDP payload in an Ethernet/IPv4 frame, or None."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b'\x08\x00':
        return None
    ihl = (frame[14] & 0x0f) * 4
    if frame[14 + 9] != 17:
        return None
    return 14 + ihl + 8


def lift_v9_counts(src, dst):
    """Copies src to dst with every NetFlow v9 header count set to 65535.
    tshark stops a v9 message after 'count' records (RFC 3954 5.1); with
    the count lifted it walks every set by its length, as the sensor
    does, which tells well-formed records past a wrong count from
    garbage.  Returns how many headers were changed."""
    frames = []
    changed = 0
    for ts, frame in pcap_read(src):
        off = _udp_payload_offset(frame)
        if off is not None and frame[off:off + 2] == b'\x00\x09':
            frame = frame[:off + 2] + b'\xff\xff' + frame[off + 4:]
            changed += 1
        frames.append((ts, frame))
    pcap_write(dst, frames)
    return changed


def ip_checksum(header):
    total = 0
    for i in range(0, len(header), 2):
        total += (header[i] << 8) + header[i + 1]
    while total > 0xffff:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def udp_frame(src, dst, sport, dport, payload):
    """Ethernet/IPv4/UDP frame around payload (UDP checksum 0: allowed)."""
    udp = struct.pack('>HHHH', sport, dport, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0,
                               0x4000, 64, 17, 0,
                               ipaddress.IPv4Address(src).packed,
                               ipaddress.IPv4Address(dst).packed))
    ip[10:12] = struct.pack('>H', ip_checksum(ip))
    eth = b'\x02\x00\x00\x00\x00\x02' + b'\x02\x00\x00\x00\x00\x01' + \
        b'\x08\x00'
    return eth + bytes(ip) + udp
