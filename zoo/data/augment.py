"""Training-time augmentation, deterministic in ``(seed, step)`` so resume stays exact.

Specs: ``"none"``, or ``"shift:N"``: translate each example by up to ``N``
pixels along its two leading axes (zero fill), for image inputs ``[H, W, C]``
and for images served as row sequences ``[T, D]``.  ``"auto"`` picks
``shift:2`` for digit images, ``shift:1`` for digit row sequences and
``none`` elsewhere.  Image models also take the on-device operations of
``zoo.data.images`` (``crop:N``, ``rrc:S``, ``flip``, ``jitter:A``, ``smooth:E``,
``mixup:A``), comma-separated; the host applies only ``shift``.
"""

from __future__ import annotations

import numpy as np

from zoo.data.images import parse_augment

# datasets whose examples are images (in every layout they are served in)
_IMAGE_DATASETS = ("digits",)


def resolve_augment(augment: str, layout: str, dataset: str) -> str:
    """Validates an augmentation spec and resolves ``"auto"``; returns ``"none"`` or ``"shift:N"``."""
    if augment == "auto":
        if dataset in _IMAGE_DATASETS and layout == "image":
            return "shift:2"
        if dataset in _IMAGE_DATASETS and layout == "sequence":
            return "shift:1"
        return "none"
    parsed = parse_augment(augment)
    if parsed.shift and layout not in ("image", "sequence"):
        raise ValueError(f"shift augmentation needs image or row-sequence inputs, not layout {layout!r}")
    if parsed.on_device and layout != "image":
        raise ValueError(f"augment {augment!r}: crop, rrc, flip, jitter, smooth and mixup need image inputs, "
                         f"not layout {layout!r}")
    return parsed.to_spec()


def random_shift(x: np.ndarray, rng: np.random.Generator, max_shift: int, *, rows: np.ndarray | None = None,
                 batch_size: int | None = None) -> np.ndarray:
    """Translates each example of ``x [B, H, W, ...]`` by up to ``max_shift`` along H and W, filling zeros.

    Args:
      x: a batch whose axes 1 and 2 are spatial (``[B, H, W, C]`` or ``[B, T, D]``).
      rng: source of the per-example offsets.
      max_shift: largest shift along each axis.
      rows / batch_size: ``x`` holds rows ``rows`` of a batch of ``batch_size``; they
        get the offsets those rows get when the whole batch is shifted.

    Returns:
      the shifted batch, same shape and dtype.
    """
    b, h, w = x.shape[:3]
    pad = [(0, 0), (max_shift, max_shift), (max_shift, max_shift)] + [(0, 0)] * (x.ndim - 3)
    padded = np.pad(x, pad)
    offsets = rng.integers(0, 2 * max_shift + 1, size=(b if rows is None else batch_size, 2))
    if rows is not None:
        offsets = offsets[rows]
    return np.stack([padded[i, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def augment_batch(x: np.ndarray, augment: str, *, seed: int, step: int, rows: np.ndarray | None = None,
                  batch_size: int | None = None) -> np.ndarray:
    """Applies the host part (``shift``) of a resolved ``augment`` spec, drawing randomness from ``(seed, step)``.

    ``rows`` / ``batch_size``: ``x`` is only these rows of the batch (see :func:`random_shift`).
    """
    shift = parse_augment(augment).shift
    if not shift:
        return x
    return random_shift(x, np.random.default_rng([seed, step, 0x5A]), shift, rows=rows, batch_size=batch_size)
