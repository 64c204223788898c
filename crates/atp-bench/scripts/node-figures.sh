#!/usr/bin/env bash
# The node figures of docs/benchmarks.md, in one run on this machine: starts a release
# `atp-node` on 127.0.0.1:0 with a fresh data directory (per-peer rate limit off: all traffic
# comes from one loopback peer), then runs, one after the other:
#   1. the in-process baseline (`atp-bench raw`, composite and envelope verify on every core);
#   2. VerifyEnvelope, closed loop (throughput), then open loop at half that rate (p99);
#   3. SubmitEvent of fresh inceptions, closed loop;
#   4. Resolve, cached (hot set) and uncached (uniform over the node's identities);
#   5. IssueCredential and VerifyCredential; 6. GetTrust;
# and reports the node's RSS. JSON results go to target/atp-bench/node/.
#
#   bash crates/atp-bench/scripts/node-figures.sh [DURATION]     # default 10s per run
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
duration="${1:-10s}"
out=target/atp-bench/node
mkdir -p "$out"

[[ -n "${SKIP_BUILD:-}" ]] || cargo build --quiet --release -p atp-node -p atp-bench
bin="${CARGO_TARGET_DIR:-target}/release"

data="$(mktemp -d)"
node_log="$out/node.log"
"$bin/atp-node" --data-dir "$data/node" --listen 127.0.0.1:0 --log warn \
    --rate-limit 0 --replay-cache-capacity 5000000 > "$out/node.stdout" 2> "$node_log" &
node_pid=$!
trap 'kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do
    grep -q '^listening: ' "$out/node.stdout" 2>/dev/null && break
    sleep 0.2
done
addr="$(sed -n 's/^listening: //p' "$out/node.stdout")"
token_file="$(sed -n 's/^admin token: //p' "$out/node.stdout")"
[[ -n "$addr" ]] || { echo "the node did not start:"; cat "$node_log"; exit 1; }
endpoint="http://$addr"
echo "==> node pid $node_pid at $endpoint; load $(cut -d' ' -f1-3 /proc/loadavg)"

run() {
    local name="$1"; shift
    echo "==> $name ($(cut -d' ' -f1-3 /proc/loadavg))"
    "$bin/atp-bench" run --endpoint "$endpoint" --node-pid "$node_pid" --json "$@" > "$out/$name.json"
    python3 - "$out/$name.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1])); r = o["report"]; l = r["latency_us"]
print(f"    {r['throughput_per_s']:.1f}/s ok={r['successes']} errors={r['errors']} {r['errors_by_code']} "
      f"p50={l['p50']/1000:.2f}ms p90={l['p90']/1000:.2f}ms p99={l['p99']/1000:.2f}ms "
      f"p99.9={l['p999']/1000:.2f}ms max={l['max']/1000:.2f}ms rss={o['node_rss_bytes']/2**20:.0f}MiB")
for b in o["baseline"]:
    print(f"    baseline {b['operation']} x{b['threads']}: {b['throughput_per_s']:.1f}/s")
for op, ratio in o["ratio_to_baseline"]:
    print(f"    ratio to in-process {op}: {ratio:.3f}")
for n in r["notes"]:
    print(f"    note: {n}")
PY
}

echo "==> in-process baseline, every core"
"$bin/atp-bench" raw --operation composite-verify --operation envelope-verify --duration 5s \
    --json > "$out/raw.json"
python3 - "$out/raw.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1])):
    print(f"    {r['operation']} x{r['threads']}: {r['throughput_per_s']:.1f}/s")
PY

run verify-envelope-closed --scenario verify-envelope --concurrency 64 --duration "$duration" \
    --pool 120000 --baseline-threads "$(nproc)"
half="$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["report"]["throughput_per_s"]/2))' "$out/verify-envelope-closed.json")"
run verify-envelope-open-half --scenario verify-envelope --rate "$half" --duration "$duration"
run submit-inception --scenario submit-inception --concurrency 64 --duration "$duration" --pool 40000
run resolve-cached --scenario resolve-cached --concurrency 64 --duration "$duration"
run resolve-uncached --scenario resolve-uncached --concurrency 64 --duration "$duration"
run verify-credential --scenario verify-credential --concurrency 64 --duration "$duration" \
    --admin-token-file "$token_file"
run issue-credential --scenario issue-credential --concurrency 64 --duration "$duration" \
    --admin-token-file "$token_file"
# TrustService/GetTrust: errors (UNIMPLEMENTED) until the node serves the trust service.
run get-trust --scenario get-trust --concurrency 64 --duration "$duration"
echo "==> done; JSON in $out"
