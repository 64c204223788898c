#!/usr/bin/env bash
# Audit on versus off (docs/benchmarks.md, "Audit trail"), side by side in one run on this
# machine: a release `atp-node` (built with the `audit` feature) on a fresh SQLite data
# directory, started without `[audit]` and then with it, twice in turn (off, on, off, on) so that
# drift of the machine shows. Against each: SubmitEvent of fresh inceptions and IssueCredential,
# closed loop, 64 in flight. With `[audit]`, every inception is stored with its
# `key_event.accepted` event and every issuance with its `authn.succeeded` and
# `credential.issued` events; the script counts the stored events afterwards, to show the trail
# was really written. Then a report over 1M events: the node's store is filled with 1,000,000
# canonical audit events over 30 days (written by Python's sqlite3 while the node is stopped),
# the node seals them, and `atp compliance report` is timed for SOC 2 and HIPAA. JSON results go
# to target/atp-bench/audit/.
#
#   bash crates/atp-bench/scripts/audit.sh [DURATION]     # default 10s per run
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
duration="${1:-10s}"
out=target/atp-bench/audit
mkdir -p "$out"

[[ -n "${SKIP_BUILD:-}" ]] || cargo build --quiet --release -p atp-node -p atp-bench -p atp-cli --features atp-node/audit
bin="${CARGO_TARGET_DIR:-target}/release"

