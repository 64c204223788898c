#!/usr/bin/env bash
# Two builds of the node side by side in one run: VerifyEnvelope and SubmitEvent (fresh
# inceptions), closed loop at 64 in flight, against a fresh node of each build in turn,
# alternating BEFORE, AFTER, BEFORE, AFTER, ... so that drift of the machine falls on both.
# One load generator (the atp-bench of AFTER) drives both. Every node runs with the per-peer
# rate limit off (all traffic comes from one loopback peer). docs/benchmarks.md records it.
#
#   bash crates/atp-bench/scripts/before-after.sh BEFORE_BIN_DIR AFTER_BIN_DIR [ROUNDS] [DURATION]
#
# A *_BIN_DIR holds a release `atp-node` (and AFTER's also `atp-bench`), for example built at
# two commits with `cargo build --release -p atp-node -p atp-bench` and copied out.
# SCENARIOS="submit-inception" runs only the named scenarios.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
before="${1:?BEFORE_BIN_DIR}"
after="${2:?AFTER_BIN_DIR}"
rounds="${3:-3}"
duration="${4:-10s}"
scenarios="${SCENARIOS:-verify-envelope submit-inception}"
out=target/atp-bench/before-after
mkdir -p "$out"
bench="$after/atp-bench"

node_pid=""
data=""
stop_node() {
    if [[ -n "$node_pid" ]]; then
        kill "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
        node_pid=""
    fi
    [[ -z "$data" ]] || rm -rf "$data"
    data=""
}
trap stop_node EXIT

start_node() {
    local bin="$1" tag="$2"
    data="$(mktemp -d)"
    "$bin/atp-node" --data-dir "$data/node" --listen 127.0.0.1:0 --log warn --rate-limit 0 \
        --replay-cache-capacity 5000000 \
        > "$out/$tag.stdout" 2> "$out/$tag.log" &
    node_pid=$!
    for _ in $(seq 100); do
        grep -q '^listening: ' "$out/$tag.stdout" 2>/dev/null && break
        sleep 0.2
    done
    endpoint="http://$(sed -n 's/^listening: //p' "$out/$tag.stdout")"
    [[ "$endpoint" != "http://" ]] || { echo "the $tag node did not start:"; cat "$out/$tag.log"; exit 1; }
}

summary() {
    python3 - "$1" "$2" <<'PY'
import json, sys
o = json.load(open(sys.argv[1])); r = o["report"]; l = r["latency_us"]
print(f"    {sys.argv[2]:<28} {r['throughput_per_s']:>8.1f}/s errors={r['errors']} "
      f"p50={l['p50']/1000:.2f}ms p99={l['p99']/1000:.2f}ms max={l['max']/1000:.2f}ms "
      f"rss={o['node_rss_bytes']/2**20:.0f}MiB")
PY
}

echo "==> $rounds rounds of $duration per scenario; load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
    for side in before after; do
        bin="$before"; [[ "$side" == after ]] && bin="$after"
        for scenario in $scenarios; do
            tag="$side-$scenario-$round"
            start_node "$bin" "$tag"
            pool=120000; [[ "$scenario" == submit-inception ]] && pool=40000
            "$bench" run --endpoint "$endpoint" --node-pid "$node_pid" --json \
                --scenario "$scenario" --concurrency 64 --duration "$duration" --pool "$pool" \
                > "$out/$tag.json"
            summary "$out/$tag.json" "round $round $side $scenario"
            stop_node
        done
    done
done

python3 - "$out" "$rounds" $scenarios <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
print("==> medians over the rounds (throughput, p50, p99)")
for scenario in sys.argv[3:]:
    med = {}
    for side in ("before", "after"):
        rs = [json.load(open(f"{out}/{side}-{scenario}-{i}.json"))["report"] for i in range(1, rounds + 1)]
        med[side] = (statistics.median(r["throughput_per_s"] for r in rs),
                     statistics.median(r["latency_us"]["p50"] for r in rs) / 1000,
                     statistics.median(r["latency_us"]["p99"] for r in rs) / 1000)
        t, p50, p99 = med[side]
        print(f"    {scenario:<17} {side:<6} {t:>8.1f}/s p50={p50:.2f}ms p99={p99:.2f}ms")
    ratio = med["after"][0] / med["before"][0]
    print(f"    {scenario:<17} after/before throughput {ratio:.3f}")
PY
