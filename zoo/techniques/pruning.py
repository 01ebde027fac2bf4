"""Magnitude pruning of any registry model: one-shot, or gradual during training through optax.

* :func:`magnitude_masks`: keep-masks that zero exactly ``round(s * n)`` of the
  smallest-magnitude weights, per layer (``scope="layer"``: each kernel reaches
  sparsity ``s``) or over all kernels together (``scope="global"``).  Biases
  and other vectors (norm scales) are never pruned: only leaves with ≥ 2 dims.
* :func:`pruned`: wraps an optax optimizer; its state carries the masks, which
  it recomputes on the polynomial schedule of Zhu & Gupta (2017) and applies
  to the update so that ``params + update`` is zero wherever the mask is off
  (masks on updates and weights: pruned weights stay exactly zero).
* :class:`GradualPruning`: that transformation as a ``TrainConfig`` extension.
* :func:`prune_run`: one-shot pruning of a trained run with its accuracy change.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo.train.extension import Extension, register_extension

SCOPES = ("layer", "global")


def is_prunable(path, leaf) -> bool:
    """Kernels (≥ 2 dims) are pruned; biases, scales and embeddings' 1-D leaves are not."""
    del path
    return leaf.ndim >= 2


def _check(sparsity: float, scope: str) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def _smallest_k_mask(scores: jax.Array, k) -> jax.Array:
    """Flat keep-mask (float32) zeroing the ``k`` lowest ``scores`` (ties broken by position)."""
    order = jnp.argsort(scores, stable=True)
    ranks = jnp.zeros(scores.shape, jnp.int32).at[order].set(jnp.arange(scores.size, dtype=jnp.int32))
    return (ranks >= k).astype(jnp.float32)


def magnitude_masks(params, sparsity, *, scope: str = "layer", masks=None):
    """Keep-masks for magnitude pruning to ``sparsity``.

    Args:
      params: a parameter tree.
      sparsity: fraction of prunable weights to zero (a float, or a traced scalar).
      scope: "layer" (each kernel to ``sparsity``) or "global" (one threshold over all kernels).
      masks: current masks; weights they already prune rank below every kept
        weight, so sparsity only grows and pruned weights stay pruned.

    Returns:
      a tree like ``params``: float 0/1 masks on prunable leaves, ``None`` elsewhere.
    """
    if isinstance(sparsity, (int, float)):
        _check(float(sparsity), scope)
    elif scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    old = treedef.flatten_up_to(masks) if masks is not None else [None] * len(leaves)
    scores = []
    for (path, w), m in zip(leaves, old):
        if not is_prunable(path, w):
            scores.append(None)
            continue
        s = jnp.abs(w.astype(jnp.float32)).reshape(-1)
        scores.append(s if m is None else jnp.where(m.reshape(-1) > 0, s, -1.0))
    if scope == "layer":
        out = [None if s is None else
               _smallest_k_mask(s, jnp.round(sparsity * s.size).astype(jnp.int32)).reshape(w.shape)
               for s, (_, w) in zip(scores, leaves)]
    else:
        flat = jnp.concatenate([s for s in scores if s is not None])
        keep = _smallest_k_mask(flat, jnp.round(sparsity * flat.size).astype(jnp.int32))
        out, offset = [], 0
        for s, (_, w) in zip(scores, leaves):
            if s is None:
                out.append(None)
            else:
                out.append(keep[offset:offset + s.size].reshape(w.shape))
                offset += s.size
    return jax.tree.unflatten(treedef, out)


def apply_masks(params, masks):
    """``params`` with masked-off weights set to zero (leaves without a mask unchanged)."""
    return jax.tree.map(lambda m, w: w if m is None else w * m.astype(w.dtype), masks, params,
                        is_leaf=lambda x: x is None)


def sparsity_report(params) -> dict:
    """Per-layer and overall fraction of exactly-zero weights among prunable leaves.

    Returns:
      ``{"layers": {"conv_0/kernel": 0.5, ...}, "sparsity": overall, "zeros": n, "prunable": n}``.
    """
    layers, zeros, total = {}, 0, 0
    for path, w in jax.tree_util.tree_flatten_with_path(params)[0]:
        if not is_prunable(path, w):
            continue
        w = np.asarray(w)
        z = int(np.sum(w == 0))
        layers["/".join(str(getattr(k, "key", k)) for k in path)] = z / w.size
        zeros, total = zeros + z, total + w.size
    return {"layers": layers, "sparsity": zeros / max(total, 1), "zeros": zeros, "prunable": total}


def polynomial_sparsity(step, *, target: float, begin_step: int, end_step: int, initial: float = 0.0):
    """Zhu & Gupta (2017): ``s_t = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))^3``, clamped to [t0, t1]."""
    progress = jnp.clip((step - begin_step) / max(end_step - begin_step, 1), 0.0, 1.0)
    return target + (initial - target) * (1.0 - progress) ** 3


class PrunedState(NamedTuple):
    inner: optax.OptState
    masks: optax.Params  # float 0/1 on prunable leaves, None elsewhere
    count: jax.Array  # int32 []