work="$(mktemp -d)"
node_pid=""
cleanup() {
    [[ -z "$node_pid" ]] || kill "$node_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
printf '[audit]\n' > "$work/audit.toml"
# A report is one request: over 1M events it needs more than the default 10 s deadline.
printf '[audit]\n[limits]\nrequest_timeout = "120s"\n' > "$work/report.toml"
: > "$work/plain.toml"

run() { # name, atp-bench run arguments...
    local name="$1"; shift
    "$bin/atp-bench" run --endpoint "$endpoint" --node-pid "$node_pid" --json "$@" > "$out/$name.json"
    python3 - "$out/$name.json" "$name" <<'PY'
import json, sys
o = json.load(open(sys.argv[1])); r = o["report"]; l = r["latency_us"]
print(f"    {sys.argv[2]:<28} {r['throughput_per_s']:8.1f}/s ok={r['successes']} errors={r['errors']} "
      f"p50={l['p50']/1000:.2f}ms p99={l['p99']/1000:.2f}ms")
PY
}

round() { # round number, mode (off|on)
    local n="$1" mode="$2" config="$work/plain.toml"
    [[ "$mode" == on ]] && config="$work/audit.toml"
    local data="$work/data-$n-$mode"
    "$bin/atp-node" --config "$config" --data-dir "$data" --listen 127.0.0.1:0 --log warn \
        --rate-limit 0 > "$work/node.stdout" 2> "$out/node-$n-$mode.log" &
    node_pid=$!
    for _ in $(seq 100); do
        grep -q '^listening: ' "$work/node.stdout" 2>/dev/null && break
        sleep 0.2
    done
    local addr token_file
    addr="$(sed -n 's/^listening: //p' "$work/node.stdout")"
    token_file="$(sed -n 's/^admin token: //p' "$work/node.stdout")"
    [[ -n "$addr" ]] || { echo "the node did not start:"; cat "$out/node-$n-$mode.log"; exit 1; }
    endpoint="http://$addr"
    echo "==> round $n, audit $mode ($(cut -d' ' -f1-3 /proc/loadavg))"
    run "submit-inception-$mode-$n" --scenario submit-inception --concurrency 64 \
        --duration "$duration" --pool 40000
    run "issue-credential-$mode-$n" --scenario issue-credential --concurrency 64 \
        --duration "$duration" --admin-token-file "$token_file"
    kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
    python3 - "$data/atp.sqlite3" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT code, COUNT(*) FROM audit_events GROUP BY code ORDER BY code").fetchall()
sealed = db.execute("SELECT COUNT(*) FROM audit_events WHERE batch IS NOT NULL").fetchone()[0]
print("    stored events: " + (", ".join(f"{c} {n}" for c, n in rows) or "none") + f"; sealed {sealed}")
PY
}

round 1 off
round 1 on
round 2 off
round 2 on

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def rate(name): return json.load(open(os.path.join(out, name + ".json")))["report"]["throughput_per_s"]
for scenario in ("submit-inception", "issue-credential"):
    off = [rate(f"{scenario}-off-{n}") for n in (1, 2)]
    on = [rate(f"{scenario}-on-{n}") for n in (1, 2)]
    print(f"==> {scenario}: off {off[0]:.0f}, {off[1]:.0f}/s; on {on[0]:.0f}, {on[1]:.0f}/s; "
          f"on/off {sum(on)/sum(off):.3f}")
PY
# --- A report over 1M audit events -----------------------------------------------------------
events="${REPORT_EVENTS:-1000000}"
data="$work/report-data"
start_audit_node() {
    "$bin/atp-node" --config "$work/report.toml" --data-dir "$data" --listen 127.0.0.1:0 --log warn \
        --rate-limit 0 > "$work/node.stdout" 2> "$out/node-report.log" &
    node_pid=$!
    for _ in $(seq 100); do
        grep -q '^listening: ' "$work/node.stdout" 2>/dev/null && break
        sleep 0.2
    done
    endpoint="http://$(sed -n 's/^listening: //p' "$work/node.stdout")"
    token_file="$(sed -n 's/^admin token: //p' "$work/node.stdout")"
}
start_audit_node
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
echo "==> writing $events audit events into the stopped node's store"
python3 - "$data/atp.sqlite3" "$events" <<'PY'
import hashlib, json, os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
start = int(time.time() * 1000) - 30 * 86_400_000
codes = [("authn.succeeded", "authentication", "SUCCESS"), ("key_event.accepted", "identity", "SUCCESS"),
         ("authz.denied", "authorization", "DENIED"), ("authn.failed", "authentication", "FAILURE"),
         ("credential.issued", "credential", "SUCCESS"), ("role_bindings.changed", "admin", "SUCCESS")]
def rows():
    for i in range(n):
        code, kind, result = codes[i % 97 % len(codes)]
        t = start + i * (30 * 86_400_000 // n)
        r = os.urandom(10)
        h = (t.to_bytes(8, "big")[2:] + bytes([0x70 | r[0] & 15]) + r[1:2] + bytes([0x80 | r[2] & 63]) + r[3:]).hex()
        ev = {"actor": {"id": "admin", "kind": "admin"}, "client": {"ip": "hmac-sha256:" + "ab" * 32},
              "code": code, "id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
              "outcome": {"result": result, **({"reason": "PERMISSION_DENIED"} if result != "SUCCESS" else {})},
              "rule": "bench", "target": [{"id": f"item-{i}", "kind": "test"}], "time": t, "type": kind}
        body = json.dumps(ev, sort_keys=True, separators=(",", ":")).encode()
        yield (t, code, body, hashlib.sha256(b"atp/audit-event/1\n" + body).digest())
db.executemany("INSERT INTO audit_events (time_ms, code, body, digest) VALUES (?, ?, ?, ?)", rows())
db.commit()
print(f"    {db.execute('SELECT COUNT(*) FROM audit_events').fetchone()[0]} events stored, "
      f"{os.path.getsize(sys.argv[1]) / 2**20:.0f} MiB")
PY
start_audit_node
echo "==> node at $endpoint; waiting for the sealer"
sealed_at=$(date +%s.%N)
python3 - "$data/atp.sqlite3" "$events" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
for _ in range(600):
    sealed = db.execute("SELECT COUNT(*) FROM audit_events WHERE batch IS NOT NULL").fetchone()[0]
    if sealed >= n:
        break
    time.sleep(0.5)
print(f"    sealed {sealed} events")
PY
echo "    sealing took $(python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$sealed_at") s"
home="$work/home"
for framework in soc2 hipaa; do
    begin=$(date +%s.%N)
    ATP_NODE="$endpoint" ATP_HOME="$home" ATP_ADMIN_TOKEN_FILE="$token_file" \
        "$bin/atp" compliance report --framework "$framework" --from 0 --to 4000000000000 \
        --out "$out/report-$framework.json"
    end=$(date +%s.%N)
    python3 - "$out/report-$framework.json" "$begin" "$end" "$framework" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["credentialSubject"]
print(f"==> {sys.argv[4]} report over {r['events']} events: {float(sys.argv[3]) - float(sys.argv[2]):.1f} s "
      f"(populations {[c['population'] for c in r['controls']]})")
PY
done
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
echo "==> done; JSON in $out"
