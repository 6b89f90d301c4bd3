#!/bin/sh
# Decoding a capture file, whole process timed: fl0wer-sensor --read next
# to tshark -r on the same pcap.  tshark is the only other decoder here
# that reads NetFlow out of a pcap (nfcapd 1.7.1 cannot; nfpcapd builds
# flows from raw packets instead), and it dissects far more than a
# collector does, so the ratio is a reference point, not a contest.
#
# usage: bench_read.sh SENSOR FILE.pcap [RUNS]
set -eu

sensor=$1
pcap=$2
runs=${3:-5}

# Prints the wall seconds of one run of "$@", output discarded.
seconds() {
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

count_tshark() {
    tshark -r "$pcap" -T fields -e cflow.srcaddr -e cflow.srcaddrv6 \
        2>/dev/null | tr ',\t' '\n\n' | grep -c .
}

flows_sensor=$("$sensor" --read "$pcap" --log-level notice 2>&1 |
    sed -n 's/.*FL-SENSOR-SUMMARY:.* flows=\([0-9]*\).*/\1/p')
flows_tshark=$(count_tshark)

s_runs=""
t_runs=""
i=0
while [ "$i" -lt "$runs" ]; do
    s_runs="$s_runs $(seconds "$sensor" --read "$pcap" --log-level err)"
    t_runs="$t_runs $(seconds tshark -r "$pcap" -T fields -e cflow.srcaddr)"
    i=$((i + 1))
done
s_med=$(echo "$s_runs" | tr ' ' '\n' | grep . | median)
t_med=$(echo "$t_runs" | tr ' ' '\n' | grep . | median)

echo "decode a pcap, whole process, median of $runs runs: $(basename "$pcap")"
printf '%-14s %10s %10s %14s\n' decoder records seconds records/s
printf '%-14s %10s %10.3f %14.0f\n' fl0wer-sensor "$flows_sensor" "$s_med" \
    "$(echo "$flows_sensor / $s_med" | bc -l)"
printf '%-14s %10s %10.3f %14.0f\n' tshark "$flows_tshark" "$t_med" \
    "$(echo "$flows_tshark / $t_med" | bc -l)"
printf 'ratio (tshark seconds / sensor seconds): %.1f\n' \
    "$(echo "$t_med / $s_med" | bc -l)"
