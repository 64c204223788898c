"""The independent side of tests/crypto/openssl_differential.rs: OpenSSL's ML-DSA (through Python
`cryptography`) and a forger for the FIPS 204 edge cases that no honest signer produces.

Reads a JSON list of requests on stdin and writes one JSON response per request on stdout:

  {"op": "verify", "param": 44|65|87, "seed", "msg", "ctx", "sig"}  -> {"ok", "pk"}
  {"op": "sign",   "param", "seed", "msg", "ctx"}                   -> {"sig"}
  {"op": "forge",  "param", "rho", "msg", "ctx", "kind", "seed"}    -> {"pk", "sig", "expected", "openssl"}

All byte strings are hex. `forge` makes a public key whose t1 is zero. FIPS 204 verification
then computes w' = A z, so anyone can choose z and the hint and compute the challenge hash that
makes the signature verify: that is how the edge cases below are built without a secret key
(Wycheproof's "ZeroPublicKey" cases are built the same way). The kinds:

  inbound          a coefficient of z is exactly gamma1 - beta - 1: valid
  boundary         a coefficient is exactly gamma1 - beta: invalid (||z|| must be < gamma1 - beta)
  boundary_neg     a coefficient is exactly -(gamma1 - beta): invalid
  beyond           a coefficient is gamma1, the largest the encoding holds: invalid
  usehint_zero     a hint of 1 where r0 = 0, challenge from UseHint as FIPS 204 defines it
                   ((r1 - 1) mod m): valid; a verifier that compares r0 >= 0 refuses it
  usehint_zero_up  the same hint, challenge from (r1 + 1) mod m: invalid; that verifier accepts

"expected" is the verdict by construction and "openssl" is OpenSSL's; the Rust test requires
both to agree with ATP. Written from FIPS 204 (the algorithm numbers below are the standard's).
"""

import hashlib
import json
import random
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa

Q = 8380417
N = 256
D = 13

