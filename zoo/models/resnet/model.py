"""ResNet (He et al. 2015) with basic and bottleneck blocks, laid out like Hugging Face's ``ResNetModel``.

``[B, H, W, C]`` images -> stem -> stages 1..S -> global average pool -> head.

* stem ``"imagenet"``: 7x7 stride-2 conv (pad 3) + BatchNorm + ReLU + 3x3 stride-2
  max pool (pad 1): ``[B, 224, 224, 3] -> [B, 56, 56, stem_features]``.
  Stem ``"small"`` (for 28x28 / 32x32 images): 3x3 stride-1 conv + BN + ReLU, no pool.
* stage ``s`` has ``stage_sizes[s]`` blocks with ``widths[s]`` output channels; its
  first block strides 2 (stage 1 only if ``downsample_in_first_stage``) and gets a
  1x1 conv + BN shortcut when the shape changes.
* basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, + shortcut, ReLU.
  Bottleneck: 1x1 conv to ``width / bottleneck_reduction``, 3x3 conv, 1x1 conv back
  to ``width`` (BN after each, ReLU between), + shortcut, ReLU.  The stride sits in
  the 3x3 conv (ResNet v1.5, torchvision and Hugging Face's default) or, with
  ``downsample_in_bottleneck``, in the first 1x1 conv (the original paper).

Convolutions have no bias; BatchNorm (eps 1e-5, momentum 0.9 = PyTorch's 0.1) keeps
its running statistics in the ``batch_stats`` collection.  Parameters of
``resnet50``: 25,557,032, the same as torchvision's / ``microsoft/resnet-50``.

Any image size works (the head reads globally pooled features), as in Hugging Face:
``input_shape`` is the size the model is built and tested at, and inputs need only
its channel count and ``H, W >= min_image_size`` (each stride-2 step needs a pixel).

Named intermediates (``sow("intermediates", ...)``, see ``zoo.models.features``):
``stem [B, H/4, W/4, stem_features]``, ``stage1`` .. ``stageS`` (feature maps),
``pre_logits [B, widths[-1]]`` (the pooled features the head reads).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import (CONV_IMPLS, Conv2D, Dense, axes, check_positive_ints, max_pool, normalize_config,
                        with_logical_constraint)
from zoo.layers.checks import check_common_fields, check_image
from zoo.layers.norms import BatchNorm

BLOCKS = ("basic", "bottleneck")
STEMS = ("imagenet", "small")
# He (fan-out) normal initialisation of the convolutions, as torchvision and Hugging Face
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResNetConfig:
    """Config of :class:`ResNet` (defaults = ResNet-50 on 224x224 ImageNet).

    Attributes:
      input_shape: ``(H, W, C)``: the default image size (for init and examples); the model
        accepts any ``H, W >= min_image_size`` with ``C`` channels.
      block: "basic" (ResNet-18/34) or "bottleneck" (ResNet-50 and deeper).
      stage_sizes: blocks per stage (Hugging Face's ``depths``).
      widths: output channels of each stage (Hugging Face's ``hidden_sizes``; a
        bottleneck block's inner width is ``width // bottleneck_reduction``).
      stem_features: channels of the stem conv (Hugging Face's ``embedding_size``).
      stem: "imagenet" (7x7/2 conv + 3x3/2 max pool) or "small" (3x3/1 conv, no pool).
      bottleneck_reduction: see ``widths``.
      downsample_in_first_stage: the first stage strides 2 as well.
      downsample_in_bottleneck: stride in a bottleneck's first 1x1 conv instead of its 3x3.
      bn_momentum / bn_epsilon: BatchNorm settings (flax convention: 0.9 = PyTorch's 0.1).
      bn_axis_name: mapped axis to average batch statistics over (data parallel); None: per device.
      conv_impl: see ``zoo.layers.conv2d``.
      variant: the registry name, for messages.
    """

    input_shape: tuple[int, ...] = (224, 224, 3)
    num_classes: int = 1000
    block: str = "bottleneck"
    stage_sizes: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (256, 512, 1024, 2048)
    stem_features: int = 64
    stem: str = "imagenet"
    bottleneck_reduction: int = 4
    downsample_in_first_stage: bool = False
    downsample_in_bottleneck: bool = False
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_axis_name: str | None = None
    conv_impl: str = "auto"
    variant: str = "resnet"
    layout: str = "image"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        name = type(self).__name__
        normalize_config(self, tuple_fields=("stage_sizes", "widths"))
        if len(self.input_shape) != 3:
            raise ValueError(f"{name}.input_shape must be (H, W, C), got {self.input_shape!r}")
        check_common_fields(self)
        check_positive_ints(self, "stage_sizes", "widths", "stem_features", "bottleneck_reduction")
        if len(self.stage_sizes) != len(self.widths):
            raise ValueError(f"{name}: stage_sizes {self.stage_sizes} and widths {self.widths} must have the same "
                             "length (one entry per stage)")
        if self.block not in BLOCKS:
            raise ValueError(f"{name}.block must be one of {BLOCKS}, got {self.block!r}")
        if self.stem not in STEMS:
            raise ValueError(f"{name}.stem must be one of {STEMS}, got {self.stem!r}")
        if self.block == "bottleneck" and any(w % self.bottleneck_reduction for w in self.widths):
            raise ValueError(f"{name}: bottleneck widths {self.widths} must be divisible by bottleneck_reduction="
                             f"{self.bottleneck_reduction}")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"{name}.bn_momentum must be in [0, 1), got {self.bn_momentum!r}")
        if not self.bn_epsilon > 0:
            raise ValueError(f"{name}.bn_epsilon must be > 0, got {self.bn_epsilon!r}")
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"{name}.conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}")
        if self.layout != "image":
            raise ValueError(f"{name}.layout must be 'image', got {self.layout!r}")
        if min(self.input_shape[:2]) < self.min_image_size:
            raise ValueError(f"{name}: input_shape {self.input_shape} is too small for the {self.stem} stem and "
                             f"{len(self.widths)} stages (needs at least {self.min_image_size}x{self.min_image_size})")

    @property
    def min_image_size(self) -> int:
        """The smallest H (and W) the stem and stages accept: one pixel per stride-2 step."""
        return (4 if self.stem == "imagenet" else 1) * 2 ** (len(self.widths) - 1 + self.downsample_in_first_stage)


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm (+ ReLU): ``[B, H, W, C] -> [B, H / stride, W / stride, F]``."""

    config: ResNetConfig
    features: int
    kernel_size: int
    strides: int = 1
    relu: bool = True

    @nn.compact
    def __call__(self, x, *, train: bool):
        cfg = self.config
        x = Conv2D(self.features, self.kernel_size, strides=self.strides, padding=self.kernel_size // 2,
                   use_bias=False, impl=cfg.conv_impl, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
                   kernel_init=_conv_init, name="conv")(x)
        x = BatchNorm(momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon, axis_name=cfg.bn_axis_name,
                      dtype=cfg.dtype, param_dtype=cfg.param_dtype, name="bn")(x, train=train)
        return nn.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """A basic or bottleneck block: ``[B, H, W, C] -> [B, H / strides, W / strides, features]``."""

    config: ResNetConfig
    features: int
    strides: int = 1

    @nn.compact
    def __call__(self, x, *, train: bool):
        cfg = self.config
        if cfg.block == "basic":
            y = ConvBN(cfg, self.features, 3, self.strides, name="conv_0")(x, train=train)
            y = ConvBN(cfg, self.features, 3, relu=False, name="conv_1")(y, train=train)
        else:
            inner = self.features // cfg.bottleneck_reduction
            first, middle = (self.strides, 1) if cfg.downsample_in_bottleneck else (1, self.strides)
            y = ConvBN(cfg, inner, 1, first, name="conv_0")(x, train=train)
            y = ConvBN(cfg, inner, 3, middle, name="conv_1")(y, train=train)
            y = ConvBN(cfg, self.features, 1, relu=False, name="conv_2")(y, train=train)
        if x.shape[-1] != self.features or self.strides != 1:
            x = ConvBN(cfg, self.features, 1, self.strides, relu=False, name="shortcut")(x, train=train)
        return nn.relu(y + x)


class ResNet(nn.Module):
    """``[B, H, W, C] -> [B, num_classes]`` logits, for any ``H, W >= config.min_image_size``."""

    config: ResNetConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_image(x, cfg.input_shape[2], cfg.min_image_size, model=cfg.variant)
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.HEIGHT, axes.WIDTH, None))
        if cfg.stem == "imagenet":
            x = ConvBN(cfg, cfg.stem_features, 7, 2, name="stem_conv")(x, train=train)  # [B, H/2, W/2, F0]
            x = max_pool(x, 3, strides=2, padding=1)  # [B, H/4, W/4, F0]
        else:
            x = ConvBN(cfg, cfg.stem_features, 3, name="stem_conv")(x, train=train)  # [B, H, W, F0]
        self.sow("intermediates", "stem", x)
        for s, (size, width) in enumerate(zip(cfg.stage_sizes, cfg.widths)):
            for b in range(size):
                strides = 2 if b == 0 and (s > 0 or cfg.downsample_in_first_stage) else 1
                x = ResidualBlock(cfg, width, strides, name=f"stage{s + 1}_block{b}")(x, train=train)
            x = with_logical_constraint(x, (axes.BATCH, axes.HEIGHT, axes.WIDTH, None))
            self.sow("intermediates", f"stage{s + 1}", x)  # [B, H / 2^(s+2), W / 2^(s+2), widths[s]]
        x = x.astype(jnp.float32).mean(axis=(1, 2)).astype(cfg.dtype)  # [B, widths[-1]]
        self.sow("intermediates", "pre_logits", x)
        return Dense(cfg.num_classes, logical_axes=(axes.EMBED, axes.CLASSES), dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, name="head")(x)  # [B, num_classes]


def _register(name, description, **fields):
    registry.register_model(name, module=ResNet, config=ResNetConfig(variant=name, **fields),
                            description=description)


_BASIC = dict(block="basic", widths=(64, 128, 256, 512))
_register("resnet18", "ResNet-18 (basic blocks 2-2-2-2) on 224x224x3, 1000 classes", stage_sizes=(2, 2, 2, 2), **_BASIC)
_register("resnet34", "ResNet-34 (basic blocks 3-4-6-3) on 224x224x3, 1000 classes", stage_sizes=(3, 4, 6, 3), **_BASIC)
_register("resnet50", "ResNet-50 (bottlenecks 3-4-6-3, v1.5) on 224x224x3, 1000 classes", stage_sizes=(3, 4, 6, 3))
_register("resnet101", "ResNet-101 (bottlenecks 3-4-23-3, v1.5) on 224x224x3, 1000 classes",
          stage_sizes=(3, 4, 23, 3))
_register("resnet152", "ResNet-152 (bottlenecks 3-8-36-3, v1.5) on 224x224x3, 1000 classes",
          stage_sizes=(3, 8, 36, 3))
_register("resnet_tiny", "tiny ResNet (basic 1-1-1, widths 16-32-64, 3x3 stem) on 28x28x1 digits, 10 classes",
          input_shape=(28, 28, 1), num_classes=10, block="basic", stage_sizes=(1, 1, 1), widths=(16, 32, 64),
          stem_features=16, stem="small")
