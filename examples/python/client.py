"""A gRPC client of a running atp-node, in Python with grpcio, generated from proto/ at run time.

    python client.py HOST:PORT PROTO_DIR

It generates the `atp.v1` stubs from PROTO_DIR into a temporary directory (grpc_tools.protoc),
then, against the node at HOST:PORT (plaintext):

1. calls `grpc.health.v1.Health/Check` (a raw unary call: the empty request is zero bytes, and a
   SERVING answer is field 1 = 1), with no extra package;
2. reads the node's DID from `AdminService.GetNodeInfo` and resolves it with
   `IdentityService.Resolve`, checking the DID document's `id`;
3. makes a `did:atp` identity in Python (`atp_protocol.py`: composite ML-DSA-65 + Ed25519),
   submits its inception with `IdentityService.SubmitEvent`, builds and signs an envelope in
   Python addressed to the node, and checks that `MessageService.VerifyEnvelope` accepts it;
   a tampered copy must fail with INVALID_ARGUMENT and the ErrorInfo reason
   `ENVELOPE_BAD_SIGNATURE` (decoded from the `grpc-status-details-bin` trailer by hand).

Needs grpcio, grpcio-tools (and its protobuf) and cryptography: requirements-test.txt.
Exits non-zero on any failure; prints `ok: …` lines. Used by
crates/atp-node/tests/node/python_client.rs.
"""

from __future__ import annotations

import datetime
import glob
import importlib
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_tools import protoc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import atp_protocol as atp  # noqa: E402

TIMEOUT = 10.0


def generate(proto_dir: Path, out: Path) -> None:
    """`python -m grpc_tools.protoc -I proto --python_out=… --grpc_python_out=… atp/v1/*.proto`."""
    files = sorted(glob.glob(str(proto_dir / "atp" / "v1" / "*.proto")))
    assert files, f"no .proto files under {proto_dir}/atp/v1"
    # grpc_tools ships the well-known types (google/protobuf/*.proto).
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    args = ["grpc_tools.protoc", f"-I{proto_dir}", f"-I{well_known}",
            f"--python_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed: {args}")


# --- google.rpc.Status / ErrorInfo from the trailer, by hand (protobuf wire format) -----------

