"""Image datasets that need a download: CIFAR-10 through tensorflow-datasets or Hugging Face datasets.

Optional extras (``pip install "zoo[datasets]"`` or ``tensorflow-datasets``); the first
use needs the network, later ones read the library's cache.  Nothing in the tests
needs either.  Images are served in memory as float32 ``[N, 32, 32, 3]``, scaled to
[0, 1] and normalised with the CIFAR-10 channel statistics (``zoo.data.images.normalize``).
"""

from __future__ import annotations

import numpy as np

from zoo.data.images import CIFAR10_MEAN, CIFAR10_STD, normalize
from zoo.data.pipeline import ArrayDataset

EXTERNAL_DATASETS = ("cifar10",)
_INSTALL_HINT = ("needs tensorflow-datasets (`pip install tensorflow-datasets`) or Hugging Face datasets "
                 "(`pip install datasets`), and network access the first time")


def _from_tfds(name: str):
    import tensorflow_datasets as tfds

    splits = {}
    for split in ("train", "test"):
        data = tfds.as_numpy(tfds.load(name, split=split, batch_size=-1))
        splits[split] = (np.asarray(data["image"]), np.asarray(data["label"], np.int32))
    return splits


def _from_hf(name: str):
    import datasets

    ds = datasets.load_dataset(name)
    splits = {}
    for split in ("train", "test"):
        part = ds[split].with_format("numpy")
        image_key = "img" if "img" in part.column_names else "image"
        splits[split] = (np.asarray(part[image_key]), np.asarray(part["label"], np.int32))
    return splits


def _fetch(name: str):
    """``{"train": (uint8 images, labels), "test": ...}`` from whichever library is installed."""
    for loader, module in ((_from_tfds, "tensorflow_datasets"), (_from_hf, "datasets")):
        try:
            __import__(module)
        except ImportError:
            continue
        return loader(name)
    raise ValueError(f"dataset {name!r} {_INSTALL_HINT}; neither is installed. The bundled 'digits' works offline")


def load_cifar10(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """CIFAR-10 (50,000 / 10,000 RGB 32x32 images, 10 classes) for an image model with input ``(32, 32, 3)``."""
    del seed  # the split is fixed
    if name != "cifar10":
        raise ValueError(f"cifar10 takes no arguments; got {name!r}")
    shape = tuple(model_config.input_shape)
    if model_config.layout != "image" or shape != (32, 32, 3):
        raise ValueError(f"cifar10 serves [N, 32, 32, 3] images; the model expects layout {model_config.layout!r} "
                         f"with input_shape {shape} (override input_shape=(32, 32, 3))")
    if model_config.num_classes != 10:
        raise ValueError(f"cifar10 has 10 classes; the model has num_classes={model_config.num_classes}")
    splits = _fetch("cifar10")

    def prepare(images):
        return np.asarray(normalize(images.astype(np.float32) / 255.0, CIFAR10_MEAN, CIFAR10_STD))

    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    return ArrayDataset.labelled("cifar10", prepare(x_train), y_train, prepare(x_test), y_test, 10, "image")


__all__ = ["EXTERNAL_DATASETS", "load_cifar10"]