# k, l, gamma1, gamma2, tau * eta (= beta), omega, lambda / 4 (bytes of c~)
PARAMS = {
    44: dict(k=4, l=4, gamma1=1 << 17, gamma2=(Q - 1) // 88, beta=78, omega=80, ctilde=32),
    65: dict(k=6, l=5, gamma1=1 << 19, gamma2=(Q - 1) // 32, beta=196, omega=55, ctilde=48),
    87: dict(k=8, l=7, gamma1=1 << 19, gamma2=(Q - 1) // 32, beta=120, omega=75, ctilde=64),
}
OPENSSL = {
    44: (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey),
    65: (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey),
    87: (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey),
}


def bitrev8(m):
    return int(f"{m:08b}"[::-1], 2)


ZETAS = [pow(1753, bitrev8(m), Q) for m in range(256)]


def ntt(w):  # Algorithm 41
    a = list(w)
    m, length = 0, 128
    while length >= 1:
        for start in range(0, N, 2 * length):
            m += 1
            z = ZETAS[m]
            for j in range(start, start + length):
                t = z * a[j + length] % Q
                a[j + length] = (a[j] - t) % Q
                a[j] = (a[j] + t) % Q
        length //= 2
    return a


def intt(a):  # Algorithm 42
    w = list(a)
    m, length = 256, 1
    while length < N:
        for start in range(0, N, 2 * length):
            m -= 1
            z = -ZETAS[m] % Q
            for j in range(start, start + length):
                t = w[j]
                w[j] = (t + w[j + length]) % Q
                w[j + length] = z * ((t - w[j + length]) % Q) % Q
        length *= 2
    return [8347681 * x % Q for x in w]


def rej_ntt_poly(seed):  # Algorithms 30 and 14
    stream = hashlib.shake_128(seed).digest(3 * 1024)
    out, pos = [], 0
    while len(out) < N:
        b0, b1, b2 = stream[pos], stream[pos + 1], stream[pos + 2] & 0x7F
        pos += 3
        z = (b2 << 16) | (b1 << 8) | b0
        if z < Q:
            out.append(z)
    return out


def expand_a(rho, p):  # Algorithm 32, in the NTT domain
    return [[rej_ntt_poly(rho + bytes([s, r])) for s in range(p["l"])] for r in range(p["k"])]


def mod_pm(r, alpha):
    r %= alpha
    return r - alpha if r > alpha // 2 else r


def decompose(r, gamma2):  # Algorithm 36
    r %= Q
    r0 = mod_pm(r, 2 * gamma2)
    if r - r0 == Q - 1:
        return 0, r0 - 1
    return (r - r0) // (2 * gamma2), r0


def pack_bits(values, bits):  # IntegerToBits per value, then BitsToBytes (little-endian)
    acc = 0
    for i, v in enumerate(values):
        assert 0 <= v < (1 << bits)
        acc |= v << (i * bits)
    return acc.to_bytes(len(values) * bits // 8, "little")


def mat_vec(a_hat, z):
    z_hat = [ntt([c % Q for c in poly]) for poly in z]
    rows = []
    for row in a_hat:
        acc = [0] * N
        for a, zh in zip(row, z_hat):
            acc = [(x + y * w) % Q for x, y, w in zip(acc, a, zh)]
        rows.append(intt(acc))
    return rows


def forge(param, rho, msg, ctx, kind, rng):
    p = PARAMS[param]
    k, l, gamma1, gamma2, beta = p["k"], p["l"], p["gamma1"], p["gamma2"], p["beta"]
    m = (Q - 1) // (2 * gamma2)
    bound = gamma1 - beta
    pk = rho + bytes(k * 320)  # t1 = 0, ten bits per coefficient
    a_hat = expand_a(rho, p)
    z = [[rng.randrange(-bound + 1, bound) for _ in range(N)] for _ in range(l)]
    hint = [[0] * N for _ in range(k)]
    expected = True
    if kind == "inbound":
        z[0][7] = bound - 1
    elif kind == "boundary":
        z[l - 1][200], expected = bound, False
    elif kind == "boundary_neg":
        z[0][0], expected = -bound, False
    elif kind == "beyond":
        z[1][100], expected = gamma1, False
    elif kind in ("usehint_zero", "usehint_zero_up"):
        # Move z[0][0] by t so that coefficient j of w'[0] becomes a multiple of 2*gamma2
        # (r0 = 0): w'[0][j] grows by t * a[j], where a is A[0][0] in the normal domain.
        a = intt(a_hat[0][0])
        w = mat_vec(a_hat, z)
        found = None
        for j in range(N):
            inv = pow(a[j], -1, Q) if a[j] else None
            for target in range(0, m):  # q - 1 itself is the wrap-around case; skip it
                if inv is None:
                    break
                t = mod_pm((target * 2 * gamma2 - w[0][j]) * inv, Q)
                if abs(z[0][0] + t) < bound:
                    found = (j, t)
                    break
            if found:
                break
        j, t = found
        z[0][0] += t
        hint[0][j] = 1
        expected = kind == "usehint_zero"
    else:
        raise ValueError(kind)

    w = mat_vec(a_hat, z)
    w1 = []
    for r in range(k):
        row = []
        for j in range(N):
            r1, r0 = decompose(w[r][j], gamma2)
            if hint[r][j]:
                assert r0 == 0, "the use_hint case needs r0 = 0"
                r1 = (r1 + 1) % m if kind == "usehint_zero_up" else (r1 - 1) % m
            row.append(r1)
        w1.append(row)
    w1_bits = 6 if param == 44 else 4
    w1_encoded = b"".join(pack_bits(row, w1_bits) for row in w1)
    tr = hashlib.shake_256(pk).digest(64)
    mu = hashlib.shake_256(tr + bytes([0, len(ctx)]) + ctx + msg).digest(64)
    c_tilde = hashlib.shake_256(mu + w1_encoded).digest(p["ctilde"])
    z_bits = 18 if gamma1 == 1 << 17 else 20
    z_encoded = b"".join(pack_bits([gamma1 - c for c in poly], z_bits) for poly in z)
    y = [0] * (p["omega"] + k)  # Algorithm 20, HintBitPack
    index = 0
    for r in range(k):
        for j in range(N):
            if hint[r][j]:
                y[index] = j
                index += 1
        y[p["omega"] + r] = index
    sig = c_tilde + z_encoded + bytes(y)
    return pk, sig, expected


def openssl_verify(param, pk, sig, msg, ctx):
    try:
        OPENSSL[param][1].from_public_bytes(pk).verify(sig, msg, ctx)
        return True
    except (InvalidSignature, ValueError):
        return False


def self_test():
    rng = random.Random(1)
    x = [rng.randrange(Q) for _ in range(N)]
    assert intt(ntt(x)) == x, "NTT round trip"


def main():
    self_test()
    requests = json.load(sys.stdin)
    out = []
    for req in requests:
        param = req["param"]
        msg, ctx = bytes.fromhex(req["msg"]), bytes.fromhex(req["ctx"])
        if req["op"] == "verify":
            pk = OPENSSL[param][0].from_seed_bytes(bytes.fromhex(req["seed"])).public_key()
            raw = pk.public_bytes_raw()
            ok = openssl_verify(param, raw, bytes.fromhex(req["sig"]), msg, ctx)
            out.append({"ok": ok, "pk": raw.hex()})
        elif req["op"] == "sign":
            sk = OPENSSL[param][0].from_seed_bytes(bytes.fromhex(req["seed"]))
            out.append({"sig": sk.sign(msg, ctx).hex()})
        elif req["op"] == "forge":
            rng = random.Random(req["seed"])
            pk, sig, expected = forge(param, bytes.fromhex(req["rho"]), msg, ctx, req["kind"], rng)
            out.append(
                {
                    "pk": pk.hex(),
                    "sig": sig.hex(),
                    "expected": expected,
                    "openssl": openssl_verify(param, pk, sig, msg, ctx),
                }
            )
        else:
            raise ValueError(req["op"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