def pruned(inner: optax.GradientTransformation, *, target_sparsity: float, begin_step: int, end_step: int,
           frequency: int = 10, initial_sparsity: float = 0.0, scope: str = "layer") -> optax.GradientTransformation:
    """Gradual magnitude pruning around ``inner``.

    At steps ``begin_step, begin_step + frequency, ...`` up to ``end_step`` the masks
    are recomputed (from the weights the update produces) at the scheduled sparsity;
    every update is then masked so that pruned weights become and stay exactly zero.

    Args:
      inner: the optimizer.
      target_sparsity: final sparsity, reached at ``end_step``.
      begin_step / end_step / frequency: when the masks change.
      initial_sparsity: sparsity at ``begin_step``.
      scope: "layer" or "global".

    Returns:
      a transformation (``update`` needs ``params``).
    """
    _check(target_sparsity, scope)
    _check(initial_sparsity, scope)
    if not 0 <= begin_step <= end_step or frequency < 1:
        raise ValueError(f"need 0 <= begin_step <= end_step and frequency >= 1, got begin_step={begin_step}, "
                         f"end_step={end_step}, frequency={frequency}")

    def init(params):
        ones = jax.tree.map(lambda p: jnp.ones(p.shape, jnp.float32) if is_prunable(None, p) else None, params)
        return PrunedState(inner.init(params), ones, jnp.zeros((), jnp.int32))

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("pruned(...) needs params in update()")
        updates, inner_state = inner.update(grads, state.inner, params)
        new_params = optax.apply_updates(params, updates)
        step = state.count
        due = (step >= begin_step) & (step <= end_step) & ((step - begin_step) % frequency == 0)
        sparsity = polynomial_sparsity(step, target=target_sparsity, begin_step=begin_step, end_step=end_step,
                                       initial=initial_sparsity)
        masks = jax.lax.cond(due, lambda: magnitude_masks(new_params, sparsity, scope=scope, masks=state.masks),
                             lambda: state.masks)
        # where the mask is off the update is -w, so w + update is exactly 0
        updates = jax.tree.map(lambda m, u, p: u if m is None else jnp.where(m > 0, u, -p), masks, updates, params,
                               is_leaf=lambda x: x is None)
        return updates, PrunedState(inner_state, masks, step + 1)

    return optax.GradientTransformation(init, update)


@register_extension
@dataclasses.dataclass(frozen=True, kw_only=True)
class GradualPruning(Extension):
    """Gradual magnitude pruning as a training extension (see :func:`pruned`).

    Attributes:
      target_sparsity: reached at ``end_step`` and kept after it.
      end_step / begin_step / frequency / initial_sparsity / scope: see :func:`pruned`.
    """

    name: ClassVar[str] = "pruning"
    target_sparsity: float
    end_step: int
    begin_step: int = 0
    frequency: int = 10
    initial_sparsity: float = 0.0
    scope: str = "layer"

    def __post_init__(self):
        pruned(optax.identity(), **self._kwargs())  # validates

    def _kwargs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def wrap_optimizer(self, tx, total_steps):
        return pruned(tx, **self._kwargs())

    def report(self, state, *, steps, num_examples, batch_size):
        report = sparsity_report(state.params)
        return {"sparsity": report["sparsity"], "sparsity_per_layer": report["layers"]}


def prune_run(workdir: str, sparsity: float, *, scope: str = "layer", step: int | None = None,
              out: str | None = None, eval_batch_size: int = 256, key_file: str | None = None) -> dict:
    """One-shot magnitude pruning of a trained run (``zoo prune``).

    Args:
      workdir: a run written by ``train_and_evaluate`` / ``zoo train``.
      sparsity: fraction of kernel weights to zero.
      scope: "layer" or "global".
      step: checkpoint step (default: the newest).
      out: also write the pruned model as a run in this directory (``load_run`` / ``zoo quantize`` read it).
      key_file: the key file of an encrypted run (``out`` is then encrypted with it too).

    Returns:
      ``{"model", "step", "scope", "target_sparsity", "sparsity", "sparsity_per_layer",
      "accuracy_before", "accuracy_after", "accuracy_change", "params"}`` (``params``: the pruned tree).
    """
    from zoo.techniques.common import load_trained, save_as_run

    _check(sparsity, scope)  # before loading: a bad value is refused at once
    run = load_trained(workdir, step=step, eval_batch_size=eval_batch_size, key_file=key_file)
    before = run.accuracy(run.state.params)
    params = apply_masks(run.state.params, magnitude_masks(run.state.params, sparsity, scope=scope))
    after = run.accuracy(params)
    report = sparsity_report(params)
    return {"model": run.meta["model"], "step": int(run.state.step), "scope": scope, "target_sparsity": sparsity,
            "sparsity": report["sparsity"], "sparsity_per_layer": report["layers"], "accuracy_before": before,
            "accuracy_after": after, "accuracy_change": after - before, "params": params,
            "out": out and save_as_run(run, params, out, {"pruned": {"sparsity": sparsity, "scope": scope}})}


__all__ = ["SCOPES", "GradualPruning", "PrunedState", "apply_masks", "is_prunable", "magnitude_masks",
           "polynomial_sparsity", "prune_run", "pruned", "sparsity_report"]
