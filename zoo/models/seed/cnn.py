"""The seed document's Keras CNN, parameter for parameter.

Keras::

    Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1))
    MaxPooling2D((2, 2))
    Conv2D(64, (3, 3), activation='relu')
    MaxPooling2D((2, 2))
    Flatten()
    Dense(128, activation='relu')
    Dense(10, activation='softmax')

Shapes: ``[B, 28, 28, 1] -conv-> [B, 26, 26, 32] -pool-> [B, 13, 13, 32]
-conv-> [B, 11, 11, 64] -pool-> [B, 5, 5, 64] -flatten-> [B, 1600]
-> [B, 128] -> [B, 10]``.  Parameters::

    conv_0  3*3*1*32 + 32    =     320
    conv_1  3*3*32*64 + 64   =  18,496
    dense_0 1600*128 + 128   = 204,928
    head    128*10 + 10      =   1,290
    total                    = 225,034   (Keras: 225,034)

The module returns logits; Keras's final softmax is ``jax.nn.softmax`` of
them (the loss applies it).  Flatten is row-major over ``[H, W, C]`` like
Keras, so Keras weights copy over unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import (CONV_IMPLS, Conv2D, Dense, Dropout, axes, check_input, check_positive_ints, explicit,
                        max_pool, normalize_config, with_logical_constraint)
from zoo.layers.checks import check_common_fields


@dataclasses.dataclass(frozen=True, kw_only=True)
class SeedCNNConfig:
    """Config of :class:`SeedCNN` (defaults = the seed's model).

    Attributes:
      input_shape: ``(H, W, C)``.
      features: output channels of each conv block.
      kernel_size: square conv kernel size.
      pool_size: square max-pool size after each conv.
      mlp_dim: width of the dense layer before the head.
      dropout_rate: dropout before the head (0 in the seed).
      conv_impl: "auto" ("matmul" on CPU, "xla" on GPU/TPU), "matmul" (GEMM-based
        gradients, fast on XLA CPU) or "xla" (``lax.conv``; cuDNN on GPU).
    """

    input_shape: tuple[int, ...] = (28, 28, 1)
    features: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    pool_size: int = 2
    mlp_dim: int = 128
    dropout_rate: float = 0.0
    num_classes: int = 10
    conv_impl: str = "auto"
    layout: str = "image"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self, tuple_fields=("features",))
        if len(self.input_shape) != 3:
            raise ValueError(f"SeedCNNConfig.input_shape must be (H, W, C), got {self.input_shape!r}")
        check_common_fields(self)
        check_positive_ints(self, "features", "kernel_size", "pool_size")
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"SeedCNNConfig.conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}")
        if self.layout != "image":
            raise ValueError(f"SeedCNNConfig.layout must be 'image', got {self.layout!r}")
        h, w = self.input_shape[:2]
        for _ in self.features:
            h, w = (h - self.kernel_size + 1) // self.pool_size, (w - self.kernel_size + 1) // self.pool_size
            if h < 1 or w < 1:
                raise ValueError(
                    f"SeedCNNConfig: input_shape {self.input_shape} is too small for {len(self.features)} "
                    f"conv({self.kernel_size}) + pool({self.pool_size}) blocks"
                )


class SeedCNN(nn.Module):
    """``[B, H, W, C] -> [B, num_classes]`` logits."""

    config: SeedCNNConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model="seed_cnn", dims="[B, H, W, C]")
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.HEIGHT, axes.WIDTH, None))
        for i, features in enumerate(cfg.features):
            x = Conv2D(features, (cfg.kernel_size, cfg.kernel_size), impl=cfg.conv_impl, dtype=cfg.dtype,
                       param_dtype=cfg.param_dtype, name=f"conv_{i}")(x)  # [B, H', W', F]
            # relu and max commute, so pooling first does the same with 1/4 of the relu work.
            x = nn.relu(max_pool(x, cfg.pool_size))
        x = explicit.batch_reshape(x, (x.shape[0], -1))  # [B, H'' * W'' * F], row-major like keras.layers.Flatten
        x = nn.relu(Dense(cfg.mlp_dim, dtype=cfg.dtype, param_dtype=cfg.param_dtype, name="dense_0")(x))  # [B, 128]
        x = Dropout(cfg.dropout_rate, deterministic=not train)(x)
        self.sow("intermediates", "pre_logits", x)
        return Dense(cfg.num_classes, logical_axes=(axes.MLP, axes.CLASSES), dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, name="head")(x)  # [B, 10]


registry.register_model(
    "seed_cnn", module=SeedCNN, config=SeedCNNConfig(),
    description="the seed's Keras CNN: Conv32-Pool-Conv64-Pool-Dense128 (225,034 params) on 28x28x1",
)
