"""A PatchTST-style forecaster (Nie et al., 2023): a Transformer encoder over patches of the series.

The context is cut into overlapping patches (``patch_len`` steps every ``stride``),
each patch is embedded linearly, learned position embeddings are added, and
pre-norm encoder blocks (the shared ``zoo.layers.TransformerBlock``) mix them.  The
flattened patch features go to one linear "flatten head" (as the paper's)::

    x [B, L, 1] -> patches [B, N, P] -> [B, N, D] -> encoder -> LN -> [B, N * D] -> [B, H]

with ``N = (L - P) / S + 1``.  Univariate here (the paper's channel independence is
the same model applied to each channel).  Windows arrive normalised by their context
(``zoo.data.timeseries``), which plays the part of the paper's instance normalisation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import (ATTENTION_IMPLS, Dense, Dropout, LayerNorm, TransformerBlock, axes, check_input,
                        check_positive_ints, explicit, normalize_config, with_logical_constraint)
from zoo.layers.checks import check_common_fields, check_univariate_forecaster


@dataclasses.dataclass(frozen=True, kw_only=True)
class PatchTSTConfig:
    """Config of :class:`PatchTST`.

    Attributes:
      input_shape: ``(L, 1)``; horizon: forecast steps H.
      patch_len, stride: patch length P and step S; ``(L - P)`` must be a multiple of S.
      hidden_size, num_layers, num_heads, mlp_dim: the encoder.
      dropout_rate / attention_dropout_rate: on activations / attention weights.
    """

    variant: str = "patchtst"  # the registered name (error messages)
    input_shape: tuple[int, ...] = (48, 1)
    horizon: int = 12
    patch_len: int = 8
    stride: int = 4
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 128
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.0
    layer_norm_eps: float = 1e-5
    attention_impl: str = "explicit"
    task: str = "forecasting"
    layout: str = "sequence"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self)
        check_univariate_forecaster(self)
        check_positive_ints(self, "horizon", "patch_len", "stride")
        check_common_fields(self)
        length = self.input_shape[0]
        if self.patch_len > length or (length - self.patch_len) % self.stride:
            raise ValueError(f"PatchTSTConfig: the context ({length} steps) must be patch_len ({self.patch_len}) "
                             f"plus a multiple of stride ({self.stride})")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"PatchTSTConfig.attention_impl must be one of {ATTENTION_IMPLS}, got "
                             f"{self.attention_impl!r}")

    @property
    def num_patches(self) -> int:
        return (self.input_shape[0] - self.patch_len) // self.stride + 1


class PatchTST(nn.Module):
    """``[B, L, 1] -> [B, H]`` forecasts."""

    config: PatchTSTConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, L, 1]")
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        init = nn.initializers.normal(0.02)
        series = x[..., 0].astype(cfg.dtype)  # [B, L]
        starts = range(0, cfg.input_shape[0] - cfg.patch_len + 1, cfg.stride)
        patches = jnp.stack([series[:, s:s + cfg.patch_len] for s in starts], axis=1)  # [B, N, P]
        patches = with_logical_constraint(patches, (axes.BATCH, axes.LENGTH, None))
        h = Dense(cfg.hidden_size, logical_axes=(None, axes.EMBED), name="patch_embed", **kw)(patches)  # [B, N, D]
        pos = self.param("pos_embedding", axes.with_logical_partitioning(init, (None, axes.LENGTH, axes.EMBED)),
                         (1, cfg.num_patches, cfg.hidden_size), cfg.param_dtype)
        h = Dropout(cfg.dropout_rate, deterministic=not train)(h + pos.astype(cfg.dtype))
        h = with_logical_constraint(h, (axes.BATCH, axes.LENGTH, axes.EMBED))
        for i in range(cfg.num_layers):
            h = TransformerBlock(cfg.num_heads, cfg.mlp_dim, dropout_rate=cfg.dropout_rate,
                                 attention_dropout_rate=cfg.attention_dropout_rate, activation="gelu", norm="pre",
                                 layer_norm_eps=cfg.layer_norm_eps, attention_impl=cfg.attention_impl,
                                 kernel_init=init, name=f"layer_{i}", **kw)(h, train=train)
        h = LayerNorm(cfg.layer_norm_eps, name="norm", **kw)(h)
        h = explicit.batch_reshape(h, (h.shape[0], cfg.num_patches * cfg.hidden_size))  # [B, N * D]
        h = Dropout(cfg.dropout_rate, deterministic=not train)(h)
        self.sow("intermediates", "pre_logits", h)
        return Dense(cfg.horizon, logical_axes=(axes.EMBED, axes.CLASSES), name="head", **kw)(h)  # [B, H]


registry.register_model(
    "patchtst", module=PatchTST, config=PatchTSTConfig(variant="patchtst"),
    description="PatchTST-style: patches of 8 every 4, 2 pre-norm encoder blocks of 64; 48 -> 12 steps",
)
registry.register_model(
    "patchtst_tiny", module=PatchTST, config=PatchTSTConfig(variant="patchtst_tiny", input_shape=(16, 1), horizon=4, patch_len=4, stride=4,
                                                           hidden_size=16, num_layers=1, num_heads=2, mlp_dim=32),
    description="tiny PatchTST for tests: 4 patches of 4, one block of 16; 16 -> 4 steps",
)
