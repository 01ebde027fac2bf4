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

_LOADERS: dict = {}


def register_dataset(name: str, loader) -> None:
    """Makes ``load_dataset(name, ...)`` (and ``zoo train --data name``) serve a dataset.

    Args:
      name: the dataset's name; ``name:ARGS`` (e.g. ``sentiment:DIR``, ``fsdd:speaker=jackson``) reaches the same
        loader with the whole string.
      loader: ``loader(name, model_config, *, seed) -> ArrayDataset``, or ``"module:function"`` naming one, imported
        on first use (so a dataset's optional dependencies cost nothing until it is asked for).
    """
    if not name or ":" in name:
        raise ValueError(f"a dataset name is a non-empty word without ':'; got {name!r}")
    if name in _LOADERS:
        raise ValueError(f"dataset {name!r} is registered already")
    _LOADERS[name] = loader


def list_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    return sorted(_LOADERS)


def load_dataset(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """Loads dataset ``name`` shaped for a model.

    Args:
      name: a registered name (``list_datasets()``), optionally followed by ``:ARGS``.
      model_config: a registered model's config (``input_shape``, ``layout``, its task's fields).
      seed: seed of generated data (fixed splits ignore it).

    Returns:
      an ``ArrayDataset`` in the schema of the model's task (``zoo.tasks``), inputs shaped
      ``[N, *model_config.input_shape]``.
    """
    loader = _LOADERS.get(str(name).split(":", 1)[0])
    if loader is None:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")
    if isinstance(loader, str):
        import importlib

        module, function = loader.split(":")
        loader = getattr(importlib.import_module(module), function)
    return loader(name, model_config, seed=seed)


def _digits(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    del seed  # the split is fixed
    from zoo.registry import task_name

    if name != "digits":
        raise ValueError(f"digits takes no arguments; got {name!r}")
    if task_name(model_config) != "classification":
        raise ValueError(f"digits serves classification (images and labels); the model's task is "
                         f"{task_name(model_config)!r}")
    if model_config.num_classes != 10:
        raise ValueError(f"digits has 10 classes; the model has num_classes={model_config.num_classes}")
    shape, layout = tuple(model_config.input_shape), model_config.layout
    x_train, y_train, x_test, y_test = load_digits_arrays()
    return ArrayDataset.labelled("digits", to_layout(x_train, layout, shape), y_train, to_layout(x_test, layout, shape),
                                 y_test, 10, layout)


def _synthetic(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    if name != "synthetic":
        raise ValueError(f"synthetic takes no arguments; got {name!r}")
    return synthetic_dataset(model_config, seed=seed)


def _imagenet(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    raise ValueError("imagenet does not fit the in-memory pipeline (ArrayDataset); zoo has no streaming ImageNet "
                     "loader yet. Use cifar10, digits or synthetic, or feed your own batches to "
                     "zoo.train.train_step")


register_dataset("digits", _digits)
register_dataset("synthetic", _synthetic)
register_dataset("cifar10", "zoo.data.external:load_cifar10")  # optional extra: tensorflow-datasets or HF datasets
register_dataset("imagenet", _imagenet)
register_dataset("fsdd", "zoo.data.audio:load_fsdd")  # Free Spoken Digit Dataset, read from a directory
register_dataset("series", "zoo.data.timeseries:load_series_dataset")  # series:co2, series:taylor, ...
register_dataset("digits_ovr", "zoo.data.tabular:load_anomaly_dataset")  # digits_ovr:K, one digit normal
register_dataset("breast_cancer", "zoo.data.tabular:load_anomaly_dataset")
register_dataset("movielens", "zoo.data.ratings:load_movielens_dataset")  # rating or ranking split by the model's task
register_dataset("translate", "zoo.data.seq2seq:load_translation")  # translate:en-de, translate:de-fr, ...
register_dataset("docstrings", "zoo.data.seq2seq:load_docstrings")  # standard-library docstring summaries
register_dataset("wmt", "zoo.data.corpora:load_wmt")  # wmt:DIR,pair=de-en (HF datasets Parquet / Arrow files)
register_dataset("cnn_dailymail", "zoo.data.corpora:load_summarization_corpus")  # cnn_dailymail:DIR (Parquet)
register_dataset("xsum", "zoo.data.corpora:load_summarization_corpus")  # xsum:DIR (Parquet)
register_dataset("squad", "zoo.data.corpora:load_squad")  # squad:DIR (SQuAD v1.1 / v2.0 JSON), BERT QA
register_dataset("pii", "zoo.data.pii:load_pii")  # Faker sentences with BIO-tagged personal data (needs faker)
for _name in TEXT_DATASETS:
    register_dataset(_name, load_text_dataset)

DATASETS = tuple(list_datasets())  # the built-in names (``list_datasets()`` also lists later registrations)


__all__ = ["DATASETS", "list_datasets", "register_dataset", "ArrayDataset", "BatchSchedule", "eval_batches", "load_dataset", "load_digits_arrays",
           "make_synthetic", "synthetic_dataset", "to_layout", "train_batch", "augment_batch", "random_shift",
           "resolve_augment"]
