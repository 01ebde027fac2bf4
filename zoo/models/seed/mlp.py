"""Multi-layer perceptron: stacked non-linear maps ``y = f(W x + b)``.

``[B, D] -> [B, num_classes]`` logits.  Variant ``mlp``: digits as flat
64-vectors, two hidden layers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo import registry
from zoo.layers import Dense, Dropout, axes, check_input, normalize_config, with_logical_constraint
from zoo.layers.checks import check_common_fields

ACTIVATIONS = {
    "relu": jax.nn.relu, "gelu": jax.nn.gelu, "silu": jax.nn.silu, "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid, "elu": jax.nn.elu, "leaky_relu": jax.nn.leaky_relu,
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class MLPConfig:
    """Config of :class:`MLP`.

    Attributes:
      input_shape: ``(D,)``, per-example input size.
      hidden_sizes: widths of the hidden layers.
      activation: one of ``ACTIVATIONS``.
      dropout_rate: dropout after each hidden activation (train only).
      num_classes: output width.
      dtype / param_dtype: compute / storage dtypes.
    """

    input_shape: tuple[int, ...] = (64,)
    hidden_sizes: tuple[int, ...] = (256, 128)
    activation: str = "relu"
    dropout_rate: float = 0.1
    num_classes: int = 10
    layout: str = "vector"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self, tuple_fields=("hidden_sizes",))
        if len(self.input_shape) != 1:
            raise ValueError(f"MLPConfig.input_shape must be (D,), got {self.input_shape!r}")
        check_common_fields(self)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLPConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.layout != "vector":
            raise ValueError(f"MLPConfig.layout must be 'vector', got {self.layout!r}")


class MLP(nn.Module):
    """``[B, D] -> [B, num_classes]`` logits."""

    config: MLPConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model="mlp", dims="[B, D]")
        act = ACTIVATIONS[cfg.activation]
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.EMBED))
        for i, width in enumerate(cfg.hidden_sizes):
            x = act(Dense(width, dtype=cfg.dtype, param_dtype=cfg.param_dtype, name=f"hidden_{i}")(x))  # [B, H_i]
            x = Dropout(cfg.dropout_rate, deterministic=not train)(x)
        self.sow("intermediates", "pre_logits", x)
        return Dense(cfg.num_classes, logical_axes=(axes.MLP, axes.CLASSES), dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, name="head")(x)  # [B, K]


registry.register_model(
    "mlp", module=MLP, config=MLPConfig(),
    description="MLP, y = f(Wx + b), hidden 256-128; digits as 64-vectors",
)
