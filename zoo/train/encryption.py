"""Checkpoint encryption at rest: AES-256-GCM with a 32-byte key from a key file.

A key file holds 32 random bytes, raw or as 64 hex digits (``zoo keygen F`` writes one, mode 0600).
``zoo.train.Checkpointer(..., key=...)`` serialises a step's arrays into one byte string
(:func:`pack_arrays`), encrypts it and the step's metadata (:func:`seal`) with the step number
bound as associated data, and stores the ciphertext through orbax, which keeps its atomic step
directories, retention policies and async writes.
"""

from __future__ import annotations

import json
import os
import secrets
import struct

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
CIPHER = "AES-256-GCM"
_NONCE = 12
_TAG = 16
_CHUNK = 1 << 28  # AES-GCM calls take at most 2**31 - 1 bytes: larger states are sealed in 256 MiB chunks


class KeyFileError(ValueError):
    """A key file that is missing or does not hold a 32-byte key."""


def load_key(path: str | os.PathLike) -> bytes:
    """The 32-byte key in ``path``: exactly 32 raw bytes, or 64 hex digits (surrounding whitespace allowed)."""
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror or e}") from e
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise KeyFileError(f"key file {path} must hold a {KEY_BYTES}-byte key: {KEY_BYTES} raw bytes or "
                       f"{2 * KEY_BYTES} hex digits, got {len(data)} bytes that are neither; make one with "
                       "`zoo keygen FILE`")


def write_key_file(path: str | os.PathLike) -> str:
    """Writes a fresh random key (64 hex digits and a newline) to a new file ``path``, mode 0600."""
    path = os.path.abspath(os.fspath(path))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise KeyFileError(f"{path} already exists; a key file is never overwritten (it would orphan the "
                           "checkpoints encrypted with it)") from e
    except OSError as e:
        raise KeyFileError(f"cannot create key file {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")
    return path


def key_id(key: bytes) -> str:
    """A public 8-byte fingerprint of ``key`` (HKDF), stored beside the ciphertext to tell a wrong key from tampering."""
    return HKDF(algorithm=hashes.SHA256(), length=8, salt=None, info=b"zoo-checkpoint-key-id").derive(key).hex()


def _aad(step: int, item: str, chunk: int = 0, chunks: int = 1) -> bytes:
    return f"zoo-checkpoint|step={int(step)}|item={item}|chunk={chunk}/{chunks}".encode()


def seal(key: bytes, plaintext: bytes, step: int, item: str) -> bytes:
    """``nonce | ciphertext | tag`` per 256 MiB chunk, each bound to ``step``, ``item`` and its place."""
    aead = AESGCM(key)
    chunks = max(1, -(-len(plaintext) // _CHUNK))
    out = []
    for c in range(chunks):
        nonce = secrets.token_bytes(_NONCE)
        out.append(nonce + aead.encrypt(nonce, plaintext[c * _CHUNK:(c + 1) * _CHUNK], _aad(step, item, c, chunks)))
    return b"".join(out)


def open_sealed(key: bytes, blob: bytes, step: int, item: str) -> bytes:
    """The plaintext of :func:`seal`'s ``blob``; ``InvalidTag`` if the key, the step, the item or a byte differ."""
    full = _NONCE + _CHUNK + _TAG
    chunks = max(1, -(-len(blob) // full))
    aead = AESGCM(key)
    out = []
    for c in range(chunks):
        part = blob[c * full:(c + 1) * full]
        if len(part) < _NONCE + _TAG:
            raise InvalidTag()
        out.append(aead.decrypt(part[:_NONCE], part[_NONCE:], _aad(step, item, c, chunks)))
    return b"".join(out)


def pack_arrays(named: dict[str, np.ndarray]) -> bytes:
    """One byte string of named arrays: an 8-byte header length, a JSON header (name, dtype, shape, bytes),
    then the raw data."""
    header, data = [], []
    for name, value in named.items():
        value = np.asarray(value, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        header.append([name, value.dtype.name, list(value.shape), value.nbytes])
        data.append(value.tobytes())
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + b"".join(data)


def unpack_arrays(blob: bytes) -> dict[str, tuple[str, tuple, bytes]]:
    """``{name: (dtype name, shape, raw bytes)}`` from :func:`pack_arrays`' output."""
    (n,) = struct.unpack("<Q", blob[:8])
    offset = 8 + n
    out = {}
    for name, dtype, shape, size in json.loads(blob[8:offset]):
        out[name] = (dtype, tuple(shape), blob[offset:offset + size])
        offset += size
    if offset != len(blob):
        raise ValueError(f"packed arrays hold {len(blob) - offset} trailing bytes")
    return out


__all__ = ["CIPHER", "InvalidTag", "KEY_BYTES", "KeyFileError", "key_id", "load_key", "open_sealed", "pack_arrays",
           "seal", "unpack_arrays", "write_key_file"]
