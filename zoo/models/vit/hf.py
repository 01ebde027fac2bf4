"""Hugging Face ``ViTForImageClassification`` <-> zoo ViT (local directories only).

    model, variables = zoo.from_pretrained("path/to/google-vit-base-patch16-224")   # config.json + safetensors
    logits = model.apply(variables, images_nhwc, train=False)   # [B, image_size, image_size, C]

Every checkpoint tensor is mapped; a missing, unexpected or mis-shaped key is an
error naming it.  The patch embedding's ``[D, C, P, P]`` conv becomes zoo's
``[P, P, C, D]``; attention projections become ``[D, N, H]`` / ``[N, H, D]``.
Feed NHWC images (``pixel_values.transpose(0, 2, 3, 1)``) of the checkpoint's
``image_size``; other sizes are refused (transformers would need
``interpolate_pos_encoding=True``, which zoo does not implement).  Imported lazily.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from zoo.convert import hf as hf_io
from zoo.convert.hf import KeyMap, layer_norm_maps, linear_maps
from zoo.models.vit.model import ViT, ViTConfig

MODEL_TYPE = "vit"
MODULE = ViT
ARCHITECTURES = ("ViTForImageClassification",)


def config_from_hf(hf_config: dict, **overrides) -> ViTConfig:
    """A :class:`ViTConfig` equal to a Hugging Face ``ViTConfig`` (its ``config.json`` dict)."""
    if hf_config.get("model_type", "vit") != "vit":
        raise hf_io.CheckpointFormatError(f"expected a ViT config (model_type 'vit'), got model_type "
                                          f"{hf_config.get('model_type')!r}")
    if hf_config.get("hidden_act", "gelu") != "gelu" or not hf_config.get("qkv_bias", True):
        raise hf_io.CheckpointFormatError(
            f"zoo's ViT uses exact GELU and q/k/v biases; the checkpoint has hidden_act="
            f"{hf_config.get('hidden_act')!r}, qkv_bias={hf_config.get('qkv_bias')!r}")
    size = hf_config.get("image_size", 224)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    patch = hf_config.get("patch_size", 16)
    if not isinstance(patch, int):
        if patch[0] != patch[1]:
            raise hf_io.CheckpointFormatError(f"zoo's ViT has square patches; the checkpoint has patch_size={patch}")
        patch = patch[0]
    num_labels = len(hf_config["id2label"]) if "id2label" in hf_config else hf_config.get("num_labels", 2)
    fields = dict(
        input_shape=(h, w, hf_config.get("num_channels", 3)), num_classes=num_labels, patch_size=patch,
        hidden_size=hf_config.get("hidden_size", 768), num_layers=hf_config.get("num_hidden_layers", 12),
        num_heads=hf_config.get("num_attention_heads", 12), mlp_dim=hf_config.get("intermediate_size", 3072),
        dropout_rate=float(hf_config.get("hidden_dropout_prob", 0.0)),
        attention_dropout_rate=float(hf_config.get("attention_probs_dropout_prob", 0.0)),
        layer_norm_eps=hf_config.get("layer_norm_eps", 1e-12), pooling="cls",
    )
    return ViTConfig(**{**fields, **overrides})


def config_to_hf(config: ViTConfig) -> dict:
    """The Hugging Face ``config.json`` dict of a zoo ViT (class-token pooling only)."""
    if config.pooling != "cls" or config.input_shape[0] != config.input_shape[1]:
        raise ValueError("Hugging Face's ViTForImageClassification has a class token and square images; this config "
                         f"has pooling={config.pooling!r}, input_shape={config.input_shape}")
    return {
        "architectures": ["ViTForImageClassification"], "model_type": "vit",
        "image_size": config.input_shape[0], "num_channels": config.input_shape[2], "patch_size": config.patch_size,
        "hidden_size": config.hidden_size, "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads, "intermediate_size": config.mlp_dim, "hidden_act": "gelu",
        "hidden_dropout_prob": config.dropout_rate, "attention_probs_dropout_prob": config.attention_dropout_rate,
        "layer_norm_eps": config.layer_norm_eps, "qkv_bias": True,
        "id2label": {str(i): f"LABEL_{i}" for i in range(config.num_classes)},
        "label2id": {f"LABEL_{i}": i for i in range(config.num_classes)},
    }


def key_maps(config: ViTConfig) -> list[KeyMap]:
    """One :class:`~zoo.convert.hf.KeyMap` per zoo parameter (paths start with ``"params"``)."""
    heads = (config.num_heads, config.hidden_size // config.num_heads)
    maps = [
        KeyMap("vit.embeddings.cls_token", ("params", "cls_token")),
        KeyMap("vit.embeddings.position_embeddings", ("params", "pos_embedding")),
        KeyMap("vit.embeddings.patch_embeddings.projection.weight", ("params", "patch_embed", "kernel"),
               lambda w: np.transpose(w, (2, 3, 1, 0)), lambda k: np.transpose(k, (3, 2, 0, 1))),
        KeyMap("vit.embeddings.patch_embeddings.projection.bias", ("params", "patch_embed", "bias")),
    ]
    for i in range(config.num_layers):
        hf, zoo = f"vit.encoder.layer.{i}", ("params", f"layer_{i}")
        for name in ("query", "key", "value"):
            maps += linear_maps(f"{hf}.attention.attention.{name}", (*zoo, "attention", name), out_shape=heads)
        maps += linear_maps(f"{hf}.attention.output.dense", (*zoo, "attention", "out"), in_shape=heads)
        maps += linear_maps(f"{hf}.intermediate.dense", (*zoo, "mlp", "in"))
        maps += linear_maps(f"{hf}.output.dense", (*zoo, "mlp", "out"))
        maps += layer_norm_maps(f"{hf}.layernorm_before", (*zoo, "attention_norm"))
        maps += layer_norm_maps(f"{hf}.layernorm_after", (*zoo, "mlp_norm"))
    maps += layer_norm_maps("vit.layernorm", ("params", "norm"))
    maps += linear_maps("classifier", ("params", "head"))
    return maps


def variables_from_hf(config: ViTConfig, tensors: dict, *, source: str = "checkpoint") -> dict:
    """zoo variables ``{"params": ...}`` from a ViT state dict (numpy arrays by HF key)."""
    from zoo.registry import init_variables

    model = ViT(config=config)
    shapes = jax.eval_shape(lambda: init_variables(model, jax.random.key(0)))
    return hf_io.import_params(key_maps(config), tensors, shapes, source=source)


def from_pretrained(path: str | os.PathLike, *, allow_pickle: bool = False, **overrides):
    """Loads a ``ViTForImageClassification`` checkpoint directory.

    Args:
      path: local directory with ``config.json`` and ``model.safetensors`` (or
        ``pytorch_model.bin`` with ``allow_pickle=True``, read with ``weights_only=True``).
      allow_pickle: see :func:`zoo.convert.hf.read_weights`.
      **overrides: zoo config fields, e.g. ``dtype="bfloat16"``, ``attention_impl=...``.

    Returns:
      ``(model, variables)``; ``model.apply(variables, x_nhwc, train=False)`` gives the checkpoint's logits.
    """
    path = hf_io.resolve_dir(path)
    hf_config = hf_io.read_config(path)
    hf_io.check_architecture(path, hf_config, ARCHITECTURES, "ViT", "(the classifier is part of the model)")
    config = config_from_hf(hf_config, **overrides)
    tensors = hf_io.read_weights(path, allow_pickle=allow_pickle)
    return ViT(config=config), variables_from_hf(config, tensors, source=path)


def save_pretrained(model: ViT, variables: dict, path: str | os.PathLike) -> str:
    """Writes ``variables`` of ``model`` as a Hugging Face ``ViTForImageClassification`` directory."""
    tensors = hf_io.export_tensors(key_maps(model.config), jax.device_get(variables))
    return hf_io.write_checkpoint(path, config_to_hf(model.config), tensors)


__all__ = ["ARCHITECTURES", "MODEL_TYPE", "MODULE", "config_from_hf", "config_to_hf", "from_pretrained", "key_maps",
           "save_pretrained", "variables_from_hf"]
