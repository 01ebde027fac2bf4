"""Secure aggregation of client updates (Bonawitz et al. 2017, "Practical Secure Aggregation").

One round, simulated in one process but with the roles kept apart:

1. **Keys.**  Each client ``i`` makes a fresh X25519 key pair ``(sk_i, pk_i)`` and a random
   32-byte self-mask seed ``b_i``; the public keys go to everyone.
2. **Shares.**  Client ``i`` splits ``sk_i`` and ``b_i`` with Shamir's ``t``-of-``n`` scheme over
   the prime field GF(2**521 - 1) and hands one share of each to every other client (in a real
   deployment each share travels encrypted to its recipient; the server never holds ``t`` of them
   for the same secret *and* kind).
3. **Masked input.**  Client ``i`` fixed-point encodes its vector ``x_i`` into ``uint64`` and sends
   ``y_i = x_i + PRG(b_i) + Σ_{j>i} PRG(s_ij) - Σ_{j<i} PRG(s_ij)  (mod 2**64)``, where the pairwise
   seed ``s_ij = HKDF-SHA256(X25519(sk_i, pk_j))`` is the same on both sides and ``PRG`` is the
   AES-256-CTR keystream.  A single ``y_i`` is uniformly distributed: it says nothing about ``x_i``.
4. **Unmasking.**  Some clients may drop after step 3.  The server tells the survivors who
   survived; each survivor returns its share of ``b_i`` for every *surviving* ``i`` and its share of
   ``sk_d`` for every *dropped* ``d`` (never both for one client: an honest client refuses such a
   request).  With at least ``t`` survivors the server reconstructs the self-masks of the survivors
   and the private keys of the dropped, recomputes the dropped clients' pairwise masks with the
   survivors, and removes all of them from ``Σ y_i``: what is left is exactly ``Σ_{survivors} x_i``.
   With fewer than ``t`` survivors the round is refused (``RoundRefused``).

The self-masks are what protect a client whose update arrives late after being declared dropped:
the server then holds ``sk_d`` but not ``b_d``.  Not implemented: the paper's signatures and
consistency checks against an actively malicious server, and encryption of the shares in transit
(there is no network here).  All integer arithmetic is exact, so the aggregate does not depend on
the keys: only the fixed-point encoding (``scale``) rounds.
"""

from __future__ import annotations

import secrets

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PRIME = 2**521 - 1  # a Mersenne prime: the Shamir field, larger than any 32-byte secret
_SECRET_BYTES = 32


class RoundRefused(ValueError):
    """Fewer than ``threshold`` clients survived the round: nothing can be unmasked."""


# ---------------------------------------------------------------------------------------------
# Shamir secret sharing over GF(PRIME)
# ---------------------------------------------------------------------------------------------

def shamir_split(secret: bytes, num_shares: int, threshold: int) -> list[tuple[int, int]]:
    """``num_shares`` points ``(x, f(x))``, ``x = 1..n``, of a random degree ``threshold - 1``
    polynomial with ``f(0) = secret``: any ``threshold`` of them give the secret back, fewer say nothing."""
    if not 1 <= threshold <= num_shares:
        raise ValueError(f"need 1 <= threshold <= num_shares, got threshold={threshold}, num_shares={num_shares}")
    if len(secret) > 64:
        raise ValueError(f"secret of {len(secret)} bytes does not fit the field (at most 64)")
    coeffs = [int.from_bytes(secret, "big")] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, num_shares + 1):
        y = 0
        for c in reversed(coeffs):  # Horner
            y = (y * x + c) % PRIME
        shares.append((x, y))
    return shares


def shamir_combine(shares: list[tuple[int, int]], length: int = _SECRET_BYTES) -> bytes:
    """The secret ``f(0)`` from ``threshold`` (or more) distinct shares, by Lagrange interpolation."""
    xs = [x for x, _ in shares]
    if len(set(xs)) != len(xs):
        raise ValueError(f"shares must have distinct x, got {xs}")
    secret = 0
    for i, (xi, yi) in enumerate(shares):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * -xj % PRIME
                den = den * (xi - xj) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    if secret >= 1 << (8 * length):
        raise ValueError("shares do not reconstruct a secret of the expected length (too few or inconsistent)")
    return secret.to_bytes(length, "big")


# ---------------------------------------------------------------------------------------------
# masks and fixed point
# ---------------------------------------------------------------------------------------------

