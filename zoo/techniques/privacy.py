"""Differential privacy: DP-SGD (Abadi et al. 2016) on any registry model, with (ε, δ) accounting.

Each step computes one gradient per example (``jax.vmap`` of the training loss
on a batch of one, the same :func:`zoo.train.steps.loss_fn` the ordinary step
uses), clips each to L2 norm ``l2_clip``, sums them, adds Gaussian noise of
standard deviation ``noise_multiplier * l2_clip`` and divides by the batch size.
:func:`dp_aggregate` is that aggregation as an optax transformation (it takes
per-example gradients ``[B, ...]`` and returns one noised mean gradient), so it
chains in front of any optimizer.  :class:`DPSGD` plugs both into
``TrainConfig.extensions`` and reports ε at the end of a run.

Accounting uses Google's ``dp_accounting``: the Rényi-DP accountant and the
privacy-loss-distribution (PLD) accountant, for ``steps`` compositions of the
Poisson-subsampled Gaussian mechanism with sampling rate ``q = batch / N``.
zoo draws fixed-size batches from a shuffled epoch rather than Poisson
samples; the accountant's figure is the one the DP-SGD literature (and
Opacus / TF Privacy) reports for that practice, not a proof for it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from zoo.train.extension import Extension, register_extension
from zoo.train.state import TrainState
from zoo.train.steps import dropout_key, loss_fn

ACCOUNTANTS = ("rdp", "pld")


def per_example_norms(grads) -> jax.Array:
    """Global L2 norm ``[B]`` of each example's gradient in a tree of ``[B, ...]`` leaves."""
    leaves = jax.tree.leaves(grads)
    return jnp.sqrt(sum(jnp.sum(jnp.square(g.reshape(g.shape[0], -1).astype(jnp.float32)), axis=1) for g in leaves))


def clip_per_example(grads, l2_clip: float):
    """Scales each example's gradient (leaves ``[B, ...]``) to global L2 norm at most ``l2_clip``.

    Returns:
      ``(clipped, norms)``: the clipped tree and the ``[B]`` norms before clipping.
    """
    norms = per_example_norms(grads)
    factor = jnp.minimum(1.0, l2_clip / jnp.maximum(norms, 1e-12))  # [B]
    clipped = jax.tree.map(lambda g: g * factor.reshape(-1, *([1] * (g.ndim - 1))).astype(g.dtype), grads)
    return clipped, norms


class DPAggregateState(NamedTuple):
    count: jax.Array  # int32 []: updates so far
    key: jax.Array  # uint32 key data; the noise of update t is drawn from fold_in(key, t)


def dp_aggregate(l2_clip: float, noise_multiplier: float, seed: int) -> optax.GradientTransformation:
    """DP-SGD's aggregation as an optax transformation.

    Args:
      l2_clip: per-example clipping bound C.
      noise_multiplier: σ; the noise added to the clipped sum has std ``σ C``.
      seed: seeds the noise stream (its state is checkpointed, so resume is exact).

    Returns:
      a transformation mapping per-example gradients (leaves ``[B, ...]``) to
      ``(Σ_i clip(g_i) + N(0, σ²C²)) / B`` (leaves ``[...]``).
    """
    if not l2_clip > 0:
        raise ValueError(f"l2_clip must be > 0, got {l2_clip!r}")
    if not noise_multiplier >= 0:
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier!r}")

    def init(params):
        del params
        return DPAggregateState(jnp.zeros((), jnp.int32), jax.random.key_data(jax.random.key(seed)))

    def update(grads, state, params=None):
        del params
        clipped, _ = clip_per_example(grads, l2_clip)
        batch = jax.tree.leaves(grads)[0].shape[0]
        leaves, treedef = jax.tree.flatten(clipped)
        keys = jax.random.split(jax.random.fold_in(jax.random.wrap_key_data(state.key), state.count), len(leaves))
        std = noise_multiplier * l2_clip
        noised = [(g.sum(0) + std * jax.random.normal(k, g.shape[1:], g.dtype)) / batch for g, k in zip(leaves, keys)]
        return jax.tree.unflatten(treedef, noised), DPAggregateState(state.count + 1, state.key)

    return optax.GradientTransformation(init, update)


