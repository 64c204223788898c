#!/usr/bin/env bash
# The HA figures of docs/benchmarks.md, side by side in one run on this machine:
#   1. one release `atp-node` on its embedded SQLite store;
#   2. three release `atp-node`s with one identity on one PostgreSQL (Debian's package, a fresh
#      cluster in a temporary directory, PostgreSQL's default durability), the load spread
#      round-robin over the three.
#      Then VerifyEnvelope again, through one of the three nodes only.
#   3. the same three nodes restarted with `kel_cache_max_staleness_ms = 0`: no change feed,
#      every read of a cached key event log re-checks the stored head (the exact mode).
# Against each: VerifyEnvelope (closed loop; on the cluster every new nonce is also recorded in
# PostgreSQL), SubmitEvent of fresh inceptions (not in 3), and cached Resolve. JSON results go to
# target/atp-bench/ha/. Everything runs on this machine's cores: the nodes, PostgreSQL and the
# load generator share them.
#
#   bash crates/atp-bench/scripts/ha-cluster.sh [DURATION]     # default 10s per run
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
duration="${1:-10s}"
out=target/atp-bench/ha
mkdir -p "$out"

[[ -n "${SKIP_BUILD:-}" ]] || cargo build --quiet --release -p atp-node -p atp-bench --features atp-node/ha
bin="${CARGO_TARGET_DIR:-target}/release"
source crates/atp-bench/scripts/pg-server.sh

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pg_stop
    rm -rf "$work"
}
trap cleanup EXIT

start_node() { # name, extra args...: starts a node, sets $endpoint and $node_pid
    local name="$1"; shift
    "$bin/atp-node" --data-dir "$work/$name/data" --listen 127.0.0.1:0 --log warn \
        --rate-limit 0 --replay-cache-capacity 5000000 "$@" > "$work/$name.stdout" 2> "$out/$name.log" &
    node_pid=$!
    pids+=("$node_pid")
    for _ in $(seq 150); do
        grep -q '^listening: ' "$work/$name.stdout" 2>/dev/null && break
        sleep 0.2
    done
    local addr
    addr="$(sed -n 's/^listening: //p' "$work/$name.stdout")"
    [[ -n "$addr" ]] || { echo "node $name did not start:"; cat "$out/$name.log"; exit 1; }
    endpoint="http://$addr"
}

cpu_ticks() { # pids...: their user+system CPU ticks, summed
    local total=0 pid fields
    for pid in "$@"; do
        fields="$(cut -d')' -f2 "/proc/$pid/stat" 2>/dev/null)" || continue
        set -- $fields
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

cpu_snapshot() { # "nodes postgres machine" CPU ticks (machine: every CPU's user+nice+system+irq+softirq)
    local machine
    machine="$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)"
    echo "$(cpu_ticks "${pids[@]}") $(cpu_ticks $(pgrep -u postgres || true)) $machine"
}

run() { # name, atp-bench run arguments...
    local name="$1"; shift
    echo "==> $name ($(cut -d' ' -f1-3 /proc/loadavg))"
    # A file of the run's own: the previous run's cannot be mistaken for this one's.
    local err="$work/$name.err"
    "$bin/atp-bench" run --json --duration "$duration" "$@" > "$out/$name.json" 2> "$err" &
    local bench=$!
    # CPU is counted over the measured window: from the end of the warm-up to the end.
    until grep -q 'load for' "$err" 2>/dev/null || ! kill -0 "$bench" 2>/dev/null; do sleep 0.05; done
    sleep 2
    local before after
    before="$(cpu_snapshot)"
    wait "$bench" || { cat "$err"; exit 1; }
    after="$(cpu_snapshot)"
    python3 - "$out/$name.json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["report"]; l = r["latency_us"]
print(f"    {r['throughput_per_s']:.1f}/s ok={r['successes']} errors={r['errors']} {r['errors_by_code']} "
      f"p50={l['p50']/1000:.2f}ms p99={l['p99']/1000:.2f}ms max={l['max']/1000:.2f}ms")
b, a, hz = [int(x) for x in sys.argv[2].split()], [int(x) for x in sys.argv[3].split()], int(sys.argv[4])
nodes, pg, machine = [(y - x) * 1e6 / hz / max(r["successes"], 1) for x, y in zip(b, a)]
print(f"    CPU per request: nodes {nodes:.0f} us, PostgreSQL {pg:.0f} us, "
      f"everything else (the load generator) {machine - nodes - pg:.0f} us; machine {machine:.0f} us")
PY
}

scenarios() { # prefix, endpoint arguments...
    local prefix="$1"; shift
    run "$prefix-verify-envelope" "$@" --scenario verify-envelope --concurrency 64 --pool 120000
    run "$prefix-submit-inception" "$@" --scenario submit-inception --concurrency 64 --pool 40000
    run "$prefix-resolve-cached" "$@" --scenario resolve-cached --concurrency 64
}

# --- 1. One node on SQLite --------------------------------------------------------------------
mkdir -p "$work/single"
start_node single
echo "==> single node (SQLite) at $endpoint"
scenarios single --endpoint "$endpoint"
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true

# --- 2. Three nodes on one PostgreSQL ---------------------------------------------------------
pg_start "$work/pg"
config="$pg_config"
endpoints=()
for name in a b c; do
    mkdir -p "$work/$name/data"
    if [[ "$name" != a ]]; then
        cp "$work/a/data/node.key" "$work/a/data/node.next.key" "$work/a/data/node.kel.json" \
            "$work/$name/data/"
    fi
    start_node "$name" --config "$config"
    endpoints+=(--endpoint "$endpoint")
done
echo "==> three nodes on PostgreSQL ${pg_bin%/bin} at ${endpoints[*]}"
scenarios cluster "${endpoints[@]}"
# The same envelopes through one of the three nodes only: what the database's replay record
# costs without three processes sharing the cores.
run "cluster-one-node-verify-envelope" "${endpoints[@]:0:2}" --scenario verify-envelope --concurrency 64 --pool 120000
# --- 3. The same nodes, exact head checks instead of the change feed ---------------------------
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()
exact="$work/ha-exact.toml"
{ cat "$config"; echo "kel_cache_max_staleness_ms = 0"; } > "$exact"
endpoints=()
for name in a b c; do
    start_node "$name" --config "$exact"
    endpoints+=(--endpoint "$endpoint")
done
echo "==> the same three nodes, kel_cache_max_staleness_ms = 0 (head checks)"
run "cluster-exact-verify-envelope" "${endpoints[@]}" --scenario verify-envelope --concurrency 64 --pool 120000
run "cluster-exact-resolve-cached" "${endpoints[@]}" --scenario resolve-cached --concurrency 64
size="$(pg_sql "SELECT pg_database_size('atp'), (SELECT COUNT(*) FROM identities)")"
echo "==> database: ${size%%|*} bytes for ${size##*|} identities"
echo "==> done; JSON in $out"
