"""What orbax does not check: corrupt checkpoint data and non-finite training.

* Orbax commits a step atomically (written under ``<step>.orbax-checkpoint-tmp``
  and renamed), so a save cut short by kill -9 is never listed as a step. It
  keeps no checksums, though: a flipped bit in a committed array file restores
  silently as a wrong value. :func:`fingerprint` computes one checksum per
  array on the device at save time (stored in the checkpoint's metadata) and
  :func:`verify` recomputes it after a restore.
* :func:`restore_newest_usable` resumes from the newest step that restores and
  verifies, warning about each step it skips.
* :func:`with_finite_flag` adds an ``all_finite`` flag to a train step's metrics
  (and can make the step skip non-finite updates); :class:`NonFiniteMonitor`
  acts on it where the loop already fetches metrics, before any checkpoint.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Callable

import jax
import jax.numpy as jnp

CHECKSUM_ALGORITHM = "u32-position-weighted-sum-v1"


class NonFiniteError(FloatingPointError):
    """A NaN or Inf loss / gradient in training, or in a state about to be saved."""


class CheckpointWarning(UserWarning):
    """A checkpoint step was skipped (corrupt or unreadable) and an older one used."""


def _leaf_checksum(x: jax.Array) -> jax.Array:
    """Sum over elements of (bit pattern as uint32) * (2 * index + 1), modulo 2**32.

    The odd weights make any single flipped bit change the sum, and moved
    elements change it too. Integer sums are exact, so the value does not
    depend on reduction order or device.
    """
    if x.dtype == jnp.bool_:
        x = x.astype(jnp.uint8)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        x = jnp.stack([x.real, x.imag], -1)
    uint = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[x.dtype.itemsize]
    bits = jax.lax.bitcast_convert_type(x, uint).astype(jnp.uint32).reshape(-1)
    weights = jnp.arange(bits.shape[0], dtype=jnp.uint32) * jnp.uint32(2) + jnp.uint32(1)
    return jnp.sum(bits * weights, dtype=jnp.uint32)


def _leaf_finite(x: jax.Array) -> jax.Array:
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.all(jnp.isfinite(x))
    return jnp.asarray(True)


@jax.jit
def _fingerprint_arrays(tree):
    return jax.tree.map(_leaf_checksum, tree), jax.tree.map(_leaf_finite, tree)


def _leaf_names(tree) -> list[str]:
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def fingerprint(tree) -> dict:
    """Checksums and finiteness of every array in ``tree`` (computed on the device; a few bytes come back).

    Returns:
      ``{"algorithm": ..., "checksums": {leaf path: int}, "nonfinite": [leaf paths holding NaN/Inf]}``.
    """
    sums, finite = jax.device_get(_fingerprint_arrays(tree))
    names = _leaf_names(tree)
    return {
        "algorithm": CHECKSUM_ALGORITHM,
        "checksums": {n: int(s) for n, s in zip(names, jax.tree.leaves(sums))},
        "nonfinite": [n for n, f in zip(names, jax.tree.leaves(finite)) if not bool(f)],
    }


def verify(tree, saved: dict | None) -> list[str]:
    """Leaf paths of ``tree`` whose checksum differs from ``saved`` (a :func:`fingerprint`); [] if all match.

    A checkpoint written before checksums existed (``saved`` is None) passes.
    """
    if not saved or saved.get("algorithm") != CHECKSUM_ALGORITHM:
        return []
    now = fingerprint(tree)["checksums"]
    expected = saved["checksums"]
    return sorted(n for n in set(now) | set(expected) if now.get(n) != expected.get(n))


def restore_newest_usable(ckpt, target: dict, check_meta: Callable[[dict], None]):
    """Restores the newest checkpoint step that reads, restores and verifies.

    Steps whose metadata cannot be read or whose arrays fail to restore or to
    match their checksums are skipped with a :class:`CheckpointWarning` naming
    the step directory. Once an older step is found, the skipped newer ones are
    moved aside (``<step>.corrupt-<time>``, never deleted) so that the resumed
    run can save those steps again.  In a multi-process run every process calls this and
    restores; only process 0 moves the steps, after all have read them (see :func:`_move_aside_once`).

    Args:
      ckpt: a :class:`zoo.train.Checkpointer`.
      target: the train-state items to restore into (structure, shapes, dtypes).
      check_meta: raises if a step's metadata belongs to another run; that error
        propagates (it is not corruption, and older steps would not help).

    Returns:
      ``(step, items, meta)``, or None if the directory holds no checkpoint.

    Raises:
      CheckpointError: no step is usable; it lists why for each, and nothing is moved.
    """
    from zoo.train.checkpoint import CheckpointError, CheckpointKeyError

    steps = sorted(ckpt.all_steps(), reverse=True)
    if not steps:
        return None
    problems = []
    for step in steps:
        step_dir = os.path.join(ckpt.directory, str(step))
        try:
            meta = ckpt.read_meta(step)
        except CheckpointKeyError:  # a missing or wrong key is not corruption: no step is skipped or moved
            raise
        except CheckpointError as e:
            problems.append((step, step_dir, str(e)))
            continue
        check_meta(meta)
        try:
            items = ckpt.restore(step, target)
        except CheckpointError as e:
            problems.append((step, step_dir, str(e)))
            continue
        for bad_step, bad_dir, reason in problems:
            warnings.warn(f"skipping checkpoint {bad_dir}: {reason}", CheckpointWarning, stacklevel=2)
        if problems:
            moved = _move_aside_once(ckpt, [bad_step for bad_step, _, _ in problems])
            warnings.warn(f"resuming from step {step}; moved the unusable newer checkpoint(s) to {moved}",
                          CheckpointWarning, stacklevel=2)
        return step, items, meta
    listing = "\n".join(f"  {d}: {reason}" for _, d, reason in problems)
    raise CheckpointError(
        f"no usable checkpoint in {ckpt.directory}; every step failed (nothing was deleted):\n{listing}\n"
        "Move the directory away to start over, or use another --workdir."
    )


def _move_aside_once(ckpt, steps: list[int]) -> list[str]:
    """Moves ``steps`` aside (``<step>.corrupt-<time>``) once, however many processes resume.

    Every process of a multi-host run resumes through :func:`restore_newest_usable` and finds the
    same unusable steps; were each to rename them, all but the first would fail (the directory is
    gone), and a rename while another process still reads the step would break its restore.  So
    all processes first meet (the broadcast of process 0's time is the barrier: everyone is done
    reading), process 0 alone renames, and after a second barrier the others re-read the list of
    steps, so that none of them still counts a moved step when the run saves it again.
    """
    if jax.process_count() == 1:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return [ckpt.move_aside(step, f"corrupt-{stamp}") for step in steps]
    import numpy as np
    from jax.experimental import multihost_utils

    now = int(multihost_utils.broadcast_one_to_all(np.int64(time.time())))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    if jax.process_index() == 0:
        moved = [ckpt.move_aside(step, f"corrupt-{stamp}") for step in steps]
    else:
        moved = [os.path.join(ckpt.directory, f"{int(step)}.corrupt-{stamp}") for step in steps]
    multihost_utils.sync_global_devices("zoo: unusable checkpoints moved aside")
    if jax.process_index() != 0:
        ckpt.reload()
    return moved


def with_finite_flag(step_fn: Callable, *, skip_nonfinite: bool = False) -> Callable:
    """Wraps ``step_fn(state, batch) -> (state, metrics)`` to add ``metrics["all_finite"]``.

    The flag is ``isfinite(loss) & isfinite(grad_norm)``: the global gradient
    norm is NaN/Inf exactly when some gradient is (or overflows), so two scalar
    tests cover every gradient at no measurable cost. With ``skip_nonfinite``
    a non-finite step keeps the old parameters, optimizer and model state
    (``optax.apply_if_finite``-style; the step count and so the data position
    still advance, or the same batch would fail forever).
    """

    def step(state, batch, **kwargs):  # kwargs: e.g. train_step's axis_name under pmap
        new_state, metrics = step_fn(state, batch, **kwargs)
        finite = jnp.isfinite(metrics["loss"])
        if "grad_norm" in metrics:
            finite &= jnp.isfinite(metrics["grad_norm"])
        if skip_nonfinite:
            kept = state.replace(step=new_state.step)
            new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, kept)
        return new_state, {**metrics, "all_finite": finite}

    return step


def parse_nonfinite_policy(policy: str) -> int | None:
    """``"stop"`` -> None; ``"skip"`` -> 10; ``"skip:N"`` -> N (consecutive skipped steps tolerated)."""
    if policy == "stop":
        return None
    if policy == "skip":
        return 10
    if isinstance(policy, str) and policy.startswith("skip:") and policy[5:].isdigit() and int(policy[5:]) > 0:
        return int(policy[5:])
    raise ValueError(f"on_nonfinite must be 'stop', 'skip' or 'skip:N' with N > 0, got {policy!r}")


class NonFiniteMonitor:
    """Acts on the ``all_finite`` flags of a fetched window of step metrics.

    Args:
      policy: "stop" (raise at the first non-finite step), "skip" or "skip:N"
        (the step skipped its update; raise after N consecutive ones).
    """

    def __init__(self, policy: str = "stop"):
        self.max_consecutive = parse_nonfinite_policy(policy)
        self.consecutive = 0
        self.skipped = 0

    def check(self, window: list[dict], first_step: int, intact: str = "") -> list[dict]:
        """Raises :class:`NonFiniteError` per the policy; returns the window's finite steps.

        Args:
          window: host metrics of consecutive steps; ``window[i]`` is the update to step ``first_step + i``.
          first_step: the step count after ``window[0]``'s update.
          intact: a sentence about the checkpoint left as it was, for the error.
        """
        finite_rows = []
        for i, m in enumerate(window):
            if bool(m.get("all_finite", True)):
                self.consecutive = 0
                finite_rows.append(m)
                continue
            step = first_step + i
            values = ", ".join(f"{k}={float(m[k])}" for k in ("loss", "grad_norm") if k in m)
            if self.max_consecutive is None:
                raise NonFiniteError(
                    f"non-finite loss or gradient in the update to step {step} ({values}); training stopped "
                    f"without saving it. {intact}Lower the learning rate, add --clip-norm, or pass "
                    "--on-nonfinite skip to skip such updates."
                )
            self.consecutive += 1
            self.skipped += 1
            if self.consecutive > self.max_consecutive:
                raise NonFiniteError(
                    f"{self.consecutive} consecutive non-finite updates (the last at step {step}, {values}), "
                    f"more than the {self.max_consecutive} that on_nonfinite allows; training stopped without "
                    f"saving. {intact}"
                )
        return finite_rows


__all__ = ["CHECKSUM_ALGORITHM", "CheckpointWarning", "NonFiniteError", "NonFiniteMonitor", "fingerprint",
           "parse_nonfinite_policy", "restore_newest_usable", "verify", "with_finite_flag"]
