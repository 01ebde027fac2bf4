"""Normalisation layers with logical axis names and separate compute / parameter dtypes."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from zoo.layers import axes


class BatchNorm(nn.Module):
    """Batch normalisation over all axes but the last: ``[..., F] -> [..., F]``.

    In training (``train=True``) it normalises with the batch's statistics and
    updates the running ones in the ``batch_stats`` collection (call ``apply``
    with ``mutable=["batch_stats"]``, as ``zoo.train.train_step`` does; without it
    the call raises ``flax.errors.ModifyScopeVariableError``, as
    ``flax.linen.BatchNorm`` does); in evaluation it uses the running statistics.  Statistics are kept and computed
    in float32 whatever the compute dtype.  The running variance is updated with
    the biased batch variance (as ``flax.linen.BatchNorm``; PyTorch uses the
    unbiased one there, which changes nothing in evaluation of loaded weights).

    Variables: ``params/scale [F]``, ``params/bias [F]``,
    ``batch_stats/mean [F]``, ``batch_stats/var [F]`` (PyTorch's ``weight``,
    ``bias``, ``running_mean``, ``running_var``).

    Attributes:
      momentum: running = momentum * running + (1 - momentum) * batch
        (PyTorch's ``momentum=0.1`` is ``0.9`` here).
      epsilon: added to the variance.
      axis_name: a mapped axis (``pmap`` / ``shard_map``) to average the batch
        statistics over, so data-parallel replicas normalise with the global batch.
      feature_axis: logical axis name of F.
      dtype: compute dtype of the output; param_dtype: storage dtype of scale / bias.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    axis_name: str | None = None
    feature_axis: str = axes.CONV_OUT
    use_scale: bool = True
    use_bias: bool = True
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    scale_init: Callable = nn.initializers.ones
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x, *, train: bool):  # [..., F] -> [..., F]
        features = x.shape[-1]
        names = (self.feature_axis,)
        running_mean = self.variable("batch_stats", "mean", axes.with_logical_partitioning(
            lambda: jnp.zeros((features,), jnp.float32), names))
        running_var = self.variable("batch_stats", "var", axes.with_logical_partitioning(
            lambda: jnp.ones((features,), jnp.float32), names))
        x32 = x.astype(jnp.float32)
        if train:
            reduce_axes = tuple(range(x.ndim - 1))
            mean = x32.mean(reduce_axes)
            mean_sq = jnp.square(x32).mean(reduce_axes)
            if self.axis_name is not None:
                mean, mean_sq = lax.pmean((mean, mean_sq), self.axis_name)
            var = jnp.maximum(mean_sq - jnp.square(mean), 0.0)
            if not self.is_initializing():
                running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * mean
                running_var.value = self.momentum * running_var.value + (1 - self.momentum) * var
        else:
            mean, var = running_mean.value, running_var.value
        mul = lax.rsqrt(var + self.epsilon)
        if self.use_scale:
            mul = mul * self.param("scale", axes.with_logical_partitioning(self.scale_init, names), (features,),
                                   self.param_dtype).astype(jnp.float32)
        y = (x32 - mean) * mul
        if self.use_bias:
            y = y + self.param("bias", axes.with_logical_partitioning(self.bias_init, names), (features,),
                               self.param_dtype).astype(jnp.float32)
        return y.astype(self.dtype)


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last axis, scale only (T5's "layer norm"): ``[..., D] -> [..., D]``.

    ``y = scale * x / sqrt(mean(x²) + epsilon)``, no mean subtraction and no bias; the
    statistic is computed in float32.  Param ``scale [D]`` (logical ``embed``).
    """

    epsilon: float = 1e-6
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        scale = self.param("scale", axes.with_logical_partitioning(nn.initializers.ones, (axes.EMBED,)), (d,),
                           self.param_dtype)
        x32 = x.astype(jnp.float32)
        y = x32 * lax.rsqrt(jnp.mean(jnp.square(x32), -1, keepdims=True) + self.epsilon)
        return (y * scale.astype(jnp.float32)).astype(self.dtype)
