"""An independent Python implementation of the ATP wire formats, written from docs/protocol.md.

It shares no code with the Rust crates: only the specification. It uses the `cryptography`
package (OpenSSL's ML-DSA-65 and Ed25519). It covers:

- composite ML-DSA-65 + Ed25519 signatures (Part A §1.1), with ATP's contexts;
- Multikey encodings (Part A §2.1);
- `did:atp` key event logs: key objects, commitments, inception, rotation, scid, digests, and
  offline verification (Part B §B2);
- signed envelopes: the exact signed-byte layout and the wire encoding (Part B §B4).

Command line (used by crates/atp-core/tests/protocol_core/python_interop.rs):

    python atp_protocol.py make OUTDIR     # write a KEL and an envelope made in Python
    python atp_protocol.py verify INDIR    # verify a KEL and an envelope made in Rust
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = b"CompositeAlgorithmSignatures2025"
LABEL = b"COMPSIG-MLDSA65-Ed25519-SHA512"
CTX_KEL = b"atp/kel/v1"
CTX_ENVELOPE = b"atp/envelope/v1"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


# --- encodings -------------------------------------------------------------------------------

def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + B58.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def multikey_ed25519(pk: bytes) -> str:
    return "z" + b58encode(b"\xed\x01" + pk)


def multikey_mldsa65(pk: bytes) -> str:
    return "u" + b64u(b"\x91\x24" + pk)


def multikey_decode(text: str) -> tuple[str, bytes]:
    if text.startswith("z"):
        raw = b58decode(text[1:])
        assert raw[:2] == b"\xed\x01" and len(raw) == 34, "not an Ed25519 Multikey"
        return "ed25519", raw[2:]
    if text.startswith("u"):
        raw = b64u_decode(text[1:])
        assert raw[:2] == b"\x91\x24" and len(raw) == 2 + 1952, "not an ML-DSA-65 Multikey"
        return "ml-dsa-65", raw[2:]
    raise ValueError("unsupported multibase")


def mh(data: bytes) -> str:
    """`"z" || base58btc(0x12 0x20 || SHA-256(data))`."""
    return "z" + b58encode(b"\x12\x20" + hashlib.sha256(data).digest())


def jcs(value) -> bytes:
    """RFC 8785 for the values ATP events use: objects with ASCII member names, strings and
    integers. (For ASCII names, UTF-16 code-unit order equals Python's string order.)"""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- composite signatures --------------------------------------------------------------------

class CompositeKey:
    """id-MLDSA65-Ed25519-SHA512 from a 64-byte seed (ML-DSA seed || Ed25519 seed)."""

    def __init__(self, seed: bytes):
        assert len(seed) == 64
        self.mldsa = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed[:32])
        self.ed = Ed25519PrivateKey.from_private_bytes(seed[32:])

    def public(self) -> tuple[bytes, bytes]:
        raw = (Encoding.Raw, PublicFormat.Raw)
        return self.mldsa.public_key().public_bytes(*raw), self.ed.public_key().public_bytes(*raw)

    def key_object(self) -> dict:
        m, e = self.public()
        return {"alg": "mldsa65-ed25519", "mldsa": multikey_mldsa65(m), "ed25519": multikey_ed25519(e)}

    def sign(self, message: bytes, ctx: bytes) -> bytes:
        m_prime = representative(message, ctx)
        return self.mldsa.sign(m_prime, LABEL) + self.ed.sign(m_prime)


def representative(message: bytes, ctx: bytes) -> bytes:
    assert len(ctx) <= 255
    return PREFIX + LABEL + bytes([len(ctx)]) + ctx + hashlib.sha512(message).digest()


def composite_verify(key_object: dict, message: bytes, ctx: bytes, signature: bytes) -> None:
    """Raises unless BOTH components verify."""
    assert key_object["alg"] == "mldsa65-ed25519", "only the default composite is implemented"
    _, mpk = multikey_decode(key_object["mldsa"])
    _, epk = multikey_decode(key_object["ed25519"])
    if len(signature) != 3309 + 64:
        raise InvalidSignature("composite signature length")
    m_prime = representative(message, ctx)
    mldsa.MLDSA65PublicKey.from_public_bytes(mpk).verify(signature[:3309], m_prime, LABEL)
    Ed25519PublicKey.from_public_bytes(epk).verify(signature[3309:], m_prime)


# --- did:atp ---------------------------------------------------------------------------------

def signed_event(body: dict, key: CompositeKey) -> dict:
    return {"event": body, "sig": b64u(key.sign(jcs(body), CTX_KEL))}


def incept(current: CompositeKey, nxt: CompositeKey, ts: str) -> tuple[str, dict]:
    body = {"v": "atp/kel/1", "t": "icp", "s": 0, "k": current.key_object(),
            "n": mh(jcs(nxt.key_object())), "ts": ts}
    return "did:atp:" + mh(jcs(body)), signed_event(body, current)


