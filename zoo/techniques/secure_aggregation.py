"""Secure aggregation of client updates with pairwise masks (Bonawitz et al. 2017, the pairwise-mask part).

Each client ``i`` holds an X25519 key pair.  For every pair ``(i, j)`` both sides derive the same
32-byte seed from their X25519 shared secret with HKDF-SHA256 (``cryptography``), expand it into a
mask over the flattened update, and client ``i`` adds it when ``i < j`` and subtracts it when
``i > j``.  Updates are fixed-point encoded (``scale``) into ``uint64`` and all arithmetic is modulo
2**64, so masks cancel *exactly* in the sum and a single masked update is uniformly distributed:
the server learns only the aggregate.

Dropouts: if clients drop after masking, the survivors reveal the seeds they share with the dropped
clients (each can compute it from its own private key and the dropped client's public key) and the
server removes those masks; if fewer than ``threshold`` clients survive the round is refused
(``ValueError``).  Not implemented from the paper: Shamir sharing of keys and the self-masks that
protect against a late-arriving "dropped" client, so a server that lies about who dropped could
unmask that client.  Simulation only: all clients live in one process.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_MOD_BITS = 64


def pairwise_seed(private: X25519PrivateKey, peer_public, round_index: int) -> bytes:
    """HKDF-SHA256 of the X25519 shared secret, bound to the round number."""
    shared = private.exchange(peer_public)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"zoo-secagg-round-%d" % round_index).derive(shared)


def _mask(seed: bytes, size: int) -> np.ndarray:
    return np.random.Generator(np.random.PCG64(int.from_bytes(seed, "little"))).integers(
        0, 2**63, size, dtype=np.uint64, endpoint=False) * np.uint64(2) + np.random.Generator(
        np.random.PCG64(int.from_bytes(seed[::-1], "little"))).integers(0, 2, size, dtype=np.uint64)


def encode(x: np.ndarray, scale: float) -> np.ndarray:
    """Fixed point, two's complement in uint64."""
    return np.round(np.asarray(x, np.float64) * scale).astype(np.int64).view(np.uint64)


def decode(x: np.ndarray, scale: float) -> np.ndarray:
    return x.view(np.int64).astype(np.float64) / scale


def masked_update(i: int, update: np.ndarray, keys: list, round_index: int, scale: float) -> np.ndarray:
    """Client ``i``'s encoded ``update`` plus its pairwise masks with every other client in ``keys``."""
    out = encode(update, scale)
    for j, key in enumerate(keys):
        if j == i:
            continue
        m = _mask(pairwise_seed(keys[i], key.public_key(), round_index), out.size)
        out = out + m if i < j else out - m
    return out


def secure_sum(updates: list[np.ndarray], *, round_index: int = 0, scale: float = 2.0**24, seed: int | None = None,
               dropped: tuple[int, ...] = (), threshold: int | None = None, return_masked: bool = False):
    """Sum of flat ``updates`` (float vectors) as the server reconstructs it from masked updates.

    ``dropped``: clients whose masked update never arrives (they masked, then left).  ``threshold``:
    minimum survivors (default: a majority) or the round is refused.
    """
    k = len(updates)
    if k < 2:
        raise ValueError(f"secure aggregation needs at least 2 clients, got {k}")
    sizes = {np.asarray(u).size for u in updates}
    if len(sizes) != 1:
        raise ValueError(f"all client updates must have the same size, got sizes {sorted(sizes)}")
    threshold = k // 2 + 1 if threshold is None else threshold
    survivors = [i for i in range(k) if i not in dropped]
    if len(survivors) < threshold:
        raise ValueError(f"round {round_index} refused: {len(survivors)} of {k} clients survived, "
                         f"fewer than the threshold {threshold}")
    keys = [X25519PrivateKey.generate() for _ in range(k)]
    masked = {i: masked_update(i, np.ravel(updates[i]), keys, round_index, scale) for i in range(k)}
    total = np.zeros(sizes.pop(), np.uint64)
    for i in survivors:
        total = total + masked[i]
    for i in survivors:  # survivors reveal the seeds they share with the dropped clients
        for d in dropped:
            m = _mask(pairwise_seed(keys[i], keys[d].public_key(), round_index), total.size)
            total = total - m if i < d else total + m
    result = decode(total, scale)
    return (result, [masked[i] for i in survivors]) if return_masked else result


def secure_weighted_average(deltas: np.ndarray, weights: np.ndarray, *, round_index: int = 0,
                            dropped: tuple[int, ...] = (), scale: float = 2.0**24) -> np.ndarray:
    """``Σ_k w_k Δ_k / Σ_k w_k`` over surviving clients, via ``secure_sum`` of ``w_k Δ_k``; ``deltas [K, P]``."""
    deltas = np.asarray(deltas, np.float64)
    weights = np.asarray(weights, np.float64)
    total = secure_sum([w * d for w, d in zip(weights, deltas)], round_index=round_index, dropped=dropped,
                       scale=scale)
    alive = [i for i in range(len(weights)) if i not in dropped]
    return total / weights[alive].sum()


__all__ = ["decode", "encode", "masked_update", "pairwise_seed", "secure_sum", "secure_weighted_average"]
