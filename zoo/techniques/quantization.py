"""Int8 quantization of any registry model: post-training (per-channel) and with qwix.

* :func:`quantize_params` / :func:`dequantize_params`: symmetric int8 weight
  quantization with one scale per output channel (the last axis of a kernel:
  ``[D, F]`` dense, ``[KH, KW, C, F]`` conv, ``[D, 4H]`` LSTM), written out here
  so the arithmetic is visible: ``scale = max|w| / 127``, ``q = round(w / scale)``.
  Every dequantised weight is within ``scale / 2`` of the original.
* :func:`qwix_int8` runs the model with int8 weights *and* int8 activations in
  its matmuls and convolutions through Google's qwix (``PtqProvider``), and
  :func:`qat_finetune` fine-tunes with qwix's quantized training (``QtProvider``:
  int8 fake-quant in the forward pass, straight-through gradients).  qwix
  intercepts ``lax.dot_general`` / ``lax.conv_general_dilated`` / ``einsum``:
  zoo's Dense layers, and convolutions with ``conv_impl="xla"`` (a model with a
  ``conv_impl`` field is rebuilt with it; the parameters are the same).  The
  LSTM's fused recurrent cell is a custom VJP qwix does not see, so only its
  head is int8 there.
* :func:`quantize_run`: all of that on a trained run, with accuracy and size.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from zoo.techniques.pruning import is_prunable

QMAX = 127  # symmetric int8: [-127, 127], so 0 is exact and the range is symmetric


class QuantizedTensor(NamedTuple):
    """``q [...] int8`` and ``scale [F] float32`` (one per output channel, the last axis)."""

    q: jax.Array
    scale: jax.Array


def quantize_tensor(w: jax.Array) -> QuantizedTensor:
    """Per-output-channel symmetric int8 quantization of a ``[..., F]`` kernel."""
    w = jnp.asarray(w, jnp.float32)
    amax = jnp.max(jnp.abs(w.reshape(-1, w.shape[-1])), axis=0)  # [F]
    scale = jnp.where(amax > 0, amax / QMAX, 1.0)
    q = jnp.clip(jnp.round(w / scale), -QMAX, QMAX).astype(jnp.int8)
    return QuantizedTensor(q, scale)


def dequantize_tensor(t: QuantizedTensor, dtype=jnp.float32) -> jax.Array:
    return (t.q.astype(jnp.float32) * t.scale).astype(dtype)


def _is_q(x) -> bool:
    return isinstance(x, QuantizedTensor)


def quantize_params(params):
    """Kernels (≥ 2 dims) -> :class:`QuantizedTensor`; biases and other vectors stay float."""
    return jax.tree_util.tree_map_with_path(lambda p, w: quantize_tensor(w) if is_prunable(p, w) else w, params)


def dequantize_params(qparams):
    """The float parameters a quantized tree stands for."""
    return jax.tree.map(lambda x: dequantize_tensor(x) if _is_q(x) else x, qparams, is_leaf=_is_q)


def size_bytes(tree) -> int:
    """Bytes of all arrays in ``tree`` (int8 values and float32 scales counted as stored)."""
    return int(sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree)))


def _qwix_ready(model):
    cfg = model.config
    if getattr(cfg, "conv_impl", "xla") != "xla":  # zoo's GEMM conv is a custom VJP that qwix cannot intercept
        model = model.clone(config=dataclasses.replace(cfg, conv_impl="xla"))
    return model


def _qwix_module_regex(model) -> str:
    """A qwix ``module_path`` regex matching the model's Dense and Conv2D layers (what qwix can intercept)."""
    import re

    import flax.linen as nn

    from zoo.layers import Conv2D, Dense
    from zoo.registry import example_input

    paths = set()

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, (Dense, Conv2D)) and context.method_name == "__call__":
            paths.add("/".join(context.module.scope.path))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(lambda: model.init(jax.random.key(0), example_input(model.config), train=False))
    if not paths:
        raise ValueError(f"{type(model).__name__} has no Dense or Conv2D layer for qwix to quantize")
    return "^(" + "|".join(re.escape(p) for p in sorted(paths)) + ")$"