def rotate(did: str, prev: dict, seq: int, new_current: CompositeKey, nxt: CompositeKey, ts: str) -> dict:
    body = {"v": "atp/kel/1", "t": "rot", "d": did, "s": seq, "p": mh(jcs(prev)),
            "k": new_current.key_object(), "n": mh(jcs(nxt.key_object())), "ts": ts}
    return signed_event(body, new_current)


def verify_kel(events: list[dict]) -> tuple[str, list[dict]]:
    """Offline verification of a log (the checks of §B2.5 that matter for interoperability).
    Returns the DID and the key object established by each event."""
    did, keys, commitment, last = None, [], None, None
    for i, signed in enumerate(events):
        ev = signed["event"]
        assert ev["v"] == "atp/kel/1" and ev["s"] == i, f"event {i}: version/sequence"
        if i == 0:
            assert ev["t"] == "icp" and "p" not in ev and "d" not in ev
            did = "did:atp:" + mh(jcs(ev))
        else:
            assert ev["d"] == did, "DID mismatch"
            assert ev["p"] == mh(jcs(last)), "broken hash link"
            assert mh(jcs(ev["k"])) == commitment, "rotation not committed"
        composite_verify(ev["k"], jcs(ev), CTX_KEL, b64u_decode(signed["sig"]))
        keys.append(ev["k"])
        commitment = ev.get("n")
        last = signed
    return did, keys


# --- envelopes -------------------------------------------------------------------------------

def envelope_signed_bytes(sender: str, seq: int, recipients: list[str], issued_at: int,
                          expires_at: int, nonce: bytes, content_type: str, payload: bytes) -> bytes:
    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b
    out = b"ATPENV1\0" + lp(sender.encode()) + struct.pack(">Q", seq)
    out += struct.pack(">I", len(recipients)) + b"".join(lp(r.encode()) for r in recipients)
    out += struct.pack(">qq", issued_at, expires_at) + nonce
    return out + lp(content_type.encode()) + lp(payload)


def parse_envelope(wire: bytes) -> dict:
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        assert pos + n <= len(wire), "truncated"
        pos += n
        return wire[pos - n:pos]

    def u32() -> int:
        return struct.unpack(">I", take(4))[0]

    assert take(8) == b"ATPENV1\0", "magic"
    env = {"sender": take(u32()).decode(), "seq": struct.unpack(">Q", take(8))[0]}
    env["recipients"] = [take(u32()).decode() for _ in range(u32())]
    env["issued_at"], env["expires_at"] = struct.unpack(">qq", take(16))
    env["nonce"] = take(16)
    env["content_type"] = take(u32()).decode()
    env["payload"] = take(u32())
    env["signed"] = wire[:pos]
    env["signature"] = take(u32())
    assert pos == len(wire), "trailing bytes"
    return env


# --- command line ----------------------------------------------------------------------------

def make(out: Path) -> None:
    k0, k1, k2 = (CompositeKey(bytes([0x30 + i]) * 64) for i in range(3))
    did, icp = incept(k0, k1, "2026-01-01T00:00:00Z")
    rot = rotate(did, icp, 1, k1, k2, "2026-01-02T00:00:00Z")
    (out / "python_kel.json").write_text(json.dumps([icp, rot]))
    recipient = "did:atp:zQmRecipientOfThePythonEnvelope"
    issued = 1767312000000  # 2026-01-02T00:00:00Z, when key 1 became current
    signed = envelope_signed_bytes(did, 1, [recipient], issued + 1000, issued + 61000,
                                   bytes(range(16)), "text/plain", b"hello from python")
    sig = k1.sign(signed, CTX_ENVELOPE)
    (out / "python_envelope.bin").write_bytes(signed + struct.pack(">I", len(sig)) + sig)
    (out / "python_meta.json").write_text(json.dumps({"did": did, "recipient": recipient,
                                                      "now": issued + 2000}))


def verify(inp: Path) -> None:
    events = json.loads((inp / "rust_kel.json").read_text())
    meta = json.loads((inp / "rust_meta.json").read_text())
    did, keys = verify_kel(events)
    assert did == meta["did"], f"DID {did} != {meta['did']}"
    env = parse_envelope((inp / "rust_envelope.bin").read_bytes())
    assert env["sender"] == did and meta["recipient"] in env["recipients"]
    composite_verify(keys[env["seq"]], env["signed"], CTX_ENVELOPE, env["signature"])
    assert env["payload"] == meta["payload"].encode()
    # Tampering must be caught by this implementation too.
    bad = bytearray(env["signed"])
    bad[-1] ^= 1
    try:
        composite_verify(keys[env["seq"]], bytes(bad), CTX_ENVELOPE, env["signature"])
    except InvalidSignature:
        pass
    else:
        raise AssertionError("tampered envelope verified")
    print(f"ok: {len(events)} events of {did} and one envelope verified in Python")


if __name__ == "__main__":
    cmd, path = sys.argv[1], Path(sys.argv[2])
    {"make": make, "verify": verify}[cmd](path)
