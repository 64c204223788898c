"""Composite ML-DSA-65 + Ed25519 sign and verify throughput built from Python `cryptography`
primitives (OpenSSL), exactly as examples/python/atp_protocol.py builds them: keys parsed once,
outside the timed loop; single-threaded. Prints one JSON object.

Usage: python python_composite.py SECONDS
"""

import hashlib
import json
import sys
import time

import cryptography
from cryptography.hazmat.backends.openssl import backend
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = b"CompositeAlgorithmSignatures2025"
LABEL = b"COMPSIG-MLDSA65-Ed25519-SHA512"
CTX = b"atp/envelope/v1"
MLDSA65_SIG = 3309


def representative(message: bytes, ctx: bytes) -> bytes:
    return PREFIX + LABEL + bytes([len(ctx)]) + ctx + hashlib.sha512(message).digest()


class Composite:
    def __init__(self, seed: bytes):
        self.mldsa = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed[:32])
        self.ed = Ed25519PrivateKey.from_private_bytes(seed[32:])
        raw = (Encoding.Raw, PublicFormat.Raw)
        # Public keys parsed once, as a verifier holding a resolved key would.
        self.mldsa_pub = mldsa.MLDSA65PublicKey.from_public_bytes(
            self.mldsa.public_key().public_bytes(*raw))
        self.ed_pub = Ed25519PublicKey.from_public_bytes(self.ed.public_key().public_bytes(*raw))

    def sign(self, message: bytes, ctx: bytes) -> bytes:
        m_prime = representative(message, ctx)
        return self.mldsa.sign(m_prime, LABEL) + self.ed.sign(m_prime)

    def verify(self, message: bytes, ctx: bytes, signature: bytes) -> None:
        if len(signature) != MLDSA65_SIG + 64:
            raise ValueError("composite signature length")
        m_prime = representative(message, ctx)
        self.mldsa_pub.verify(signature[:MLDSA65_SIG], m_prime, LABEL)
        self.ed_pub.verify(signature[MLDSA65_SIG:], m_prime)


def rate(op, seconds: float) -> tuple[float, float]:
    """Operations per wall-clock second and per CPU-second of this thread."""
    for _ in range(10):
        op()
    start, cpu_start = time.perf_counter(), time.thread_time()
    end = start + seconds
    n = 0
    while time.perf_counter() < end:
        op()
        n += 1
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    return n / wall, n / cpu


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    key = Composite(bytes(range(64)))
    message = b"\x5a" * 256
    signature = key.sign(message, CTX)
    key.verify(message, CTX, signature)
    sign, sign_cpu = rate(lambda: key.sign(message, CTX), seconds)
    verify, verify_cpu = rate(lambda: key.verify(message, CTX, signature), seconds)
    print(json.dumps({
        "peer": "python-cryptography composite",
        "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(),
        "sign_per_s": sign,
        "verify_per_s": verify,
        "sign_per_cpu_s": sign_cpu,
        "verify_per_cpu_s": verify_cpu,
    }))


if __name__ == "__main__":
    main()