def qwix_int8(model, params):
    """int8 inference through qwix: int8 weights (per channel) and dynamically quantized int8 activations.

    Args:
      model: a registry model; params: its float parameters.

    Returns:
      ``(qmodel, qparams, quantized)``: call ``qmodel.apply({"params": qparams}, x, train=False)``;
      ``quantized`` lists the kernels stored as int8.
    """
    import qwix

    model = _qwix_ready(model)
    rule = qwix.QuantizationRule(module_path=_qwix_module_regex(model), weight_qtype=jnp.int8, act_qtype=jnp.int8)
    qmodel = qwix.quantize_model(model, qwix.PtqProvider([rule]))
    from zoo.registry import example_input

    abstract = jax.eval_shape(lambda: qmodel.init(jax.random.key(0), example_input(model.config), train=False))
    qparams = qwix.quantize_params(params, abstract["params"])
    quantized = ["/".join(str(getattr(k, "key", k)) for k in path)
                 for path, leaf in jax.tree_util.tree_flatten_with_path(qparams)[0] if leaf.dtype == jnp.int8]
    return qmodel, qparams, sorted({q.rsplit("/", 2)[0] for q in quantized})


def qat_finetune(run, steps: int, *, learning_rate: float = 1e-4, batch_size: int = 128, seed: int = 0):
    """Quantization-aware fine-tuning of a trained run with qwix (int8 weights and activations).

    Args:
      run: a :class:`zoo.techniques.common.TrainedRun`.
      steps: Adam steps on the training split.

    Returns:
      the fine-tuned float parameters (quantize them with :func:`qwix_int8`).
    """
    import qwix

    from zoo.data import BatchSchedule, train_batch
    from zoo.train import OptimizerConfig, create_train_state, make_optimizer, train_step

    model = _qwix_ready(run.model)
    rule = qwix.QtRule(module_path=_qwix_module_regex(model), weight_qtype=jnp.int8, act_qtype=jnp.int8)
    qat_model = qwix.quantize_model(model, qwix.QtProvider([rule]))
    state = create_train_state(qat_model, make_optimizer(OptimizerConfig(learning_rate=learning_rate), steps), seed)
    state = state.replace(params=run.state.params, opt_state=state.tx.init(run.state.params))
    schedule = BatchSchedule(run.dataset.num_train, batch_size, seed)
    step_fn = jax.jit(train_step)
    for step in range(steps):
        state, _ = step_fn(state, train_batch(run.dataset, schedule, step))
    return state.params


def quantize_run(workdir: str, *, step: int | None = None, qat_steps: int = 0, key_file: str | None = None) -> dict:
    """Post-training int8 quantization of a trained run (``zoo quantize``), with its effect.

    Returns:
      ``{"model", "float32_bytes", "int8_bytes", "size_ratio", "accuracy_float",
      "accuracy_int8_weights"`` (per-channel int8 weights, dequantised),
      ``"accuracy_qwix_int8"`` (int8 weights and activations through qwix),
      ``"qwix_int8_layers"``, ``"max_weight_error_in_steps"`` (≤ 0.5) and, with
      ``qat_steps``, ``"accuracy_qat_int8"``}.
    """
    from zoo.techniques.common import load_trained

    if isinstance(qat_steps, bool) or not isinstance(qat_steps, int) or qat_steps < 0:
        raise ValueError(f"qat_steps must be an int >= 0, got {qat_steps!r}")
    run = load_trained(workdir, step=step, key_file=key_file)
    params = run.state.params
    qparams = quantize_params(params)
    restored = dequantize_params(qparams)
    worst = max(float(jnp.max(jnp.abs(dequantize_tensor(t) - w) / t.scale))
                for t, w in zip(jax.tree.leaves(qparams, is_leaf=_is_q), jax.tree.leaves(params)) if _is_q(t))
    qmodel, qwix_params, layers = qwix_int8(run.model, params)
    out = {"model": run.meta["model"], "step": int(run.state.step), "float32_bytes": size_bytes(params),
           "int8_bytes": size_bytes(qparams), "accuracy_float": run.accuracy(),
           "accuracy_int8_weights": run.accuracy(restored),
           "accuracy_qwix_int8": run.accuracy(qwix_params, apply_fn=qmodel.apply),
           "qwix_int8_layers": layers, "max_weight_error_in_steps": worst}
    out["size_ratio"] = out["int8_bytes"] / out["float32_bytes"]
    if qat_steps:
        tuned = qat_finetune(run, qat_steps)
        qmodel, qwix_params, _ = qwix_int8(run.model, tuned)
        out["accuracy_qat_int8"] = run.accuracy(qwix_params, apply_fn=qmodel.apply)
    return out


__all__ = ["QMAX", "QuantizedTensor", "dequantize_params", "dequantize_tensor", "qat_finetune", "quantize_params",
           "quantize_run", "quantize_tensor", "qwix_int8", "size_bytes"]
