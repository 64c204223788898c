#!/usr/bin/env bash
# ATP's composite sign/verify against its peers, measured in one run on this machine:
#   - Python `cryptography` (OpenSSL's ML-DSA-65 and Ed25519), the composite built from its
#     primitives as examples/python does (keys parsed once, outside the timed loop);
#   - @noble/post-quantum ML-DSA-65 alone on Node.js (the TypeScript ATP peer's library).
# Everything runs single-threaded, one after the other, so each gets a core of its own.
#
#   bash benches/peers/run.sh [SECONDS]      # default 5 s per measurement
#
# Installs the peers into target/peers/ (a venv and a node_modules); needs python3 (with venv),
# node and npm. Prints a table and writes target/peers/results.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds="${1:-5}"
out=target/peers
mkdir -p "$out/node"

# Pinned versions of the peers.
CRYPTOGRAPHY_VERSION="48.0.0"
NOBLE_VERSION="0.7.1"

if [[ ! -x "$out/venv/bin/python" ]]; then
    echo "==> python venv in $out/venv"
    python3 -m venv "$out/venv"
fi
if ! "$out/venv/bin/python" -c "import cryptography, sys; sys.exit(cryptography.__version__ != '$CRYPTOGRAPHY_VERSION')" 2>/dev/null; then
    echo "==> pip install cryptography==$CRYPTOGRAPHY_VERSION"
    "$out/venv/bin/pip" install --quiet "cryptography==$CRYPTOGRAPHY_VERSION"
fi
if [[ ! -f "$out/node/node_modules/@noble/post-quantum/package.json" ]] \
    || ! grep -q "\"version\": \"$NOBLE_VERSION\"" "$out/node/node_modules/@noble/post-quantum/package.json"; then
    echo "==> npm install @noble/post-quantum@$NOBLE_VERSION"
    echo '{"name":"atp-peers-bench","private":true,"type":"module"}' > "$out/node/package.json"
    (cd "$out/node" && npm install --silent --no-audit --no-fund "@noble/post-quantum@$NOBLE_VERSION")
fi
# Node resolves imports next to the script: run a copy that sits beside its node_modules.
cp benches/peers/noble_mldsa65.mjs "$out/node/"

[[ -n "${SKIP_BUILD:-}" ]] || echo "==> cargo build --release -p atp-bench"
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --quiet --release -p atp-bench
bench="${CARGO_TARGET_DIR:-target}/release/atp-bench"

echo "==> load before measuring: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> ATP composite (atp-crypto), 1 thread, ${seconds} s each"
"$bench" raw --threads 1 --operation composite-sign --operation composite-verify \
    --warmup 1s --duration "${seconds}s" --json > "$out/atp.json"
echo "==> Python cryptography composite, ${seconds} s each"
"$out/venv/bin/python" benches/peers/python_composite.py "$seconds" > "$out/python.json"
echo "==> noble ML-DSA-65 on Node.js, ${seconds} s each"
node "$out/node/noble_mldsa65.mjs" "$seconds" > "$out/noble.json"
echo "==> load after measuring: $(cut -d' ' -f1-3 /proc/loadavg)"

"$out/venv/bin/python" - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
atp = {r["operation"]: r for r in json.loads((out / "atp.json").read_text())}
py = json.loads((out / "python.json").read_text())
noble = json.loads((out / "noble.json").read_text())
targets = {"sign": (8, 50), "verify": (4, 50)}
rows = []
for op, key in (("sign", "composite-sign"), ("verify", "composite-verify")):
    for basis, a_key, p_key in (("cpu", "per_cpu_second", f"{op}_per_cpu_s"),
                                ("wall", "throughput_per_s", f"{op}_per_s")):
        a = atp[key][a_key]
        rows.append({
            "operation": op, "basis": basis,
            "atp_composite": a, "python_composite": py[p_key], "noble_mldsa65": noble[p_key],
            "ratio_to_python": a / py[p_key], "ratio_to_noble": a / noble[p_key],
        })
print()
print(f"peers: {py['peer']} {py['cryptography']} ({py['openssl']}); {noble['peer']} (Node.js {noble['node']})")
print("per CPU-second of the measuring thread (cpu) and per wall-clock second (wall); 1 thread each")
print(f"{'op':<7}{'basis':<6} {'ATP composite':>14} {'Python composite':>17} {'noble ML-DSA-65':>16} {'vs Python':>10} {'vs noble':>9}")
for r in rows:
    t_py, t_noble = targets[r["operation"]]
    met = lambda ratio, t: "met" if ratio >= t else "NOT met"
    print(f"{r['operation']:<7}{r['basis']:<6} {r['atp_composite']:>12.1f}/s {r['python_composite']:>15.1f}/s "
          f"{r['noble_mldsa65']:>14.1f}/s {r['ratio_to_python']:>9.1f}x {r['ratio_to_noble']:>8.1f}x"
          f"   (targets {t_py}x: {met(r['ratio_to_python'], t_py)}, {t_noble}x: {met(r['ratio_to_noble'], t_noble)})")
(out / "results.json").write_text(json.dumps({"atp": list(atp.values()), "python": py, "noble": noble, "rows": rows}, indent=2))
print(f"\nwritten: {out / 'results.json'}")
PY
