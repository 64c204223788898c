#!/usr/bin/env bash
# VerifyEnvelope p99 at half load, N consecutive runs against one node whose replay cache grows
# from run to run (each envelope is sent once and stays in the cache for its lifetime plus
# twice the skew, longer than the whole series). This is the series that showed the replay
# cache's growth stall; docs/benchmarks.md records its figures.
#
#   bash crates/atp-bench/scripts/replay-p99.sh [RUNS] [DURATION]    # default 10 runs of 10s
#
# PREFILL=5000000 first fills the node's replay cache with that many nonces, through the
# network like any client (closed-loop VerifyEnvelope of envelopes valid for 3 hours, signed
# and sent in chunks of PREFILL_CHUNK so that the client's memory stays bounded), then runs
# the series against the full cache.
#
# PROBE=1 also samples, during each run, the node's CPU and thread states and how late a
# sleeping probe wakes, per 100 ms, into probe-N.log (scripts/stall_probe.py): whether a tail
# came from the node computing, the node waiting, or the machine.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
runs="${1:-10}"
duration="${2:-10s}"
prefill="${PREFILL:-0}"
chunk="${PREFILL_CHUNK:-500000}"
out=target/atp-bench/replay-p99
[[ "$prefill" == 0 ]] || out="$out-prefill-$prefill"
mkdir -p "$out"

[[ -n "${SKIP_BUILD:-}" ]] || cargo build --quiet --release -p atp-node -p atp-bench
bin="${CARGO_TARGET_DIR:-target}/release"

data="$(mktemp -d)"
"$bin/atp-node" --data-dir "$data/node" --listen 127.0.0.1:0 --log warn \
    --rate-limit 0 --replay-cache-capacity $((prefill + 5000000)) --envelope-max-lifetime 3h \
    > "$out/node.stdout" 2> "$out/node.log" &
node_pid=$!
trap 'kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do
    grep -q '^listening: ' "$out/node.stdout" 2>/dev/null && break
    sleep 0.2
done
addr="$(sed -n 's/^listening: //p' "$out/node.stdout")"
[[ -n "$addr" ]] || { echo "the node did not start:"; cat "$out/node.log"; exit 1; }
endpoint="http://$addr"

filled=0
while ((filled < prefill)); do
    n=$((prefill - filled < chunk ? prefill - filled : chunk))
    "$bin/atp-bench" run --endpoint "$endpoint" --node-pid "$node_pid" --json \
        --scenario verify-envelope --concurrency 64 --warmup 0s --duration 60m --pool "$n" \
        --envelope-lifetime 180m > "$out/prefill.json"
    ok="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["report"]; print(r["successes"]); assert r["errors"] == 0, r["errors_by_code"]' "$out/prefill.json")"
    filled=$((filled + ok))
    rss="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["node_rss_bytes"] // 2**20)' "$out/prefill.json")"
    echo "    prefill: $filled of $prefill nonces in the node's replay cache, node RSS ${rss} MiB"
done

echo "==> closed loop, for the rate ($(cut -d' ' -f1-3 /proc/loadavg))"
"$bin/atp-bench" run --endpoint "$endpoint" --node-pid "$node_pid" --json \
    --scenario verify-envelope --concurrency 64 --duration "$duration" > "$out/closed.json"
half="$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["report"]["throughput_per_s"]/2))' "$out/closed.json")"
echo "    half of the closed-loop rate: $half/s"
# The node's minor page faults, CPU time and context switches over a run, from /proc: a tail
# that comes with faults or involuntary switches points at memory or the scheduler, not the code.
node_counters() {
    python3 - "$node_pid" <<'PY'
import os, sys
pid = sys.argv[1]
f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
ctx = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
for task in os.listdir(f"/proc/{pid}/task"):
    for line in open(f"/proc/{pid}/task/{task}/status"):
        name = line.split(":")[0]
        if name in ctx:
            ctx[name] += int(line.split()[1])
print(f[7], f[9], int(f[11]) + int(f[12]), ctx["voluntary_ctxt_switches"], ctx["nonvoluntary_ctxt_switches"])
PY
}
for i in $(seq "$runs"); do
    before="$(node_counters)"
    if [[ -n "${PROBE:-}" ]]; then
        python3 crates/atp-bench/scripts/stall_probe.py "$node_pid" "$out/probe-$i.log" 30 &
    fi
    "$bin/atp-bench" run --endpoint "$endpoint" --node-pid "$node_pid" --json \
        --scenario verify-envelope --rate "$half" --duration "$duration" > "$out/open-$i.json"
    after="$(node_counters)"
    python3 - "$out/open-$i.json" "$i" "$before" "$after" <<'PY'
import json, sys
o = json.load(open(sys.argv[1])); r = o["report"]; l = r["latency_us"]
b, a = (list(map(int, x.split())) for x in sys.argv[3:5])
minflt, majflt, ticks, vcs, ivcs = (y - x for x, y in zip(b, a))
print(f"    run {sys.argv[2]:>2}: {r['throughput_per_s']:.0f}/s errors={r['errors']} "
      f"p50={l['p50']/1000:.2f}ms p99={l['p99']/1000:.2f}ms p99.9={l['p999']/1000:.2f}ms "
      f"max={l['max']/1000:.2f}ms rss={o['node_rss_bytes']/2**20:.0f}MiB "
      f"node: cpu={ticks}ticks minflt={minflt} majflt={majflt} cs={vcs}+{ivcs}inv")
PY
done
echo "==> done; JSON in $out"
