"""An independent ATP agent in Python: its own did:atp, registered with a node, exchanging
verified envelopes with a Rust SDK agent.

    python agent.py hello HOST:PORT PROTO_DIR WORKDIR RUST_DID
    python agent.py open  HOST:PORT PROTO_DIR WORKDIR

Everything protocol-level is done here, from docs/protocol.md, with `cryptography` (ML-DSA-65
and Ed25519) and `atp_protocol.py`; the gRPC stubs are generated from PROTO_DIR at run time
(grpcio-tools), as client.py does.

`hello` creates the Python agent's identity (composite ML-DSA-65 + Ed25519 key and committed
next key; the seeds go to WORKDIR/python_agent.json, mode 0600), registers its inception with
`IdentityService.SubmitEvent`, and seals an envelope to RUST_DID into WORKDIR/to_rust.bin.

`open` reads WORKDIR/to_python.bin (the Rust agent's reply) and verifies it as the Rust SDK
does: structure, lifetime and time window, audience, the sender's key event log fetched with
`IdentityService.GetKeyEventLog` and verified here, the key's validity at the issue time, and
the composite signature (both components). A copy with one payload bit flipped must fail.

Prints `ok: …` lines; exits non-zero on any failure. Used by
crates/atp-sdk/tests/sdk/python_agent.rs.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import grpc
from cryptography.exceptions import InvalidSignature

sys.path.insert(0, str(Path(__file__).resolve().parent))
import atp_protocol as atp  # noqa: E402
from client import generate  # noqa: E402

TIMEOUT = 10.0
MAX_SKEW_MS = 60_000
MAX_LIFETIME_MS = 300_000


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339(ms: int) -> str:
    t = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_ts(ts: str) -> int:
    """RFC 3339 UTC `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` to Unix milliseconds (§B2.2)."""
    assert ts.endswith("Z") and ts[10] == "T", f"timestamp {ts!r}"
    main, _, frac = ts[:-1].partition(".")
    t = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    ms = int(frac[:3].ljust(3, "0")) if frac else 0
    return int(t.timestamp()) * 1000 + ms


def stubs(proto_dir: Path, gen: str):
    generate(proto_dir, Path(gen))
    sys.path.insert(0, gen)
    return (importlib.import_module("atp.v1.identity_pb2"),
            importlib.import_module("atp.v1.identity_pb2_grpc"))


def seal(did: str, key_seq: int, key: atp.CompositeKey, recipient: str, payload: bytes) -> bytes:
    issued = now_ms()
    signed = atp.envelope_signed_bytes(did, key_seq, [recipient], issued, issued + 120_000,
                                       os.urandom(16), "text/plain", payload)
    sig = key.sign(signed, atp.CTX_ENVELOPE)
    return signed + struct.pack(">I", len(sig)) + sig


def hello(addr: str, proto_dir: Path, work: Path, rust_did: str) -> None:
    with tempfile.TemporaryDirectory(prefix="atp-py-agent-") as gen:
        identity_pb2, identity_grpc = stubs(proto_dir, gen)
        seeds = os.urandom(64), os.urandom(64)
        current, nxt = atp.CompositeKey(seeds[0]), atp.CompositeKey(seeds[1])
        did, icp = atp.incept(current, nxt, rfc3339(now_ms()))
        with grpc.insecure_channel(addr) as channel:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
            identity = identity_grpc.IdentityServiceStub(channel)
            answer = identity.SubmitEvent(
                identity_pb2.SubmitEventRequest(signed_event_json=atp.jcs(icp)), timeout=TIMEOUT)
        assert answer.did == did, f"node derived {answer.did}, Python {did}"
        print(f"ok: SubmitEvent: {did} registered (made in Python)")
        secret = work / "python_agent.json"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"did": did, "current": seeds[0].hex(), "next": seeds[1].hex()}, f)
        wire = seal(did, 0, current, rust_did, b"hello from python")
        (work / "to_rust.bin").write_bytes(wire)
        print(f"ok: sealed {len(wire)} bytes to {rust_did}")
        print(f"did: {did}")


def verify_envelope(wire: bytes, me: str, keys_of) -> dict:
    """The checks of §B4.4 in order (replay aside: this agent opens one envelope)."""
    env = atp.parse_envelope(wire)
    lifetime = env["expires_at"] - env["issued_at"]
    assert 0 < lifetime <= MAX_LIFETIME_MS, f"lifetime {lifetime} ms"
    now = now_ms()
    assert env["issued_at"] <= now + MAX_SKEW_MS, "not yet valid"
    assert now <= env["expires_at"] + MAX_SKEW_MS, "expired"
    assert me in env["recipients"], "not addressed to this agent"
    events = keys_of(env["sender"])
    did, keys = atp.verify_kel(events)
    assert did == env["sender"], f"the log is of {did}, not {env['sender']}"
    seq = env["seq"]
    assert seq < len(events) and events[seq]["event"]["t"] in ("icp", "rot"), "unknown key"
    valid_from = parse_ts(events[seq]["event"]["ts"])
    valid_until = parse_ts(events[seq + 1]["event"]["ts"]) if seq + 1 < len(events) else None
    assert valid_from <= env["issued_at"], "key not valid at issue time"
    assert valid_until is None or env["issued_at"] < valid_until, "key superseded at issue time"
    atp.composite_verify(keys[seq], env["signed"], atp.CTX_ENVELOPE, env["signature"])
    return env


def open_reply(addr: str, proto_dir: Path, work: Path) -> None:
    me = json.loads((work / "python_agent.json").read_text())["did"]
    wire = (work / "to_python.bin").read_bytes()
    with tempfile.TemporaryDirectory(prefix="atp-py-agent-") as gen:
        identity_pb2, identity_grpc = stubs(proto_dir, gen)
        with grpc.insecure_channel(addr) as channel:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
            identity = identity_grpc.IdentityServiceStub(channel)

            def keys_of(did: str) -> list[dict]:
                log = identity.GetKeyEventLog(
                    identity_pb2.GetKeyEventLogRequest(did=did, page_size=1000), timeout=TIMEOUT)
                assert log.did == did and len(log.events) == log.event_count, "partial log"
                return [json.loads(e.signed_event_json) for e in log.events]

            env = verify_envelope(wire, me, keys_of)
            print(f"ok: opened {len(wire)} bytes from {env['sender']} "
                  f"(key #{env['seq']}): {env['payload'].decode()}")

            tampered = bytearray(wire)
            payload_end = len(env["signed"])
            tampered[payload_end - 1] ^= 1
            try:
                verify_envelope(bytes(tampered), me, keys_of)
            except InvalidSignature:
                print("ok: a reply with one flipped payload bit is refused")
            else:
                raise AssertionError("a tampered reply verified")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 5 and args[0] == "hello":
        hello(args[1], Path(args[2]).resolve(), Path(args[3]), args[4])
    elif len(args) == 4 and args[0] == "open":
        open_reply(args[1], Path(args[2]).resolve(), Path(args[3]))
    else:
        raise SystemExit(__doc__)
