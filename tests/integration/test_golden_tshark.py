"""
Golden test: fl0wer-sensor's decoding of the real-device captures under
tests/data/<vendor>/ must agree, record by record and field by field,
with tshark's independent NetFlow/IPFIX dissector.
"""

import glob
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402

def check(tshark, sensor, data, path):
    label = os.path.relpath(path, data)
    msgs = golden.tshark_messages(tshark, path)
    # Elements tshark cannot decode (enterprise ones, and everything after
    # the field it calls malformed in h3c.pcap) yield no expectation; the
    # sensor's kept bytes of them are still checked against the wire.
    expected = golden.expected_flows(msgs)
    run = golden.run_sensor(sensor, path)
    invalid = 'invalid' in os.path.basename(path)
    if invalid and len(run.flows) > len(expected):
        # The sensor walks v9 sets by length past a header count that is
        # too small; a tshark that does the same must see those flows.
        with tempfile.TemporaryDirectory() as tmp:
            lifted = os.path.join(tmp, 'lifted.pcap')
            if golden.lift_v9_counts(path, lifted):
                print('note %s: more flows than the v9 header count allows;'
                      ' compared with tshark walking every set' % label)
                expected = golden.expected_flows(
                    golden.tshark_messages(tshark, lifted))
    return golden.compare_file(label, expected, run, invalid=invalid)


def main():
    tshark = golden.need_tool('tshark')
    sensor = golden.sensor_path()
    root = os.environ.get('FL_SOURCE_ROOT',
                          os.path.join(os.path.dirname(__file__), '..', '..'))
    data = os.path.join(root, 'tests', 'data')
    files = sorted(glob.glob(os.path.join(data, '*', '*.pcap')))
    if not files:
        golden.skip('no captures under %s' % data)
    passed = failed = 0
    for path in files:
        if check(tshark, sensor, data, path):
            passed += 1
        else:
            failed += 1
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
