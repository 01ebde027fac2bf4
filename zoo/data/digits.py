"""scikit-learn's bundled handwritten digits (1,797 real 8x8 images, no download).

The split is fixed and seeded (stratified, 20% test) and served in the layout
a model's config declares:

* ``image``    ``[N, 28, 28, 1]``: each 8x8 image upsampled 3x (nearest) to
  24x24 and zero-padded by 2, the way MNIST digits sit in a 28x28 frame;
* ``sequence`` ``[N, 10, 10]``: the 8 image rows as time steps of 8 pixels,
  zero-padded to the seed LSTM's (10, 10);
* ``vector``   ``[N, 64]`` (flat 8x8) or ``[N, 784]`` (flat 28x28 image).

Pixel values are scaled from 0..16 to [0, 1].
"""

from __future__ import annotations

import numpy as np

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits_arrays(*, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED):
    """Returns ``(x_train, y_train, x_test, y_test)``: ``[N, 8, 8]`` float32 in [0, 1], int32 labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # [1797, 8, 8]
    labels = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return x_train, y_train, x_test, y_test


def to_layout(images: np.ndarray, layout: str, input_shape: tuple[int, ...]) -> np.ndarray:
    """Reshapes ``[N, 8, 8]`` digits to ``[N, *input_shape]`` for ``layout``.

    Raises:
      ValueError: when the digits cannot fill ``input_shape`` (e.g. an image
        model declaring 3 channels, or a sequence shorter than 8 steps).
    """
    n = images.shape[0]
    shape = tuple(input_shape)
    if layout == "image":
        if len(shape) != 3 or shape[2] != 1 or shape[0] < 8 or shape[1] < 8:
            raise ValueError(f"digits are 1-channel 8x8 images; cannot serve image input_shape {shape}")
        scale = max(1, min(shape[0] // 8, shape[1] // 8))
        up = images.repeat(scale, axis=1).repeat(scale, axis=2)  # [N, 8s, 8s]
        return _pad_to(up, shape[:2])[..., None]
    if layout == "sequence":
        if len(shape) != 2 or shape[0] < 8 or shape[1] < 8:
            raise ValueError(f"digits as row sequences need input_shape (T >= 8, D >= 8); got {shape}")
        return _pad_to(images, shape)
    if layout == "vector":
        if shape == (64,):
            return images.reshape(n, 64)
        if shape == (784,):
            return to_layout(images, "image", (28, 28, 1)).reshape(n, 784)
        raise ValueError(f"digits as vectors come as (64,) or (784,); got input_shape {shape}")
    raise ValueError(f"unknown layout {layout!r}; expected 'image', 'sequence' or 'vector'")


def _pad_to(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Zero-pads the two trailing axes of ``x`` to ``hw``, centred."""
    dh, dw = hw[0] - x.shape[1], hw[1] - x.shape[2]
    return np.pad(x, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))