def _fields(data: bytes):
    """Yields (field number, wire type, value) of a protobuf message."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 2:
            n = varint()
            yield number, wire, data[pos:pos + n]
            pos += n
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def error_reason(err: grpc.RpcError) -> str | None:
    """The ATP reason code: google.rpc.Status.details[] -> Any(google.rpc.ErrorInfo).reason."""
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for number, _, detail in _fields(value):
            if number != 3:  # Status.details
                continue
            any_fields = {n: v for n, _, v in _fields(detail)}
            if any_fields.get(1, b"").decode().endswith("/google.rpc.ErrorInfo"):
                info = {n: v for n, _, v in _fields(any_fields.get(2, b""))}
                return info.get(1, b"").decode()  # ErrorInfo.reason
    return None


# --- the calls --------------------------------------------------------------------------------

def health(channel: grpc.Channel) -> None:
    check = channel.unary_unary("/grpc.health.v1.Health/Check")  # bytes in, bytes out
    answer = check(b"", timeout=TIMEOUT)  # HealthCheckRequest{service: ""}
    status = {n: v for n, _, v in _fields(answer)}.get(1, 0)
    assert status == 1, f"health: status {status}, expected SERVING (1)"
    print("ok: grpc.health.v1.Health/Check: SERVING")


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339(ms: int) -> str:
    t = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main(addr: str, proto_dir: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="atp-py-stubs-") as gen:
        generate(proto_dir, Path(gen))
        sys.path.insert(0, gen)
        admin_pb2 = importlib.import_module("atp.v1.admin_pb2")
        admin_grpc = importlib.import_module("atp.v1.admin_pb2_grpc")
        identity_pb2 = importlib.import_module("atp.v1.identity_pb2")
        identity_grpc = importlib.import_module("atp.v1.identity_pb2_grpc")
        message_pb2 = importlib.import_module("atp.v1.message_pb2")
        message_grpc = importlib.import_module("atp.v1.message_pb2_grpc")
        print(f"ok: generated stubs from {proto_dir} with grpcio-tools")

        with grpc.insecure_channel(addr) as channel:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
            health(channel)

            # Resolve the node's own DID.
            info = admin_grpc.AdminServiceStub(channel).GetNodeInfo(
                admin_pb2.GetNodeInfoRequest(), timeout=TIMEOUT)
            node_did = info.node_did
            assert node_did.startswith("did:atp:"), node_did
            identity = identity_grpc.IdentityServiceStub(channel)
            resolved = identity.Resolve(identity_pb2.ResolveRequest(did=node_did), timeout=TIMEOUT)
            doc = json.loads(resolved.did_document_json)
            assert doc["id"] == node_did, f"resolved document id {doc['id']} != {node_did}"
            print(f"ok: Resolve({node_did}): DID document id matches")

            # An identity made in Python, made known to the node.
            k0, k1 = atp.CompositeKey(os.urandom(64)), atp.CompositeKey(os.urandom(64))
            did, icp = atp.incept(k0, k1, rfc3339(now_ms() - 60_000))
            submitted = identity.SubmitEvent(
                identity_pb2.SubmitEventRequest(signed_event_json=atp.jcs(icp)),
                timeout=TIMEOUT)
            assert submitted.did == did, f"node derived {submitted.did}, Python {did}"
            assert submitted.outcome == identity_pb2.SUBMIT_EVENT_OUTCOME_ACCEPTED, submitted
            print(f"ok: SubmitEvent: inception of {did} (made in Python) accepted")

            # An envelope made and composite-signed in Python, addressed to the node.
            issued = now_ms()
            signed = atp.envelope_signed_bytes(did, 0, [node_did], issued, issued + 60_000,
                                               os.urandom(16), "text/plain",
                                               b"hello from grpcio")
            sig = k0.sign(signed, atp.CTX_ENVELOPE)
            wire = signed + struct.pack(">I", len(sig)) + sig
            messages = message_grpc.MessageServiceStub(channel)
            verified = messages.VerifyEnvelope(
                message_pb2.VerifyEnvelopeRequest(envelope=wire, verifier_did=node_did),
                timeout=TIMEOUT)
            assert verified.sender_did == did, verified.sender_did
            assert verified.payload == b"hello from grpcio", verified.payload
            assert len(verified.checks_passed) > 0
            print(f"ok: VerifyEnvelope: Python-signed envelope verified "
                  f"({len(verified.checks_passed)} checks passed)")

            # A tampered copy (one payload byte) with a fresh nonce, so it is not a replay.
            signed = atp.envelope_signed_bytes(did, 0, [node_did], issued, issued + 60_000,
                                               os.urandom(16), "text/plain",
                                               b"hello from grpcio")
            sig = k0.sign(signed, atp.CTX_ENVELOPE)
            tampered = bytearray(signed)
            tampered[-1] ^= 1
            wire = bytes(tampered) + struct.pack(">I", len(sig)) + sig
            try:
                messages.VerifyEnvelope(
                    message_pb2.VerifyEnvelopeRequest(envelope=wire, verifier_did=node_did),
                    timeout=TIMEOUT)
            except grpc.RpcError as err:
                reason = error_reason(err)
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.code()
                assert reason == "ENVELOPE_BAD_SIGNATURE", f"reason {reason!r}: {err.details()}"
                print("ok: VerifyEnvelope: tampered envelope refused with ENVELOPE_BAD_SIGNATURE")
            else:
                raise AssertionError("a tampered envelope verified")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: client.py HOST:PORT PROTO_DIR")
    main(sys.argv[1], Path(sys.argv[2]).resolve())
