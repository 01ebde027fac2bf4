"""Checkpoints with orbax: periodic async saves, keep last N + best, exact resume.

Each checkpoint step directory holds two items:

* ``state``: the ``TrainState`` arrays (step, params, optimizer state, mutable
  model collections, RNG key data), saved with ``StandardSave``;
* ``meta``: JSON with the model name and config, the training config and the
  data position, checked before anything is restored so that a work
  directory of another model or data order is an error, not a silent mix;
  it also holds a checksum of every array (``zoo.train.integrity``), checked
  after each restore, since orbax keeps none.

With a ``key`` (``zoo train --encrypt-key-file F``) both items are encrypted with AES-256-GCM
(``zoo.train.encryption``), the step number bound as associated data: ``state`` becomes one
``uint8`` array of ciphertext (the arrays' names, shapes and values are inside), ``meta`` a JSON
wrapper of the encrypted metadata with the cipher, a key fingerprint and the ciphertext size.
Orbax still manages the steps.  A tampered step fails authentication and is a ``CheckpointError``
(so resuming falls back to an older step); a missing or wrong key, or a key given for a plain
checkpoint, is a ``CheckpointKeyError``, which resuming does not treat as corruption.

Orbax makes each step atomic (a save cut short leaves only a
``<step>.orbax-checkpoint-tmp`` directory, which is never listed as a step).
A save that fails (disk full, unwritable directory) raises CheckpointError
naming the step and the newest complete checkpoint, which stays intact.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from zoo.train import encryption, integrity


# what orbax names a step directory until the save commits: <step>.orbax-checkpoint-tmp[-<timestamp>]
_ENCRYPTED = "zoo_encrypted"  # the key of an encrypted step's plain meta wrapper
_PARTIAL_SAVE = re.compile(r"^\d+\.orbax-checkpoint-tmp(-\d+)?$")


class CheckpointError(ValueError):
    """A checkpoint that does not belong to this run or cannot be read."""


class CheckpointKeyError(CheckpointError):
    """An encrypted checkpoint read without its key (or with another), or a plain one read with a key."""


class Checkpointer:
    """Thin wrapper over ``orbax.checkpoint.CheckpointManager``.

    Args:
      directory: where step directories go (created if missing).
      keep: how many of the newest checkpoints to keep.
      best_metric: metric name whose best checkpoint is also kept (None: only the newest).
      best_mode: "max" or "min" for ``best_metric``.
      async_save: write in a background thread (``save`` returns once arrays are copied).
      key: 32-byte AES-256-GCM key (``zoo.train.encryption.load_key``): encrypt what is written and
        decrypt what is read; None: plain checkpoints.  One process only.
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, best_metric: str | None = "test_accuracy",
                 best_mode: str = "max", async_save: bool = True, key: bytes | None = None):
        if key is not None:
            if not isinstance(key, bytes) or len(key) != encryption.KEY_BYTES:
                raise ValueError(f"key must be {encryption.KEY_BYTES} bytes, got "
                                 f"{len(key) if isinstance(key, bytes) else type(key).__name__}")
            if jax.process_count() > 1:
                raise ValueError("encrypted checkpoints are written by one process; this run has "
                                 f"{jax.process_count()} (drop --encrypt-key-file or run on one host)")
        self._key = key
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
        self.directory = os.path.abspath(os.fspath(directory))
        keepers: list[Any] = [policies.LatestN(n=keep)]
        if best_metric:
            keepers.append(policies.BestN(
                get_metric_fn=lambda m: m[best_metric], reverse=best_mode == "min", n=1,
                keep_checkpoints_without_metrics=False,
            ))
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policies.AnyPreservationPolicy(keepers),
            enable_async_checkpointing=async_save,
            create=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))
        self._pending: int | None = None  # step of an async save not yet known to have committed
        self._closed = False

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def reload(self) -> None:
        """Re-reads the list of steps (another process moved or wrote step directories)."""
        self._manager.reload()

    def save(self, step: int, items: dict, meta: dict, metrics: dict | None = None) -> None:
        """Saves ``items`` (a pytree of arrays) and ``meta`` (JSON) at ``step``.

        Raises:
          NonFiniteError: ``items`` hold NaN or Inf (nothing is written).
          CheckpointError: this save, or the previous async one, failed to write.
        """
        self.wait()
        prints = integrity.fingerprint(items)
        if prints["nonfinite"]:
            raise integrity.NonFiniteError(
                f"refusing to save checkpoint step {step}: NaN or Inf in {prints['nonfinite'][:5]}; "
                f"the newest checkpoint ({self.latest_step()}) is left as it was"
            )
        del prints["nonfinite"]
        meta = {**meta, "integrity": prints}
        if self._key is not None:
            items, meta = self._seal(int(step), items, meta)
        try:
            self._manager.save(
                int(step),
                args=ocp.args.Composite(state=ocp.args.StandardSave(items), meta=ocp.args.JsonSave(meta)),
                metrics=metrics, force=True,
            )
        except Exception as e:
            raise self._save_error(step, e) from e
        self._pending = int(step)

    def _seal(self, step: int, items: dict, meta: dict) -> tuple[dict, dict]:
        """The encrypted ``state`` item and ``meta`` wrapper of one step."""
        leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(items))[0]
        packed = encryption.pack_arrays({jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves})
        state = encryption.seal(self._key, packed, step, "state")
        sealed_meta = encryption.seal(self._key, json.dumps(meta).encode(), step, "meta")
        wrapper = {_ENCRYPTED: {"cipher": encryption.CIPHER, "key_id": encryption.key_id(self._key),
                                "state_bytes": len(state), "meta": base64.b64encode(sealed_meta).decode()}}
        return {"ciphertext": np.frombuffer(state, np.uint8)}, wrapper

    def _key_problem(self, step: int, raw: dict) -> str | None:
        """Why this checkpointer's key cannot read ``step`` (None: it can), from the step's plain ``meta``."""
        sealed = raw.get(_ENCRYPTED) if isinstance(raw, dict) else None
        where = f"checkpoint step {step} in {self.directory}"
        if sealed is None:
            return (f"{where} is not encrypted, but an encryption key was given; resume it without "
                    "--encrypt-key-file (a run's checkpoints are all encrypted or all plain)"
                    if self._key is not None else None)
        if self._key is None:
            return (f"{where} is encrypted ({sealed.get('cipher')}); give its key file "
                    "(--encrypt-key-file F, TrainConfig(encrypt_key_file=F) or load_run(..., key_file=F))")
        if sealed.get("key_id") != encryption.key_id(self._key):
            return (f"{where} was encrypted with another key (key id {sealed.get('key_id')}, the given key's is "
                    f"{encryption.key_id(self._key)}); give the key file it was written with")
        return None

    def _open(self, step: int, item: str, blob: bytes) -> bytes:
        try:
            return encryption.open_sealed(self._key, blob, step, item)
        except encryption.InvalidTag:
            raise CheckpointError(
                f"checkpoint step {step} in {self.directory} failed decryption ({encryption.CIPHER} authentication "
                f"of its {item}): the file was tampered with, corrupted or moved from another step"
            ) from None

    def _save_error(self, step: int, error: Exception) -> "CheckpointError":
        self._manager.reload()
        intact = [s for s in self._manager.all_steps() if s != step]
        newest = (f"the newest complete checkpoint, step {max(intact)}, is intact" if intact
                  else "there is no earlier checkpoint")
        return CheckpointError(
            f"could not write checkpoint step {step} to {self.directory} ({type(error).__name__}: {error}); "
            f"the disk may be full or the directory unwritable. Nothing of step {step} counts as saved; "
            f"{newest}. Free space and rerun to resume."
        )

    def remove_partial_saves(self) -> list[str]:
        """Deletes the ``<step>.orbax-checkpoint-tmp`` directories of saves cut short; returns their names.

        Never a step (orbax lists none of them) and never resumed from. Call it only while no save of
        this or another process is under way (the training loop does, holding the work directory's lock).
        """
        self.wait()
        try:
            names = sorted(n for n in os.listdir(self.directory) if _PARTIAL_SAVE.match(n))
        except FileNotFoundError:
            return []
        for name in names:
            shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
        return names

    def move_aside(self, step: int, suffix: str) -> str:
        """Renames step directory ``step`` to ``<step>.<suffix>`` (no longer a step; nothing deleted)."""
        src = os.path.join(self.directory, str(int(step)))
        dst = f"{src}.{suffix}"
        os.rename(src, dst)
        self._manager.reload()
        return dst

    def read_meta(self, step: int) -> dict:
        """The JSON ``meta`` of ``step``; CheckpointError if it is missing or unreadable."""
        try:
            restored = self._manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            meta = restored["meta"]
        except Exception as e:  # orbax raises several types for missing / corrupt files
            raise CheckpointError(
                f"checkpoint step {step} in {self.directory} has no readable zoo metadata ({type(e).__name__}: {e}); "
                "it was not written by zoo or is corrupt. Use another work directory."
            ) from e
        problem = self._key_problem(step, meta)
        if problem and not (self._key is not None and isinstance(meta.get(_ENCRYPTED), dict)):
            raise CheckpointKeyError(problem)
        if self._key is not None:
            try:
                meta = json.loads(self._open(step, "meta", base64.b64decode(meta[_ENCRYPTED]["meta"], validate=True)))
            except (KeyError, TypeError, ValueError, binascii.Error) as e:
                if problem:  # another key's fingerprint, and our key cannot open it: the wrong key
                    raise CheckpointKeyError(problem) from None
                if isinstance(e, CheckpointError):
                    raise
                raise CheckpointError(f"checkpoint step {step} in {self.directory} has a malformed encrypted "
                                      f"metadata wrapper ({type(e).__name__}: {e})") from e
            if problem:  # our key opens it, so the fingerprint beside it was altered
                raise CheckpointError(f"checkpoint step {step} in {self.directory} was tampered with: the key "
                                      "fingerprint stored beside its ciphertext was altered")
        if not isinstance(meta, dict) or "model" not in meta:
            raise CheckpointError(f"checkpoint step {step} in {self.directory} has no zoo metadata")
        return meta

    def restore(self, step: int, target: dict) -> dict:
        """Restores the ``state`` item of ``step`` into the structure, shapes and dtypes of ``target``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        if self._key is not None:
            return self._restore_sealed(step, target, abstract)
        try:
            restored = self._manager.restore(
                int(step), args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            )
        except Exception as e:
            raise CheckpointError(
                f"cannot restore checkpoint step {step} from {self.directory} into this model's train state "
                f"({type(e).__name__}: {e}). The checkpoint's arrays do not match the model, optimizer or "
                "config of this run; use the same settings or another work directory."
            ) from e
        state = restored["state"]
        expected = jax.tree.map(lambda x: (x.shape, x.dtype), abstract)
        got = jax.tree.map(lambda x: (x.shape, x.dtype), state)
        if jax.tree.structure(expected) != jax.tree.structure(got) or expected != got:
            raise CheckpointError(f"checkpoint step {step} in {self.directory} does not match this run's train state")
        corrupt = integrity.verify(state, self.read_meta(step).get("integrity"))
        if corrupt:
            raise CheckpointError(
                f"checkpoint step {step} in {self.directory} is corrupt: the arrays {corrupt[:5]} differ from the "
                "checksums written when it was saved"
            )
        return state

    def _restore_sealed(self, step: int, target: dict, abstract) -> dict:
        meta = self.read_meta(step)  # checks the key and authenticates the metadata first
        size = int(self._manager.restore(int(step), args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))["meta"][_ENCRYPTED]["state_bytes"])
        try:
            restored = self._manager.restore(int(step), args=ocp.args.Composite(
                state=ocp.args.StandardRestore({"ciphertext": np.zeros(size, np.uint8)})))
            blob = np.asarray(restored["state"]["ciphertext"], np.uint8).tobytes()
        except Exception as e:
            raise CheckpointError(f"cannot read the encrypted state of checkpoint step {step} in {self.directory} "
                                  f"({type(e).__name__}: {e}); it is corrupt") from e
        try:
            arrays = encryption.unpack_arrays(self._open(step, "state", blob))
        except (ValueError, KeyError, TypeError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"checkpoint step {step} in {self.directory}: the decrypted state is "
                                  f"malformed ({e})") from e
        paths, treedef = jax.tree_util.tree_flatten_with_path(abstract)
        names = [jax.tree_util.keystr(p) for p, _ in paths]
        if sorted(names) != sorted(arrays):
            raise CheckpointError(f"checkpoint step {step} in {self.directory} does not match this run's train state "
                                  f"(its arrays: {sorted(set(arrays) ^ set(names))[:5]} differ)")
        leaves = []
        for name, (_, want), goal in zip(names, paths, jax.tree.leaves(target)):
            dtype, shape, raw = arrays[name]
            if shape != tuple(want.shape) or dtype != np.dtype(want.dtype).name:
                raise CheckpointError(f"checkpoint step {step} in {self.directory} does not match this run's train "
                                      f"state: {name} is {dtype}{list(shape)}, this run's is "
                                      f"{np.dtype(want.dtype).name}{list(want.shape)}")
            value = np.frombuffer(raw, dtype=want.dtype).reshape(shape)
            leaves.append(jax.device_put(value, goal.sharding) if isinstance(goal, jax.Array) else value.copy())
        state = jax.tree.unflatten(treedef, leaves)
        corrupt = integrity.verify(state, meta.get("integrity"))
        if corrupt:
            raise CheckpointError(f"checkpoint step {step} in {self.directory} is corrupt: the arrays {corrupt[:5]} "
                                  "differ from the checksums written when it was saved")
        return state

    def wait(self) -> None:
        """Blocks until pending async saves are on disk; CheckpointError if one failed."""
        pending, self._pending = self._pending, None
        try:
            self._manager.wait_until_finished()
        except Exception as e:
            raise self._save_error(pending, e) from e

    def close(self) -> None:
        """Waits for pending saves (CheckpointError if one failed) and releases orbax's threads; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.wait()
        finally:
            self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
