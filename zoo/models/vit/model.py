"""Vision Transformer (Dosovitskiy et al. 2020), laid out like Hugging Face's ``ViTModel``.

``[B, H, W, C]`` images -> non-overlapping ``P x P`` patches embedded by a stride-``P``
convolution -> ``[B, N, D]`` tokens (``N = H W / P^2``) -> a learned class token in
front (``pooling="cls"``) -> + learned position embeddings -> ``num_layers`` pre-norm
encoder blocks (the shared ``zoo.layers.TransformerBlock``: exact GELU, LayerNorm
eps 1e-12) -> final LayerNorm -> the class token's features (or, ``pooling="mean"``,
the mean over patch tokens, no class token) -> linear head.

Parameters of ``vit_base`` (patch 16, 224x224, 1000 classes): 86,567,656, the same as
``google/vit-base-patch16-224`` / timm's ``vit_base_patch16_224``.

Image size: the position embeddings are learned for ``input_shape``'s ``H x W`` (a
checkpoint's ``image_size``), so that is the one size accepted; other sizes are refused
with a clear error (Hugging Face needs ``interpolate_pos_encoding=True`` for them, which
zoo does not implement).

Named intermediates (see ``zoo.models.features``): ``patches [B, H/P, W/P, D]`` (the embedded patches),
``block_0`` .. ``block_{L-1}`` (``[B, T, D]`` token features after each encoder block;
the blocks themselves are the modules ``layer_0`` ..),
``pre_logits [B, D]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import (ATTENTION_IMPLS, CONV_IMPLS, Conv2D, Dense, Dropout, LayerNorm, TransformerBlock, axes,
                        check_input, check_positive_ints, explicit, normalize_config, with_logical_constraint)
from zoo.layers.checks import check_common_fields

POOLINGS = ("cls", "mean")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ViTConfig:
    """Config of :class:`ViT` (defaults = ViT-B/16 on 224x224 ImageNet).

    Attributes:
      input_shape: ``(H, W, C)``; H and W multiples of ``patch_size``.  The only size accepted
        (the position embeddings are learned for it).
      patch_size: P.
      hidden_size: D.  num_layers: encoder blocks.  num_heads: attention heads.
      mlp_dim: feed-forward hidden width.
      dropout_rate: on embeddings and block outputs.  attention_dropout_rate: on attention weights.
      layer_norm_eps: of every LayerNorm (1e-12 as Hugging Face's ViT).
      pooling: "cls" (class token) or "mean" (mean of the patch tokens; no class token).
      attention_impl: see ``zoo.layers.ATTENTION_IMPLS``.  conv_impl: of the patch embedding.
      variant: the registry name, for messages.
    """

    input_shape: tuple[int, ...] = (224, 224, 3)
    num_classes: int = 1000
    patch_size: int = 16
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    layer_norm_eps: float = 1e-12
    pooling: str = "cls"
    attention_impl: str = "explicit"
    conv_impl: str = "auto"
    variant: str = "vit"
    layout: str = "image"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        name = type(self).__name__
        normalize_config(self)
        if len(self.input_shape) != 3:
            raise ValueError(f"{name}.input_shape must be (H, W, C), got {self.input_shape!r}")
        check_common_fields(self)
        check_positive_ints(self, "patch_size")
        h, w = self.input_shape[:2]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"{name}: input_shape {self.input_shape} is not a whole number of "
                             f"{self.patch_size}x{self.patch_size} patches")
        if self.pooling not in POOLINGS:
            raise ValueError(f"{name}.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"{name}.attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}")
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"{name}.conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"{name}.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.layout != "image":
            raise ValueError(f"{name}.layout must be 'image', got {self.layout!r}")


class ViT(nn.Module):
    """``[B, H, W, C] -> [B, num_classes]`` logits."""

    config: ViTConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        shape = tuple(jnp.shape(x))
        if len(shape) == 4 and shape[3] == cfg.input_shape[2] and shape[1:3] != cfg.input_shape[:2]:
            raise ValueError(
                f"{cfg.variant} takes {cfg.input_shape[0]}x{cfg.input_shape[1]} images (its position embeddings are "
                f"learned for that size), got shape {shape}. Other sizes would need the position embeddings "
                "interpolated (transformers' interpolate_pos_encoding=True), which zoo does not do: resize the "
                "images, or build the model with another input_shape and train it")
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, H, W, C]")
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        init = nn.initializers.truncated_normal(0.02)
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.HEIGHT, axes.WIDTH, None))
        x = Conv2D(cfg.hidden_size, cfg.patch_size, strides=cfg.patch_size, impl=cfg.conv_impl,
                   kernel_init=nn.initializers.lecun_normal(), name="patch_embed", **kw)(x)  # [B, H/P, W/P, D]
        self.sow("intermediates", "patches", x)
        # [B, N, D], patches row-major like torch's flatten(2)
        x = explicit.batch_reshape(x, (x.shape[0], -1, cfg.hidden_size))
        if cfg.pooling == "cls":
            cls = self.param("cls_token", axes.with_logical_partitioning(init, (None, None, axes.EMBED)),
                             (1, 1, cfg.hidden_size), cfg.param_dtype)
            cls = explicit.batch_broadcast_to(cls.astype(cfg.dtype), (x.shape[0], 1, cfg.hidden_size), like=x)
            x = jnp.concatenate([cls, x], 1)
        pos = self.param("pos_embedding", axes.with_logical_partitioning(init, (None, axes.LENGTH, axes.EMBED)),
                         (1, x.shape[1], cfg.hidden_size), cfg.param_dtype)
        x = x + pos.astype(cfg.dtype)  # [B, T, D], T = N (+ 1)
        x = Dropout(cfg.dropout_rate, deterministic=not train)(x)
        x = with_logical_constraint(x, (axes.BATCH, axes.LENGTH, axes.EMBED))
        for i in range(cfg.num_layers):
            x = TransformerBlock(cfg.num_heads, cfg.mlp_dim, dropout_rate=cfg.dropout_rate,
                                 attention_dropout_rate=cfg.attention_dropout_rate, activation="gelu", norm="pre",
                                 layer_norm_eps=cfg.layer_norm_eps, attention_impl=cfg.attention_impl,
                                 kernel_init=init, name=f"layer_{i}", **kw)(x, train=train)
            self.sow("intermediates", f"block_{i}", x)
        x = LayerNorm(cfg.layer_norm_eps, name="norm", **kw)(x)
        x = x[:, 0] if cfg.pooling == "cls" else x.mean(axis=1)  # [B, D]
        self.sow("intermediates", "pre_logits", x)
        return Dense(cfg.num_classes, logical_axes=(axes.EMBED, axes.CLASSES), name="head", **kw)(x)


def _register(name, description, **fields):
    registry.register_model(name, module=ViT, config=ViTConfig(variant=name, **fields),
                            description=description)


_register("vit_tiny", "ViT-Ti/16 (D 192, 12 layers, 3 heads) on 224x224x3, 1000 classes",
          hidden_size=192, num_layers=12, num_heads=3, mlp_dim=768)
_register("vit_small", "ViT-S/16 (D 384, 12 layers, 6 heads) on 224x224x3, 1000 classes",
          hidden_size=384, num_layers=12, num_heads=6, mlp_dim=1536)
_register("vit_base", "ViT-B/16 (D 768, 12 layers, 12 heads) on 224x224x3, 1000 classes")
_register("vit_large", "ViT-L/16 (D 1024, 24 layers, 16 heads) on 224x224x3, 1000 classes",
          hidden_size=1024, num_layers=24, num_heads=16, mlp_dim=4096)
_register("vit_micro", "tiny ViT (patch 7, D 64, 4 layers, 4 heads) on 28x28x1 digits, 10 classes",
          input_shape=(28, 28, 1), num_classes=10, patch_size=7, hidden_size=64, num_layers=4, num_heads=4,
          mlp_dim=128)
