#!/usr/bin/env bash
# The one command that installs what the tests need and runs every test.
#
#   bash scripts/test.sh
#
# Honours CARGO_TARGET_DIR. Test vectors are read from ../shared/vectors (override with
# ATP_TEST_VECTORS); see README.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- System packages (Debian/Ubuntu) --------------------------------------------------------
# List here any Debian package a test needs.
# prometheus: `promtool` and the real Prometheus of the enterprise metrics tests.
# postgresql: the real PostgreSQL server of the enterprise HA tests (initdb, pg_ctl, psql).
DEB_PACKAGES=(prometheus postgresql)

if ((${#DEB_PACKAGES[@]} > 0)); then
    missing=()
    for pkg in "${DEB_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} > 0)); then
        echo "==> installing Debian packages: ${missing[*]}"
        sudo_cmd=()
        if [[ $(id -u) -ne 0 ]]; then
            if ! command -v sudo >/dev/null; then
                echo "error: need root or sudo to install: ${missing[*]}" >&2
                exit 1
            fi
            sudo_cmd=(sudo)
        fi
        "${sudo_cmd[@]}" apt-get update
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    fi
fi

# --- npm packages ---------------------------------------------------------------------------
# List here any npm package a test needs (installed into ./node_modules).
# oidc-provider: the real OpenID provider of the enterprise SSO tests (8.x runs on Node 20).
NPM_PACKAGES=(oidc-provider@8.8.1)

if ((${#NPM_PACKAGES[@]} > 0)); then
    missing=()
    for pkg in "${NPM_PACKAGES[@]}"; do
        name="${pkg%@*}"          # strip a version: name@1.2.3, @scope/name@1.2.3
        [[ -z "$name" ]] && name="$pkg"   # @scope/name without a version
        if [[ ! -d "node_modules/$name" ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} > 0)); then
        echo "==> installing npm packages: ${missing[*]}"
        npm install --no-save "${missing[@]}"
    fi
fi

# --- Python -----------------------------------------------------------------------------------
# A virtual environment at target/venv, created only when a requirements file exists. None yet.
PY_REQUIREMENTS=(requirements-test.txt)
VENV_DIR="target/venv"

for req in "${PY_REQUIREMENTS[@]}"; do
    if [[ -f "$req" ]]; then
        if [[ ! -x "$VENV_DIR/bin/python" ]]; then
            echo "==> creating Python venv in $VENV_DIR"
            python3 -m venv "$VENV_DIR"
        fi
        echo "==> installing Python requirements from $req"
        "$VENV_DIR/bin/python" -m pip install --quiet -r "$req"
    fi
done
if [[ -x "$VENV_DIR/bin/python" ]]; then
    export PATH="$PWD/$VENV_DIR/bin:$PATH"
fi

# --- Tests ----------------------------------------------------------------------------------
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    echo "==> using CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
fi

echo "==> cargo test --workspace --all-targets"
cargo test --workspace --all-targets

echo "==> cargo test --workspace --doc"
cargo test --workspace --doc

echo "==> cargo test -p atp-crypto --features legacy-dilithium"
cargo test -p atp-crypto --features legacy-dilithium

echo "==> cargo test -p atp-node --features enterprise (the enterprise edition)"
cargo test -p atp-node --features enterprise

echo "==> all tests passed"
