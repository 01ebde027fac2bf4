"""Datasets and input pipelines.

``load_dataset(name, config)`` serves a registered dataset in the layout and
input shape a model's config declares.
"""

from __future__ import annotations

from zoo.data.augment import augment_batch, random_shift, resolve_augment
from zoo.data.digits import load_digits_arrays, to_layout
from zoo.data.pipeline import ArrayDataset, BatchSchedule, eval_batches, train_batch
from zoo.data.synthetic import make_synthetic, synthetic_dataset
from zoo.data.text import TEXT_DATASETS, load_text_dataset

DATASETS = ("digits", "synthetic", "cifar10") + TEXT_DATASETS


def load_dataset(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """Loads dataset ``name`` shaped for a model.

    Args:
      name: one of ``DATASETS``.
      model_config: a registered model's config (``input_shape``, ``layout``, its task's fields).
      seed: seed of synthetic data (the digits split is fixed).

    Returns:
      an ``ArrayDataset`` in the schema of the model's task (``zoo.tasks``), inputs shaped
      ``[N, *model_config.input_shape]``.
    """
    shape, layout = tuple(model_config.input_shape), model_config.layout
    if name == "digits":
        from zoo.registry import task_name

        if task_name(model_config) != "classification":
            raise ValueError(f"digits serves classification (images and labels); the model's task is "
                             f"{task_name(model_config)!r}")
        if model_config.num_classes != 10:
            raise ValueError(f"digits has 10 classes; the model has num_classes={model_config.num_classes}")
        x_train, y_train, x_test, y_test = load_digits_arrays()
        return ArrayDataset.labelled("digits", to_layout(x_train, layout, shape), y_train, to_layout(x_test, layout, shape),
                            y_test, 10, layout)
    if name == "synthetic":
        return synthetic_dataset(model_config, seed=seed)
    if name == "cifar10":  # optional extra: tensorflow-datasets or Hugging Face datasets
        from zoo.data.external import load_cifar10

        return load_cifar10(model_config)
    if name == "imagenet":
        raise ValueError("imagenet does not fit the in-memory pipeline (ArrayDataset); zoo has no streaming ImageNet "
                         "loader yet. Use cifar10, digits or synthetic, or feed your own batches to "
                         "zoo.train.train_step")
    if name in TEXT_DATASETS or name.startswith("sentiment:"):
        return load_text_dataset(name, model_config, seed=seed)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")


__all__ = ["DATASETS", "ArrayDataset", "BatchSchedule", "eval_batches", "load_dataset", "load_digits_arrays",
           "make_synthetic", "synthetic_dataset", "to_layout", "train_batch", "augment_batch", "random_shift",
           "resolve_augment"]
