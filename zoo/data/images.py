"""Image input pipeline on device: normalisation, augmentation, soft labels, mixup.

Every function here is a pure JAX function of ``(key, batch)`` that jits and runs
on the accelerator next to the model, so augmentation costs no host time and is
deterministic in the key (the training loop derives it from the train state's RNG
and the step, so resume stays exact).  Shapes: images ``inputs [B, H, W, C]`` float,
labels ``label [B]`` int or ``[B, K]`` soft (probabilities).

Augment specs (``zoo train --augment``, ``TrainConfig.augment``) are comma-separated
operations, applied in this order::

    shift:N     translate by up to N pixels, zero fill (host-side, numpy; the seed models' default)
    crop:N      pad N pixels (zeros) and crop back at a random offset (CIFAR-style random crop)
    rrc:S       random resized crop: area fraction in [S, 1], aspect ratio in [3/4, 4/3] (ImageNet-style)
    flip        horizontal flip with probability 1/2
    jitter:A    brightness and contrast jitter of strength A
    mixup:A     mixup with Beta(A, A) weights (implies soft labels)

e.g. ``"crop:4,flip"`` for CIFAR-10 or ``"rrc:0.08,flip,mixup:0.2"`` for ImageNet.  Label
smoothing is a property of the loss, not of the data: ``--label-smoothing E``
(``TrainConfig.label_smoothing``), which also applies to mixed-up targets.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

# ImageNet statistics used by torchvision / Hugging Face image processors (RGB, [0, 1] pixels)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def normalize(x, mean, std):
    """``(x - mean) / std`` per channel: ``[..., C]`` with ``mean`` / ``std`` of length C."""
    mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
    if mean.shape != (x.shape[-1],) or std.shape != (x.shape[-1],):
        raise ValueError(f"normalize: mean {mean.shape} and std {std.shape} must have one value per channel "
                         f"({x.shape[-1]})")
    return ((x - mean) / std).astype(x.dtype)


def _check_images(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name} expects images [B, H, W, C], got shape {x.shape}")


def random_crop(key, x, padding: int):
    """Pads ``padding`` zeros on every side and crops each image back to ``[H, W]`` at a random offset."""
    _check_images(x, "random_crop")
    b, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (b, 2), 0, 2 * padding + 1)
    return jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, x.shape[3])))(padded, offsets)


def random_flip(key, x):
    """Flips each image left-right with probability 1/2."""
    _check_images(x, "random_flip")
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1, 1))
    return jnp.where(flip, x[:, :, ::-1, :], x)


def random_resized_crop(key, x, min_scale: float = 0.08, ratio=(3 / 4, 4 / 3)):
    """Crops a random box (area fraction in ``[min_scale, 1]``, aspect in ``ratio``) and resizes it to ``[H, W]``.

    Bilinear, via ``jax.image.scale_and_translate`` (no host round trip).
    """
    _check_images(x, "random_resized_crop")
    b, h, w, c = x.shape
    k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
    area = jax.random.uniform(k_area, (b,), minval=min_scale, maxval=1.0)
    log_r = jax.random.uniform(k_ratio, (b,), minval=np.log(ratio[0]), maxval=np.log(ratio[1]))
    aspect = jnp.exp(log_r)
    ch = jnp.clip(jnp.sqrt(area / aspect) * h, 1.0, h)  # crop height / width in pixels
    cw = jnp.clip(jnp.sqrt(area * aspect) * w, 1.0, w)
    y0 = jax.random.uniform(k_y, (b,)) * (h - ch)
    x0 = jax.random.uniform(k_x, (b,)) * (w - cw)

    def one(img, ch, cw, y0, x0):
        scale = jnp.stack([h / ch, w / cw])
        return jax.image.scale_and_translate(img, (h, w, c), (0, 1), scale, -jnp.stack([y0, x0]) * scale,
                                             method="linear", antialias=False)

    return jax.vmap(one)(x, ch, cw, y0, x0).astype(x.dtype)


def color_jitter(key, x, strength: float):
    """Random brightness (added) and contrast (scaled about each image's mean), each in ``[-strength, strength]``."""
    _check_images(x, "color_jitter")
    kb, kc = jax.random.split(key)
    b = x.shape[0]
    brightness = jax.random.uniform(kb, (b, 1, 1, 1), minval=-strength, maxval=strength)
    contrast = 1 + jax.random.uniform(kc, (b, 1, 1, 1), minval=-strength, maxval=strength)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return ((x - mean) * contrast + mean + brightness).astype(x.dtype)


def one_hot(labels, num_classes: int, smoothing: float = 0.0):
    """``[B]`` int labels -> ``[B, K]`` targets ``(1 - smoothing) * onehot + smoothing / K``."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), got {smoothing!r}")
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    return onehot * (1.0 - smoothing) + smoothing / num_classes


def mixup(key, x, y, alpha: float):
    """Mixup (Zhang et al. 2018): each example blended with another of the batch, weight ``lam ~ Beta(alpha, alpha)``.

    Args:
      key: randomness of the weight and the pairing.
      x: images ``[B, H, W, C]``.
      y: soft labels ``[B, K]`` (see :func:`one_hot`).
      alpha: Beta concentration (> 0).

    Returns:
      ``(lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm])``, one ``lam`` per batch.
    """
    if y.ndim != 2:
        raise ValueError(f"mixup needs soft labels [B, K] (see one_hot), got shape {y.shape}")
    k_lam, k_perm = jax.random.split(key)
    lam = jax.random.beta(k_lam, alpha, alpha)
    perm = jax.random.permutation(k_perm, x.shape[0])
    return ((lam * x + (1 - lam) * x[perm]).astype(x.dtype), lam * y + (1 - lam) * y[perm])


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageAugment:
    """A parsed augment spec (see the module docstring); zeros / False mean off."""

    shift: int = 0
    crop: int = 0
    resized_crop: float = 0.0
    flip: bool = False
    jitter: float = 0.0
    mixup: float = 0.0

    @property
    def on_device(self) -> bool:
        return bool(self.crop or self.resized_crop or self.flip or self.jitter or self.mixup)

    def to_spec(self) -> str:
        parts = [f"shift:{self.shift}" if self.shift else "", f"crop:{self.crop}" if self.crop else "",
                 f"rrc:{self.resized_crop:g}" if self.resized_crop else "", "flip" if self.flip else "",
                 f"jitter:{self.jitter:g}" if self.jitter else "",
                 f"mixup:{self.mixup:g}" if self.mixup else ""]
        return ",".join(p for p in parts if p) or "none"


_SPEC_HELP = ("augment must be 'auto', 'none' or comma-separated operations shift:N, crop:N, rrc:S, flip, "
              "jitter:A, mixup:A")


def parse_augment(spec: str) -> ImageAugment:
    """Parses an augment spec (``"none"`` or e.g. ``"crop:4,flip"``); ValueError naming the bad part."""
    if spec == "none":
        return ImageAugment()
    fields: dict = {}
    for part in spec.split(","):
        op, _, arg = part.strip().partition(":")
        try:
            if op == "flip" and not arg:
                fields["flip"] = True
            elif op in ("shift", "crop") and arg.isdigit() and int(arg) >= 1:
                fields[op] = int(arg)
            elif op == "rrc" and 0 < float(arg) <= 1:
                fields["resized_crop"] = float(arg)
            elif op == "jitter" and 0 < float(arg) < 1:
                fields["jitter"] = float(arg)
            elif op == "smooth":
                raise ValueError(f"label smoothing is not an augmentation: drop {part!r} from the augment spec "
                                 f"and pass --label-smoothing {arg or 'E'} (TrainConfig.label_smoothing)")
            elif op == "mixup" and float(arg) > 0:
                fields["mixup"] = float(arg)
            else:
                raise ValueError
        except ValueError as e:
            if "label smoothing" in str(e):
                raise
            raise ValueError(f"{_SPEC_HELP}; got {spec!r} (bad part {part!r})") from None
    return ImageAugment(**fields)


@functools.lru_cache(maxsize=None)  # one transform object per (spec, classes)
def make_batch_transform(augment: ImageAugment, num_classes: int) -> Callable | None:
    """The on-device part of ``augment`` as ``transform(key, batch) -> batch``, or None if there is none.

    It changes the batch's ``inputs`` (images) and, with mixup, its ``label``, which
    comes back as soft ``[B, num_classes]`` targets.
    """
    if not augment.on_device:
        return None

    def transform(key, batch):
        keys = iter(jax.random.split(key, 5))
        x, y = batch["inputs"], batch["label"]
        if augment.crop:
            x = random_crop(next(keys), x, augment.crop)
        if augment.resized_crop:
            x = random_resized_crop(next(keys), x, augment.resized_crop)
        if augment.flip:
            x = random_flip(next(keys), x)
        if augment.jitter:
            x = color_jitter(next(keys), x, augment.jitter)
        if augment.mixup:
            y = one_hot(y, num_classes) if y.ndim == 1 else y
            x, y = mixup(next(keys), x, y, augment.mixup)
        return {**batch, "inputs": x, "label": y}

    return transform


__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "IMAGENET_MEAN", "IMAGENET_STD", "ImageAugment", "color_jitter",
           "make_batch_transform", "mixup", "normalize", "one_hot", "parse_augment", "random_crop", "random_flip",
           "random_resized_crop"]