def per_example_grads(state: TrainState, batch: dict, *, label_smoothing: float = 0.0, first_index=0):
    """Per-example gradients of the training loss.

    Args:
      state: a train state whose model has no mutable collections (batch
        statistics would mix examples, which DP-SGD's analysis forbids).
      batch: a batch of the state's task (every entry per example, e.g. ``inputs``, ``label``,
        ``attention_mask``).
      first_index: the global row of ``batch[0]``: example ``i`` draws its dropout masks from
        ``fold_in(key, first_index + i)`` (under pmap, each device's slice starts further on, so
        the masks are the single-device ones).

    Returns:
      ``(grads, losses, outputs)``: a params-shaped tree with leaves ``[B, ...]``,
      ``[B]`` losses and the model's ``[B, ...]`` outputs.
    """
    if state.model_state:
        raise ValueError(f"per-example gradients need a model without mutable collections; this one has "
                         f"{sorted(state.model_state)} (e.g. batch norm mixes examples)")
    key = dropout_key(state)

    def one(example, index):  # every batch entry (inputs, label, attention_mask, ...) of one example
        example = jax.tree.map(lambda v: v[None], example)
        (loss, (logits, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state, example, jax.random.fold_in(key, index), label_smoothing)
        return grads, loss, logits[0]

    return jax.vmap(one)(batch, first_index + jnp.arange(jax.tree.leaves(batch)[0].shape[0]))


def dp_train_step(state: TrainState, batch: dict, *, l2_clip: float, label_smoothing: float = 0.0,
                  axis_name: str | None = None) -> tuple[TrainState, dict]:
    """One DP-SGD step: ``state.tx`` must start with :func:`dp_aggregate` (it receives per-example grads).

    Args:
      axis_name: under ``pmap``, the device axis.  Each device computes its slice's per-example
        gradients, then gathers everyone's (``all_gather``), so every device clips, noises and
        averages the whole batch as one device does: one draw of noise (the key is replicated),
        divided by the global batch size.  A per-device aggregation would add noise on every
        device and divide by the local batch, which is not the mechanism the accountant counts.

    Returns:
      the new state and ``{"loss", **task.train_metrics, "grad_norm"`` (mean per-example norm
      before clipping), ``"clipped_fraction"}``.
    """
    first = 0
    if axis_name is not None:
        first = jax.lax.axis_index(axis_name) * jax.tree.leaves(batch)[0].shape[0]
    grads, losses, outputs = per_example_grads(state, batch, label_smoothing=label_smoothing, first_index=first)
    norms = per_example_norms(grads)
    metrics = {"loss": losses.mean(), **state.task.train_metrics(outputs, batch), "grad_norm": norms.mean(),
               "clipped_fraction": jnp.mean(norms > l2_clip)}
    if axis_name is not None:  # equal slices: the mean of the devices' means is the batch mean
        grads = jax.lax.all_gather(grads, axis_name, axis=0, tiled=True)
        metrics = jax.lax.pmean(metrics, axis_name)
    return state.apply_gradients(grads), metrics


def compute_epsilon(*, noise_multiplier: float, sampling_rate: float, steps: int, delta: float,
                    accountant: str = "rdp") -> float:
    """ε of ``steps`` Poisson-subsampled Gaussian mechanisms at ``delta``, by ``dp_accounting``.

    Args:
      noise_multiplier: σ (noise std / clipping bound).
      sampling_rate: q, the chance an example is in a batch (batch size / N).
      steps: number of noisy updates.
      delta: the δ of (ε, δ)-DP.
      accountant: "rdp" (Rényi DP, Mironov 2017) or "pld" (privacy loss distributions; tighter).
    """
    import dp_accounting

    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return float("inf")
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier)), steps)
    acc = dp_accounting.rdp.RdpAccountant() if accountant == "rdp" else dp_accounting.pld.PLDAccountant()
    return float(acc.compose(event).get_epsilon(delta))


@register_extension
@dataclasses.dataclass(frozen=True, kw_only=True)
class DPSGD(Extension):
    """DP-SGD as a training extension: ``TrainConfig(..., extensions=(DPSGD(noise_multiplier=1.1),))``.

    Attributes:
      noise_multiplier: σ.
      l2_clip: per-example clipping bound C.
      delta: δ at which ε is reported.
      seed: seeds the noise.
    """

    name: ClassVar[str] = "dp_sgd"
    noise_multiplier: float
    l2_clip: float = 1.0
    delta: float = 1e-5
    seed: int = 0

    def __post_init__(self):
        if not self.noise_multiplier >= 0:
            raise ValueError(f"DPSGD.noise_multiplier must be >= 0, got {self.noise_multiplier!r}")
        if not self.l2_clip > 0:
            raise ValueError(f"DPSGD.l2_clip must be > 0, got {self.l2_clip!r}")
        if not 0 < self.delta < 1:
            raise ValueError(f"DPSGD.delta must be in (0, 1), got {self.delta!r}")

    def wrap_optimizer(self, tx, total_steps):
        return optax.chain(dp_aggregate(self.l2_clip, self.noise_multiplier, self.seed), tx)

    def train_step(self, default_step: Callable, *, label_smoothing: float) -> Callable:
        def step(state, batch, axis_name=None):
            return dp_train_step(state, batch, l2_clip=self.l2_clip, label_smoothing=label_smoothing,
                                 axis_name=axis_name)

        return step

    def report(self, state, *, steps, num_examples, batch_size):
        common = dict(noise_multiplier=self.noise_multiplier, sampling_rate=batch_size / num_examples, steps=steps,
                      delta=self.delta)
        return {"dp_epsilon_rdp": compute_epsilon(accountant="rdp", **common),
                "dp_epsilon_pld": compute_epsilon(accountant="pld", **common),
                "dp_delta": self.delta, "dp_noise_multiplier": self.noise_multiplier, "dp_l2_clip": self.l2_clip}


__all__ = ["ACCOUNTANTS", "DPSGD", "DPAggregateState", "clip_per_example", "compute_epsilon", "dp_aggregate",
           "dp_train_step", "per_example_grads", "per_example_norms"]
