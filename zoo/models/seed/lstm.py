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
from zoo.layers import (LSTM, Dense, Dropout, axes, check_input, check_positive_ints, explicit, normalize_config,
                        with_logical_constraint)
from zoo.layers.checks import check_common_fields, check_univariate_forecaster


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


def lstm_stack(x, sizes, cfg, *, prefix: str, last_sequence: bool):
    """Stacked LSTM layers ``{prefix}_{i}`` (call inside a compact method): ``[B, T, D] -> [B, T, H]`` or ``[B, H]``.

    Every layer but the last returns sequences; the last does when ``last_sequence``.
    """
    for i, hidden in enumerate(sizes):
        last = i == len(sizes) - 1
        x = LSTM(hidden, return_sequences=last_sequence or not last, unroll=cfg.unroll, dtype=cfg.dtype,
                 param_dtype=cfg.param_dtype, name=f"{prefix}_{i}")(x)
    return x


class SeedLSTM(nn.Module):
    """``[B, T, D] -> [B, num_classes]`` logits."""

    config: SeedLSTMConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model="seed_lstm", dims="[B, T, D]")
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.LENGTH, axes.EMBED))
        x = lstm_stack(x, cfg.hidden_sizes, cfg, prefix="lstm", last_sequence=False)  # [B, H]
        x = Dropout(cfg.dropout_rate, deterministic=not train)(x)
        self.sow("intermediates", "pre_logits", x)
        return Dense(cfg.num_classes, logical_axes=(axes.MLP, axes.CLASSES), dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, name="head")(x)  # [B, 10]


registry.register_model(
    "seed_lstm", module=SeedLSTM, config=SeedLSTMConfig(),
    description="the seed's Keras LSTM: LSTM128 (sequences) - LSTM128 (204,042 params) on (10, 10) sequences",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LSTMSeq2SeqConfig:
    """Config of :class:`LSTMSeq2Seq`, the seed LSTM as a sequence-to-sequence forecaster.

    Attributes:
      input_shape: ``(L, 1)``: context length, one channel.
      horizon: forecast steps H.
      hidden_sizes: the encoder's stacked LSTM layers (the seed's: 128, 128).
      decoder_sizes: the decoder's stacked LSTM layers.
      dropout_rate: dropout before the head.
      unroll: ``lax.scan`` unroll factor (True: fully).
    """

    variant: str = "lstm_seq2seq"  # the registered name (error messages)
    input_shape: tuple[int, ...] = (48, 1)
    horizon: int = 12
    hidden_sizes: tuple[int, ...] = (128, 128)
    decoder_sizes: tuple[int, ...] = (128,)
    dropout_rate: float = 0.0
    unroll: int | bool = True
    task: str = "forecasting"
    layout: str = "sequence"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self, tuple_fields=("hidden_sizes", "decoder_sizes"))
        check_univariate_forecaster(self)
        check_positive_ints(self, "horizon", "decoder_sizes")
        check_common_fields(self)
        if not (self.unroll is True or (isinstance(self.unroll, int) and not isinstance(self.unroll, bool)
                                        and self.unroll >= 1)):
            raise ValueError(f"LSTMSeq2SeqConfig.unroll must be True or a positive int, got {self.unroll!r}")


class LSTMSeq2Seq(nn.Module):
    """The seed's stacked LSTM as an encoder-decoder forecaster: ``[B, L, 1] -> [B, H]``.

    The encoder (the seed LSTM's layers, ``lstm_i``) reads the context into its last
    hidden state; the decoder (``decoder_i``) unrolls it over the H forecast steps
    (Keras's ``RepeatVector`` seq2seq); a linear head maps the decoder's states to
    the H values::

        [B, L, 1] -> encoder [B, He] -> repeat [B, H, He] -> decoder [B, H, Hd] -> [B, H * Hd] -> [B, H]
    """

    config: LSTMSeq2SeqConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, L, 1]")
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.LENGTH, axes.EMBED))
        state = lstm_stack(x, cfg.hidden_sizes, cfg, prefix="lstm", last_sequence=False)  # [B, He]
        steps = jnp.repeat(state[:, None, :], cfg.horizon, axis=1)  # [B, H, He]
        h = lstm_stack(steps, cfg.decoder_sizes, cfg, prefix="decoder", last_sequence=True)  # [B, H, Hd]
        h = explicit.batch_reshape(h, (h.shape[0], cfg.horizon * cfg.decoder_sizes[-1]))
        h = Dropout(cfg.dropout_rate, deterministic=not train)(h)
        self.sow("intermediates", "pre_logits", h)
        return Dense(cfg.horizon, logical_axes=(axes.MLP, axes.CLASSES), dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, name="head")(h)  # [B, H]


registry.register_model(
    "lstm_seq2seq", module=LSTMSeq2Seq, config=LSTMSeq2SeqConfig(variant="lstm_seq2seq"),
    description="the seed LSTM (128, 128) as a seq2seq forecaster: encoder, repeated state, LSTM128 decoder; 48 -> 12",
)
registry.register_model(
    "lstm_seq2seq_tiny", module=LSTMSeq2Seq, config=LSTMSeq2SeqConfig(variant="lstm_seq2seq_tiny", input_shape=(16, 1), horizon=4,
                                                                      hidden_sizes=(8,), decoder_sizes=(8,)),
    description="tiny LSTM seq2seq forecaster for tests: LSTM8 encoder and decoder; 16 -> 4 steps",
)
