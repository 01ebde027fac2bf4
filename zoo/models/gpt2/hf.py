"""Hugging Face GPT-2 checkpoints <-> zoo :class:`~zoo.models.gpt2.GPT2` (local directories only).

GPT-2 stores its projections as ``Conv1D`` (``weight [in, out]``) and fuses
query / key / value into ``attn.c_attn`` (``[D, 3D]``); the import splits it
into zoo's three ``[D, N, H]`` kernels and the export fuses them back.  The
LM head is tied to ``wte``: a checkpoint's ``lm_head.weight`` must equal it.
Called through :func:`zoo.from_pretrained` / :func:`zoo.save_pretrained`.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from zoo import registry
from zoo.convert import hf as hf_io
from zoo.convert.hf import CheckpointFormatError, KeyMap, layer_norm_maps, linear_maps
from zoo.models.gpt2.model import GPT2, GPT2Config

MODEL_TYPE = "gpt2"
MODULE = GPT2
ARCHITECTURES = ("GPT2LMHeadModel", "GPT2Model")

_REQUIRED = ("vocab_size", "n_embd", "n_layer", "n_head", "n_positions")
_QKV = ("q", "k", "v")


def config_from_hf(hf: dict, **overrides) -> GPT2Config:
    """zoo :class:`GPT2Config` from a Hugging Face GPT-2 ``config.json`` dict (+ zoo field overrides).

    zoo has one ``dropout_rate`` for Hugging Face's ``embd_pdrop`` and ``resid_pdrop``: a
    config where they differ is an error unless ``dropout_rate`` is among the overrides.
    """
    act = hf.get("activation_function", "gelu_new")
    acts = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
    if act not in acts:
        raise CheckpointFormatError(f"unsupported activation_function {act!r}; zoo supports {sorted(acts)}")
    for flag, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                     ("reorder_and_upcast_attn", False), ("add_cross_attention", False)):
        if hf.get(flag, ok) != ok:
            raise CheckpointFormatError(f"unsupported GPT-2 option {flag}={hf[flag]!r}")
    embd_pdrop, resid_pdrop = hf.get("embd_pdrop", 0.1), hf.get("resid_pdrop", 0.1)
    if embd_pdrop != resid_pdrop and "dropout_rate" not in overrides:
        raise CheckpointFormatError(f"zoo's GPT-2 has one dropout_rate; this config has embd_pdrop={embd_pdrop} and "
                                    f"resid_pdrop={resid_pdrop}: pass dropout_rate=... to choose one")
    fields = dict(
        vocab_size=hf["vocab_size"], num_layers=hf["n_layer"], hidden_size=hf["n_embd"], num_heads=hf["n_head"],
        mlp_dim=hf.get("n_inner"), max_position_embeddings=hf["n_positions"],
        input_shape=(hf["n_positions"],), dropout_rate=resid_pdrop, attention_dropout_rate=hf.get("attn_pdrop", 0.1),
        activation=acts[act], layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
    )
    fields.update(overrides)
    return GPT2Config(**fields)


def key_maps(config: GPT2Config, prefix: str = "transformer.") -> list[KeyMap]:
    """One :class:`KeyMap` per zoo parameter (the fused ``c_attn`` appears split as ``c_attn.{q,k,v}``)."""
    n, h = config.num_heads, config.hidden_size // config.num_heads
    maps = [KeyMap(f"{prefix}wte.weight", ("wte", "embedding")), KeyMap(f"{prefix}wpe.weight", ("wpe", "embedding")),
            *layer_norm_maps(f"{prefix}ln_f", ("final_norm",))]
    for i in range(config.num_layers):
        p, z = f"{prefix}h.{i}.", (f"layer_{i}",)
        maps += layer_norm_maps(f"{p}ln_1", (*z, "attention_norm"))
        for part, name in zip(_QKV, ("query", "key", "value")):
            maps += linear_maps(f"{p}attn.c_attn.{part}", (*z, "attention", name), out_shape=(n, h), transposed=False)
        maps += linear_maps(f"{p}attn.c_proj", (*z, "attention", "out"), in_shape=(n, h), transposed=False)
        maps += layer_norm_maps(f"{p}ln_2", (*z, "mlp_norm"))
        maps += linear_maps(f"{p}mlp.c_fc", (*z, "mlp", "in"), transposed=False)
        maps += linear_maps(f"{p}mlp.c_proj", (*z, "mlp", "out"), transposed=False)
    return maps


def _split_qkv(tensors: dict) -> dict:
    """``...attn.c_attn.{weight,bias}`` ([D, 3D] / [3D]) -> ``...attn.c_attn.{q,k,v}.{weight,bias}``."""
    out = {}
    for key, value in tensors.items():
        stem, _, leaf = key.rpartition(".")
        if stem.endswith("attn.c_attn") and value.shape[-1] % 3 == 0:
            for part, piece in zip(_QKV, np.split(np.asarray(value), 3, axis=-1)):
                out[f"{stem}.{part}.{leaf}"] = piece
        else:
            out[key] = value
    return out


def _fuse_qkv(tensors: dict) -> dict:
    out = {}
    for key, value in tensors.items():
        stem, _, leaf = key.rpartition(".")
        if stem.endswith(("attn.c_attn.q", "attn.c_attn.k", "attn.c_attn.v")):
            base = stem[:-2]
            if stem.endswith(".q"):
                out[f"{base}.{leaf}"] = np.concatenate([tensors[f"{base}.{p}.{leaf}"] for p in _QKV], -1)
        else:
            out[key] = value
    return out


def from_pretrained(path, *, allow_pickle: bool = False, **overrides):
    """Loads a local Hugging Face GPT-2 (``GPT2LMHeadModel`` or ``GPT2Model``) checkpoint directory.

    Args:
      path: directory with ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``
        with ``allow_pickle=True``). A Hub id such as ``"gpt2"`` is an error: zoo has no network.
      allow_pickle: see :func:`zoo.convert.hf.read_weights`.
      **overrides: other zoo config fields (e.g. ``input_shape``, ``dtype``, ``attention_impl``).

    Returns:
      ``(model, variables)``: a :class:`GPT2` and ``{"params": ...}``.

    Raises:
      CheckpointFormatError: naming every missing / unexpected key and shape mismatch.
    """
    hf = hf_io.read_config(path, required=_REQUIRED)
    if hf.get("model_type", "gpt2") != "gpt2":
        raise CheckpointFormatError(f"{path} holds a {hf.get('model_type')!r} model, not 'gpt2'")
    hf_io.check_architecture(path, hf, ARCHITECTURES, "GPT-2")
    config = config_from_hf(hf, **overrides)
    tensors = hf_io.read_weights(path, allow_pickle=allow_pickle)
    prefix = "transformer." if any(k.startswith("transformer.") for k in tensors) else ""
    ignore = [k for k in tensors if k.endswith((".attn.bias", ".attn.masked_bias")) and k.count(".") == 3 +
              prefix.count(".")]  # causal-mask buffers of old checkpoints
    if "lm_head.weight" in tensors:
        wte = tensors.get(f"{prefix}wte.weight")
        if wte is None or np.shape(wte) != np.shape(tensors["lm_head.weight"]) or not np.array_equal(
                np.asarray(wte), np.asarray(tensors["lm_head.weight"])):
            raise CheckpointFormatError(f"{path}: lm_head.weight differs from {prefix}wte.weight; zoo's GPT-2 ties "
                                        "them")
        ignore.append("lm_head.weight")
    model = GPT2(config)
    shapes = jax.eval_shape(lambda: registry.init_variables(model, jax.random.key(0)))["params"]
    params = hf_io.import_params(key_maps(config, prefix), _split_qkv(tensors), shapes, source=os.fspath(path),
                                 ignore=ignore)
    return model, {"params": params}


def to_hf_config(config: GPT2Config) -> dict:
    """The Hugging Face ``config.json`` dict of a zoo :class:`GPT2Config`."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": config.vocab_size,
        "n_embd": config.hidden_size, "n_layer": config.num_layers, "n_head": config.num_heads,
        "n_inner": config.mlp_dim, "n_positions": config.max_position_embeddings,
        "activation_function": {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}[config.activation],
        "embd_pdrop": config.dropout_rate, "resid_pdrop": config.dropout_rate,
        "attn_pdrop": config.attention_dropout_rate, "layer_norm_epsilon": config.layer_norm_eps,
        "initializer_range": 0.02, "tie_word_embeddings": True,
    }


def save_pretrained(model: GPT2, variables: dict, path) -> str:
    """Writes ``config.json`` + ``model.safetensors`` that ``transformers.GPT2LMHeadModel`` loads.

    Args:
      model: a :class:`GPT2`.  variables: its ``{"params": ...}``.  path: output directory (created).

    Returns:
      the absolute directory path.
    """
    config = model.config
    if config.activation == "silu":
        raise ValueError("Hugging Face GPT-2 has no 'silu' activation option in this mapping")
    tensors = _fuse_qkv(hf_io.export_tensors(key_maps(config), jax.device_get(variables["params"])))
    return hf_io.write_checkpoint(path, to_hf_config(config), tensors)


__all__ = ["ARCHITECTURES", "MODEL_TYPE", "MODULE", "config_from_hf", "from_pretrained", "key_maps", "save_pretrained",
           "to_hf_config"]