def pairwise_seed(private: X25519PrivateKey, peer_public: X25519PublicKey, round_index: int) -> bytes:
    """HKDF-SHA256 of the X25519 shared secret, bound to the round number."""
    return HKDF(algorithm=hashes.SHA256(), length=_SECRET_BYTES, salt=None,
                info=b"zoo-secagg-pair-round-%d" % round_index).derive(private.exchange(peer_public))


def prg(seed: bytes, size: int) -> np.ndarray:
    """``size`` uniform ``uint64`` from the AES-256-CTR keystream under ``seed``."""
    enc = Cipher(algorithms.AES(seed), modes.CTR(b"\0" * 16)).encryptor()
    return np.frombuffer(enc.update(bytes(8 * size)) + enc.finalize(), dtype="<u8").astype(np.uint64)


def encode(x: np.ndarray, scale: float, *, headroom: int = 1) -> np.ndarray:
    """Fixed point, two's complement in ``uint64``; refuses values that could overflow a sum of ``headroom``."""
    x = np.asarray(x, np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("secure aggregation got a non-finite update value")
    limit = 2.0**62 / max(headroom, 1)
    if x.size and np.max(np.abs(x)) * scale >= limit:
        raise ValueError(f"update magnitude {np.max(np.abs(x)):.3g} overflows the fixed point (scale {scale:g}, "
                         f"{headroom} clients); lower the scale")
    return np.round(x * scale).astype(np.int64).view(np.uint64)


def decode(x: np.ndarray, scale: float) -> np.ndarray:
    return x.view(np.int64).astype(np.float64) / scale


# ---------------------------------------------------------------------------------------------
# the two roles
# ---------------------------------------------------------------------------------------------

class Client:
    """One client's side of a round: its keys, the shares it holds of the others' secrets, its masked input."""

    def __init__(self, index: int, round_index: int):
        self.index, self.round_index = index, round_index
        self._sk = X25519PrivateKey.generate()
        self._self_seed = secrets.token_bytes(_SECRET_BYTES)
        self.public_key = self._sk.public_key()
        self._held: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {}  # from client j: (sk share, b share)
        self._peers: dict[int, X25519PublicKey] = {}

    def make_shares(self, public_keys: dict[int, X25519PublicKey], threshold: int) -> dict[int, tuple]:
        """Shamir shares of this client's private key and self-mask seed, one pair per client in ``public_keys``."""
        self._peers = dict(public_keys)
        ids = sorted(public_keys)
        sk_shares = shamir_split(self._sk.private_bytes_raw(), len(ids), threshold)
        b_shares = shamir_split(self._self_seed, len(ids), threshold)
        return {j: (sk_shares[n], b_shares[n]) for n, j in enumerate(ids)}

    def receive_share(self, sender: int, shares: tuple) -> None:
        self._held[sender] = shares

    def masked_input(self, x: np.ndarray, scale: float) -> np.ndarray:
        """``y_i``: the encoded ``x`` plus the self-mask and the pairwise masks (mod 2**64)."""
        y = encode(np.ravel(x), scale, headroom=len(self._peers))
        y = y + prg(self._self_seed, y.size)
        for j, pk in self._peers.items():
            if j == self.index:
                continue
            m = prg(pairwise_seed(self._sk, pk, self.round_index), y.size)
            y = y + m if self.index < j else y - m
        return y

    def unmasking_shares(self, survivors: set[int], dropped: set[int]) -> dict:
        """Shares the server may have: ``b`` of each survivor, ``sk`` of each dropped client, never both."""
        if survivors & dropped:
            raise ValueError(f"client {self.index} refuses to unmask: clients {sorted(survivors & dropped)} are "
                             "claimed both survived and dropped")
        return {"b": {i: self._held[i][1] for i in survivors if i in self._held},
                "sk": {d: self._held[d][0] for d in dropped if d in self._held}}


def server_unmask(masked: dict[int, np.ndarray], public_keys: dict[int, X25519PublicKey],
                  shares: dict[int, dict], *, round_index: int, threshold: int, scale: float) -> np.ndarray:
    """The server's side: ``Σ x_i`` over the survivors from their masked inputs and the returned shares.

    ``masked``: survivor -> ``y_i``; ``public_keys``: everyone's (survivors and dropped);
    ``shares``: survivor -> ``Client.unmasking_shares(...)``.
    """
    survivors = sorted(masked)
    dropped = sorted(set(public_keys) - set(masked))
    if len(survivors) < threshold:
        raise RoundRefused(f"round {round_index} refused: {len(survivors)} of {len(public_keys)} clients survived, "
                           f"fewer than the threshold {threshold} needed to unmask")
    total = np.zeros_like(next(iter(masked.values())))
    for i in survivors:
        total = total + masked[i]
    for i in survivors:  # remove the survivors' self-masks
        seed = shamir_combine([shares[h]["b"][i] for h in survivors][:threshold])
        total = total - prg(seed, total.size)
    for d in dropped:  # remove the dropped clients' pairwise masks with the survivors
        sk_d = X25519PrivateKey.from_private_bytes(shamir_combine([shares[h]["sk"][d] for h in survivors][:threshold]))
        for j in survivors:
            m = prg(pairwise_seed(sk_d, public_keys[j], round_index), total.size)
            total = total - m if j < d else total + m  # y_j carried +m if j < d, -m if j > d
    return decode(total, scale)


def secure_sum(updates: list[np.ndarray], *, round_index: int = 0, scale: float = 2.0**32,
               dropped: tuple[int, ...] = (), threshold: int | None = None, return_masked: bool = False):
    """Sum of flat ``updates`` over the clients not in ``dropped``, as the server reconstructs it.

    Runs the whole protocol above.  ``dropped``: clients that left after sending their shares but
    before their masked input arrived.  ``threshold``: the Shamir threshold ``t`` and the least number
    of survivors (default: a majority of the clients); fewer survivors raise ``RoundRefused``.
    ``return_masked`` also returns the survivors' masked inputs (what the server saw).
    """
    k = len(updates)
    if k < 2:
        raise ValueError(f"secure aggregation needs at least 2 clients, got {k}")
    sizes = {np.asarray(u).size for u in updates}
    if len(sizes) != 1:
        raise ValueError(f"all client updates must have the same size, got sizes {sorted(sizes)}")
    if not set(dropped) <= set(range(k)):
        raise ValueError(f"dropped clients {sorted(dropped)} are not all in 0..{k - 1}")
    threshold = k // 2 + 1 if threshold is None else threshold
    if not 2 <= threshold <= k:
        raise ValueError(f"threshold must be in 2..{k} for {k} clients, got {threshold}")
    clients = [Client(i, round_index) for i in range(k)]
    public_keys = {c.index: c.public_key for c in clients}
    for c in clients:
        for j, share in c.make_shares(public_keys, threshold).items():
            clients[j].receive_share(c.index, share)
    alive = {i for i in range(k) if i not in dropped}
    masked = {i: clients[i].masked_input(updates[i], scale) for i in sorted(alive)}  # all the server receives
    shares = {i: clients[i].unmasking_shares(alive, set(dropped)) for i in sorted(alive)}
    result = server_unmask(masked, public_keys, shares, round_index=round_index, threshold=threshold, scale=scale)
    return (result, [masked[i] for i in sorted(alive)]) if return_masked else result


def secure_weighted_average(deltas: np.ndarray, weights: np.ndarray, *, round_index: int = 0,
                            dropped: tuple[int, ...] = (), threshold: int | None = None,
                            scale: float = 2.0**32) -> np.ndarray:
    """``Σ w_k Δ_k / Σ w_k`` over the surviving clients; ``deltas [K, P]``, ``weights [K]``.

    Each client masks ``[w_k Δ_k, w_k]`` (its weight rides as one more coordinate), so the server
    learns neither a client's update nor its weight, only the two sums.
    """
    deltas = np.asarray(deltas, np.float64)
    weights = np.asarray(weights, np.float64)
    if deltas.ndim != 2 or weights.shape != (deltas.shape[0],):
        raise ValueError(f"need deltas [K, P] and weights [K], got shapes {deltas.shape} and {weights.shape}")
    total = secure_sum([np.append(w * d, w) for w, d in zip(weights, deltas)], round_index=round_index,
                       dropped=dropped, threshold=threshold, scale=scale)
    if not total[-1] > 0:
        raise ValueError(f"round {round_index}: the surviving clients' weights sum to {total[-1]}, need > 0")
    return total[:-1] / total[-1]


__all__ = ["PRIME", "Client", "RoundRefused", "decode", "encode", "pairwise_seed", "prg", "secure_sum",
           "secure_weighted_average", "server_unmask", "shamir_combine", "shamir_split"]
