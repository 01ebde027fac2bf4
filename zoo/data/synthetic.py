"""Synthetic data of any model's batch schema (for benchmarks and smoke tests).

Classification of float inputs: labels come from a fixed random linear map of
the inputs, so the task is learnable and a training curve means something.
Other tasks (and token inputs): random batches of the task's schema
(``Task.example_batch``), deterministic in the seed.
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
    return ArrayDataset.labelled("synthetic", x_train, y_train, x_test, y_test, num_classes, layout)


def synthetic_dataset(model_config, *, seed: int = 0, num_train: int = 2048, num_test: int = 512) -> ArrayDataset:
    """Synthetic data for a model config, in its task's schema (see the module docstring)."""
    import jax

    from zoo.tasks import task_for

    task = task_for(model_config)
    if task.name == "classification" and model_config.layout != "tokens":
        return make_synthetic(tuple(model_config.input_shape), model_config.num_classes, model_config.layout,
                              num_train=num_train, num_test=num_test, seed=seed)
    key_train, key_test = jax.random.split(jax.random.key(seed))
    train = jax.device_get(task.example_batch(model_config, key_train, num_train))
    test = jax.device_get(task.example_batch(model_config, key_test, num_test))
    return ArrayDataset("synthetic", {k: np.asarray(v) for k, v in train.items()},
                        {k: np.asarray(v) for k, v in test.items()}, getattr(model_config, "num_classes", None),
                        model_config.layout)
