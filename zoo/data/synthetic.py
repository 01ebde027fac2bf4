"""Synthetic classification data of any model's input shape (for benchmarks and smoke tests).

Labels come from a fixed random linear map of the inputs, so the task is
learnable and a training curve means something.
"""

from __future__ import annotations

import numpy as np

from zoo.data.pipeline import ArrayDataset


def make_synthetic(input_shape, num_classes: int, layout: str, *, num_train: int = 2048, num_test: int = 512,
                   seed: int = 0) -> ArrayDataset:
    """Gaussian inputs ``[N, *input_shape]`` with labels ``argmax(x @ W)``."""
    rng = np.random.default_rng(seed)
    dim = int(np.prod(input_shape))
    w = rng.standard_normal((dim, num_classes)).astype(np.float32)

    def split(n):
        x = rng.standard_normal((n, *input_shape)).astype(np.float32)
        return x, (x.reshape(n, dim) @ w).argmax(-1).astype(np.int32)

    x_train, y_train = split(num_train)
    x_test, y_test = split(num_test)
    return ArrayDataset("synthetic", x_train, y_train, x_test, y_test, num_classes, layout)
