"""Hugging Face ``ResNetForImageClassification`` <-> zoo ResNet (local directories only).

    model, variables = zoo.from_pretrained("path/to/microsoft-resnet-50")   # config.json + model.safetensors
    logits = model.apply(variables, images_nhwc, train=False)               # any H, W, as in transformers

Every checkpoint tensor is mapped (``num_batches_tracked`` counters aside), the
BatchNorm running statistics included (into ``batch_stats``); a missing,
unexpected or mis-shaped key is an error naming it.  PyTorch convolutions are
``[O, I, KH, KW]`` on NCHW images, zoo's ``[KH, KW, I, O]`` on NHWC: feed
``pixel_values.transpose(0, 2, 3, 1)``.  Imported lazily (not by ``zoo.models``).
"""

from __future__ import annotations

import os

import jax
import numpy as np

from zoo.convert import hf as hf_io
from zoo.convert.hf import KeyMap
from zoo.models.resnet.model import ResNet, ResNetConfig

MODEL_TYPE = "resnet"
MODULE = ResNet
ARCHITECTURES = ("ResNetForImageClassification",)

_BN_FIELDS = (("weight", "params", "scale"), ("bias", "params", "bias"),
              ("running_mean", "batch_stats", "mean"), ("running_var", "batch_stats", "var"))


def _conv_to_zoo(w):
    return np.transpose(w, (2, 3, 1, 0))  # [O, I, KH, KW] -> [KH, KW, I, O]


def _conv_to_hf(k):
    return np.transpose(k, (3, 2, 0, 1))


def config_from_hf(hf_config: dict, **overrides) -> ResNetConfig:
    """A :class:`ResNetConfig` equal to a Hugging Face ``ResNetConfig`` (as its ``config.json`` dict).

    ``overrides`` change zoo-only fields (``input_shape``: the default image size, ``(224, 224,
    num_channels)`` unless given; the model accepts other sizes too), ``dtype``, ``conv_impl``, ...).
    """
    if hf_config.get("model_type", "resnet") != "resnet":
        raise hf_io.CheckpointFormatError(f"expected a ResNet config (model_type 'resnet'), got model_type "
                                          f"{hf_config.get('model_type')!r}")
    if hf_config.get("hidden_act", "relu") != "relu":
        raise hf_io.CheckpointFormatError(f"zoo's ResNet uses ReLU; the checkpoint has hidden_act="
                                          f"{hf_config['hidden_act']!r}")
    num_labels = len(hf_config["id2label"]) if "id2label" in hf_config else hf_config.get("num_labels", 2)
    channels = hf_config.get("num_channels", 3)
    fields = dict(
        input_shape=(224, 224, channels), num_classes=num_labels, block=hf_config.get("layer_type", "bottleneck"),
        stage_sizes=tuple(hf_config.get("depths", (3, 4, 6, 3))),
        widths=tuple(hf_config.get("hidden_sizes", (256, 512, 1024, 2048))),
        stem_features=hf_config.get("embedding_size", 64), stem="imagenet",
        downsample_in_first_stage=bool(hf_config.get("downsample_in_first_stage", False)),
        downsample_in_bottleneck=bool(hf_config.get("downsample_in_bottleneck", False)),
    )
    return ResNetConfig(**{**fields, **overrides})


def config_to_hf(config: ResNetConfig) -> dict:
    """The Hugging Face ``config.json`` dict of a zoo ResNet (imagenet stem, reduction 4 only)."""
    if config.stem != "imagenet" or config.bottleneck_reduction != 4:
        raise ValueError("Hugging Face ResNets have the imagenet stem and bottleneck_reduction 4; this config has "
                         f"stem={config.stem!r}, bottleneck_reduction={config.bottleneck_reduction}")
    return {
        "architectures": ["ResNetForImageClassification"], "model_type": "resnet",
        "num_channels": config.input_shape[-1], "embedding_size": config.stem_features,
        "hidden_sizes": list(config.widths), "depths": list(config.stage_sizes), "layer_type": config.block,
        "hidden_act": "relu", "downsample_in_first_stage": config.downsample_in_first_stage,
        "downsample_in_bottleneck": config.downsample_in_bottleneck,
        "id2label": {str(i): f"LABEL_{i}" for i in range(config.num_classes)},
        "label2id": {f"LABEL_{i}": i for i in range(config.num_classes)},
    }


