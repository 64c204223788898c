#!/usr/bin/env bash
# Scale figures of docs/benchmarks.md: for each N, a fresh release `atp-node` (rate limit off)
# is populated with N identities (`atp-bench populate`), then measured:
#   - Resolve p99, open loop at a fixed rate (the same at every N), DIDs drawn uniformly from a
#     sample of the node's identities;
#   - SubmitEvent throughput of fresh inceptions, closed loop;
#   - store bytes per identity (the data directory, WAL included, divided by N);
#   - node RSS (VmRSS) after the runs.
# JSON results go to target/atp-bench/scale/ (target/atp-bench/scale-postgres/ with STORE=postgres).
#
#   bash crates/atp-bench/scripts/scale.sh 10000 100000 [1000000]
#   STORE=postgres bash crates/atp-bench/scripts/scale.sh 10000 1000000
#
# STORE=postgres: the node runs with `[ha]` on a fresh PostgreSQL for each N (pg-server.sh,
# PostgreSQL's default durability), and the store bytes are the database's size
# (pg_database_size, WAL excluded) right after populating, with the largest tables listed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
store="${STORE:-sqlite}"
case "$store" in
    sqlite) out=target/atp-bench/scale; features=() ;;
    postgres) out=target/atp-bench/scale-postgres; features=(--features atp-node/ha)
        source crates/atp-bench/scripts/pg-server.sh ;;
    *) echo "STORE must be sqlite or postgres"; exit 1 ;;
esac
mkdir -p "$out"
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --quiet --release -p atp-node -p atp-bench "${features[@]}"
bin="${CARGO_TARGET_DIR:-target}/release"
resolve_rate="${RESOLVE_RATE:-500}"
duration="${DURATION:-10s}"

for n in "$@"; do
    data="$(mktemp -d)"
    config=()
    if [[ "$store" == postgres ]]; then
        pg_start "$data/pg"
        config=(--config "$pg_config")
    fi
    "$bin/atp-node" --data-dir "$data/node" --listen 127.0.0.1:0 --log warn --rate-limit 0 \
        "${config[@]}" > "$out/node-$n.stdout" 2> "$out/node-$n.log" &
    node_pid=$!
    trap 'kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; [[ "$store" != postgres ]] || pg_stop; rm -rf "$data"' EXIT
    for _ in $(seq 100); do
        grep -q '^listening: ' "$out/node-$n.stdout" 2>/dev/null && break
        sleep 0.2
    done
    endpoint="http://$(sed -n 's/^listening: //p' "$out/node-$n.stdout")"
    echo "==> N=$n: node pid $node_pid at $endpoint; load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin/atp-bench" populate --endpoint "$endpoint" --count "$n" --concurrency 64 \
        --data-dir "$data/node" --node-pid "$node_pid" --json > "$out/populate-$n.json"
    cat "$out/populate-$n.json"
    if [[ "$store" == postgres ]]; then
        echo "==> N=$n: database $(pg_sql "SELECT pg_database_size('atp')") bytes for $(pg_sql "SELECT COUNT(*) FROM identities") identities; largest relations (bytes, with indexes and TOAST):"
        pg_sql "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 2 DESC LIMIT 6" | sed 's/^/    /'
    fi
    echo "==> N=$n: resolve-uncached, open loop at $resolve_rate/s"
    "$bin/atp-bench" run --endpoint "$endpoint" --scenario resolve-uncached --rate "$resolve_rate" \
        --duration "$duration" --agents 1 --node-pid "$node_pid" > "$out/resolve-$n.txt"
    cat "$out/resolve-$n.txt"
    echo "==> N=$n: submit-inception, closed loop"
    "$bin/atp-bench" run --endpoint "$endpoint" --scenario submit-inception --concurrency 64 \
        --duration "$duration" --pool 40000 --node-pid "$node_pid" > "$out/submit-$n.txt"
    cat "$out/submit-$n.txt"
    echo "==> N=$n: data directory $(du -sb "$data/node" | cut -f1) bytes; $(grep -E 'VmRSS|VmHWM' /proc/$node_pid/status | tr -s ' \n' ' ')"
    kill "$node_pid"; wait "$node_pid" 2>/dev/null || true
    echo "==> N=$n: data directory after a clean stop: $(du -sb "$data/node" | cut -f1) bytes"
    [[ "$store" != postgres ]] || pg_stop
    rm -rf "$data"
    trap - EXIT
done
