"""The seed document's Keras LSTM, parameter for parameter.

Keras::

    LSTM(128, input_shape=(10, 10), return_sequences=True)
    LSTM(128)
    Dense(10, activation='softmax')

Shapes: ``[B, 10, 10] -> [B, 10, 128] -> [B, 128] -> [B, 10]``.  An LSTM
layer has ``4 * (H * (D + H) + H)`` parameters::

    lstm_0  4 * (128 * (10 + 128) + 128)  =  71,168
    lstm_1  4 * (128 * (128 + 128) + 128) = 131,584
    head    128 * 10 + 10                 =   1,290
    total                                 = 204,042   (Keras: 204,042)

The module returns logits; Keras's softmax is applied by the loss.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import LSTM, Dense, Dropout, axes, check_input, normalize_config, with_logical_constraint
from zoo.layers.checks import check_common_fields


@dataclasses.dataclass(frozen=True, kw_only=True)
class SeedLSTMConfig:
    """Config of :class:`SeedLSTM` (defaults = the seed's model).

    Attributes:
      input_shape: ``(T, D)``: time steps and features per step.
      hidden_sizes: hidden size of each stacked LSTM layer; all but the last return sequences.
      dropout_rate: dropout before the head (0 in the seed).
      unroll: ``lax.scan`` unroll factor (True: fully, fastest for short sequences).
    """

    input_shape: tuple[int, ...] = (10, 10)
    hidden_sizes: tuple[int, ...] = (128, 128)
    dropout_rate: float = 0.0
    num_classes: int = 10
    unroll: int | bool = True
    layout: str = "sequence"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self, tuple_fields=("hidden_sizes",))
        if len(self.input_shape) != 2:
            raise ValueError(f"SeedLSTMConfig.input_shape must be (T, D), got {self.input_shape!r}")
        check_common_fields(self)
        if not (self.unroll is True or (isinstance(self.unroll, int) and not isinstance(self.unroll, bool)
                                        and self.unroll >= 1)):
            raise ValueError(f"SeedLSTMConfig.unroll must be True or a positive int, got {self.unroll!r}")
        if self.layout != "sequence":
            raise ValueError(f"SeedLSTMConfig.layout must be 'sequence', got {self.layout!r}")


class SeedLSTM(nn.Module):
    """``[B, T, D] -> [B, num_classes]`` logits."""

    config: SeedLSTMConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model="seed_lstm", dims="[B, T, D]")
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.LENGTH, axes.EMBED))
        for i, hidden in enumerate(cfg.hidden_sizes):
            last = i == len(cfg.hidden_sizes) - 1
            x = LSTM(hidden, return_sequences=not last, unroll=cfg.unroll, dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, name=f"lstm_{i}")(x)  # [B, T, H] or [B, H]
        x = Dropout(cfg.dropout_rate, deterministic=not train)(x)
        self.sow("intermediates", "pre_logits", x)
        return Dense(cfg.num_classes, logical_axes=(axes.MLP, axes.CLASSES), dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, name="head")(x)  # [B, 10]


registry.register_model(
    "seed_lstm", module=SeedLSTM, config=SeedLSTMConfig(),
    description="the seed's Keras LSTM: LSTM128 (sequences) - LSTM128 (204,042 params) on (10, 10) sequences",
)