def _conv_bn_maps(hf_prefix: str, zoo_path: tuple[str, ...]) -> list[KeyMap]:
    maps = [KeyMap(f"{hf_prefix}.convolution.weight", ("params", *zoo_path, "conv", "kernel"),
                   _conv_to_zoo, _conv_to_hf)]
    for hf_name, collection, zoo_name in _BN_FIELDS:
        maps.append(KeyMap(f"{hf_prefix}.normalization.{hf_name}", (collection, *zoo_path, "bn", zoo_name)))
    return maps


def key_maps(config: ResNetConfig) -> list[KeyMap]:
    """One :class:`~zoo.convert.hf.KeyMap` per zoo variable (paths start with the collection)."""
    maps = _conv_bn_maps("resnet.embedder.embedder", ("stem_conv",))
    in_features = config.stem_features
    convs = 2 if config.block == "basic" else 3
    for s, (size, width) in enumerate(zip(config.stage_sizes, config.widths)):
        for b in range(size):
            block, prefix = f"stage{s + 1}_block{b}", f"resnet.encoder.stages.{s}.layers.{b}"
            strides = 2 if b == 0 and (s > 0 or config.downsample_in_first_stage) else 1
            for i in range(convs):
                maps += _conv_bn_maps(f"{prefix}.layer.{i}", (block, f"conv_{i}"))
            if in_features != width or strides != 1:
                maps += _conv_bn_maps(f"{prefix}.shortcut", (block, "shortcut"))
            in_features = width
    maps += [KeyMap("classifier.1.weight", ("params", "head", "kernel"), np.transpose, np.transpose),
             KeyMap("classifier.1.bias", ("params", "head", "bias"))]
    return maps


def variables_from_hf(config: ResNetConfig, tensors: dict, *, source: str = "checkpoint") -> dict:
    """zoo variables (``params`` and ``batch_stats``) from a ResNet state dict (numpy arrays by HF key)."""
    model = ResNet(config=config)
    shapes = jax.eval_shape(lambda: _init(model))
    ignore = [k for k in tensors if k.endswith("num_batches_tracked")]
    return hf_io.import_params(key_maps(config), tensors, shapes, source=source, ignore=ignore)


def _init(model):
    from zoo.registry import init_variables

    return init_variables(model, jax.random.key(0))


def from_pretrained(path: str | os.PathLike, *, allow_pickle: bool = False, **overrides):
    """Loads a ``ResNetForImageClassification`` checkpoint directory.

    Args:
      path: local directory with ``config.json`` and ``model.safetensors`` (or
        ``pytorch_model.bin`` with ``allow_pickle=True``, read with ``weights_only=True``).
      allow_pickle: see :func:`zoo.convert.hf.read_weights`.
      **overrides: zoo config fields, e.g. ``dtype="bfloat16"``, ``input_shape=(160, 160, 3)`` (the
        default size; any ``H, W >= config.min_image_size`` is accepted regardless).

    Returns:
      ``(model, variables)``: a :class:`ResNet` and its ``{"params", "batch_stats"}``;
      ``model.apply(variables, x_nhwc, train=False)`` gives the checkpoint's logits.
    """
    path = hf_io.resolve_dir(path)
    hf_config = hf_io.read_config(path)
    hf_io.check_architecture(path, hf_config, ARCHITECTURES, "ResNet", "(the classifier is part of the model)")
    config = config_from_hf(hf_config, **overrides)
    tensors = hf_io.read_weights(path, allow_pickle=allow_pickle)
    return ResNet(config=config), variables_from_hf(config, tensors, source=path)


def save_pretrained(model: ResNet, variables: dict, path: str | os.PathLike) -> str:
    """Writes ``variables`` of ``model`` as a Hugging Face ``ResNetForImageClassification`` directory."""
    tensors = hf_io.export_tensors(key_maps(model.config), jax.device_get(variables))
    return hf_io.write_checkpoint(path, config_to_hf(model.config), tensors)


__all__ = ["ARCHITECTURES", "MODEL_TYPE", "MODULE", "config_from_hf", "config_to_hf", "from_pretrained", "key_maps",
           "save_pretrained", "variables_from_hf"]
