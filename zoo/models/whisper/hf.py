"""Hugging Face ``WhisperForConditionalGeneration`` checkpoints <-> zoo :class:`~zoo.models.whisper.Whisper`.

Local directories only.  Convolutions are PyTorch ``Conv1d`` (``weight [out, in, k]``); zoo's
are ``kernel [k, in, out]`` over frames-first ``[B, T, M]`` inputs.  ``proj_out`` is tied to
``model.decoder.embed_tokens``: a checkpoint's ``proj_out.weight``, when stored, must equal it.
Called through :func:`zoo.from_pretrained` / :func:`zoo.save_pretrained`.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from zoo import registry
from zoo.convert import hf as hf_io
from zoo.convert.hf import CheckpointFormatError, KeyMap, layer_norm_maps, linear_maps
from zoo.models.whisper.model import Whisper, WhisperConfig

MODEL_TYPE = "whisper"
MODULE = Whisper
ARCHITECTURES = ("WhisperForConditionalGeneration",)
_REQUIRED = ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
             "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "num_mel_bins", "max_source_positions",
             "max_target_positions")


def config_from_hf(hf: dict, **overrides) -> WhisperConfig:
    """A zoo :class:`WhisperConfig` of a Hugging Face Whisper ``config.json`` dict."""
    for a, b in (("encoder_attention_heads", "decoder_attention_heads"), ("encoder_ffn_dim", "decoder_ffn_dim")):
        if hf[a] != hf[b]:
            raise CheckpointFormatError(f"zoo's Whisper has one {a.split('_', 1)[1]} for encoder and decoder; the "
                                        f"checkpoint has {a}={hf[a]}, {b}={hf[b]}")
    if hf.get("activation_function", "gelu") != "gelu" or hf.get("scale_embedding", False):
        raise CheckpointFormatError("zoo's Whisper uses exact GELU and unscaled embeddings; the checkpoint has "
                                    f"activation_function={hf.get('activation_function')!r}, "
                                    f"scale_embedding={hf.get('scale_embedding')!r}")
    fields = dict(variant="whisper", vocab_size=hf["vocab_size"], hidden_size=hf["d_model"],
                  num_heads=hf["encoder_attention_heads"], mlp_dim=hf["encoder_ffn_dim"],
                  encoder_layers=hf["encoder_layers"], decoder_layers=hf["decoder_layers"],
                  num_mel_bins=hf["num_mel_bins"], max_source_positions=hf["max_source_positions"],
                  max_target_positions=hf["max_target_positions"], target_length=hf["max_target_positions"],
                  input_shape=(2 * hf["max_source_positions"], hf["num_mel_bins"]),
                  decoder_start_token_id=hf.get("decoder_start_token_id", 50257),
                  pad_token_id=hf.get("pad_token_id", 50257), eos_token_id=hf.get("eos_token_id", 50257),
                  dropout_rate=hf.get("dropout", 0.0), attention_dropout_rate=hf.get("attention_dropout", 0.0))
    fields.update(overrides)
    return WhisperConfig(**fields)


def _conv_maps(hf_prefix, zoo_path):
    return [KeyMap(f"{hf_prefix}.weight", (*zoo_path, "kernel"), lambda w: np.transpose(w, (2, 1, 0)),
                   lambda k: np.transpose(k, (2, 1, 0))),
            KeyMap(f"{hf_prefix}.bias", (*zoo_path, "bias"))]


def _attention_maps(hf_prefix, zoo_path):
    maps = []
    for hf_name, name in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("out_proj", "out")):
        maps += linear_maps(f"{hf_prefix}.{hf_name}", (*zoo_path, name), bias=name != "k")
    return maps


def key_maps(config: WhisperConfig) -> list[KeyMap]:
    """Every checkpoint tensor (``model.`` prefix) and its zoo parameter path."""
    maps = _conv_maps("model.encoder.conv1", ("conv1",)) + _conv_maps("model.encoder.conv2", ("conv2",))
    maps += [KeyMap("model.encoder.embed_positions.weight", ("encoder_positions", "embedding")),
             KeyMap("model.decoder.embed_tokens.weight", ("embed_tokens", "embedding")),
             KeyMap("model.decoder.embed_positions.weight", ("decoder_positions", "embedding"))]
    maps += layer_norm_maps("model.encoder.layer_norm", ("encoder_norm",))
    maps += layer_norm_maps("model.decoder.layer_norm", ("decoder_norm",))
    for side, count in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        for i in range(count):
            p, z = f"model.{side}.layers.{i}.", (f"{side}_{i}",)
            maps += layer_norm_maps(f"{p}self_attn_layer_norm", (*z, "self_attn_norm"))
            maps += _attention_maps(f"{p}self_attn", (*z, "self_attn"))
            if side == "decoder":
                maps += layer_norm_maps(f"{p}encoder_attn_layer_norm", (*z, "cross_attn_norm"))
                maps += _attention_maps(f"{p}encoder_attn", (*z, "cross_attn"))
            maps += layer_norm_maps(f"{p}final_layer_norm", (*z, "mlp_norm"))
            maps += linear_maps(f"{p}fc1", (*z, "mlp", "fc1"))
            maps += linear_maps(f"{p}fc2", (*z, "mlp", "fc2"))
    return maps


def from_pretrained(path, *, allow_pickle: bool = False, **overrides):
    """Loads a local Hugging Face ``WhisperForConditionalGeneration`` checkpoint directory.

    Args:
      path: directory with ``config.json`` and ``model.safetensors`` (``pytorch_model.bin`` only with
        ``allow_pickle=True``).
      **overrides: other zoo config fields (``dtype``, ``target_length``, ...).

    Returns:
      ``(model, variables)``; ``model.apply(variables, features [B, T, M], decoder_input_ids=ids)``
      gives the checkpoint's logits (features are Hugging Face's ``input_features`` transposed).
    """
    hf = hf_io.read_config(path, required=_REQUIRED)
    if hf.get("model_type", MODEL_TYPE) != MODEL_TYPE:
        raise CheckpointFormatError(f"{path} holds a {hf.get('model_type')!r} model, not 'whisper'")
    hf_io.check_architecture(path, hf, ARCHITECTURES, "Whisper")
    config = config_from_hf(hf, **overrides)
    tensors = dict(hf_io.read_weights(path, allow_pickle=allow_pickle))
    ignore = []
    if "proj_out.weight" in tensors:
        if not np.array_equal(np.asarray(tensors["proj_out.weight"]),
                              np.asarray(tensors.get("model.decoder.embed_tokens.weight"))):
            raise CheckpointFormatError(f"{path}: proj_out.weight differs from model.decoder.embed_tokens.weight; "
                                        "zoo's Whisper ties them")
        ignore.append("proj_out.weight")
    model = Whisper(config)
    shapes = jax.eval_shape(lambda: registry.init_variables(model, jax.random.key(0)))["params"]
    params = hf_io.import_params(key_maps(config), tensors, shapes, source=os.fspath(path), ignore=ignore)
    return model, {"params": params}


def to_hf_config(config: WhisperConfig) -> dict:
    """The Hugging Face ``config.json`` dict of a zoo :class:`WhisperConfig`."""
    return {"architectures": list(ARCHITECTURES), "model_type": MODEL_TYPE, "vocab_size": config.vocab_size,
            "d_model": config.hidden_size, "encoder_layers": config.encoder_layers,
            "decoder_layers": config.decoder_layers, "encoder_attention_heads": config.num_heads,
            "decoder_attention_heads": config.num_heads, "encoder_ffn_dim": config.mlp_dim,
            "decoder_ffn_dim": config.mlp_dim, "num_mel_bins": config.num_mel_bins,
            "max_source_positions": config.max_source_positions,
            "max_target_positions": config.max_target_positions, "activation_function": "gelu",
            "dropout": config.dropout_rate, "attention_dropout": config.attention_dropout_rate,
            "activation_dropout": 0.0, "scale_embedding": False, "tie_word_embeddings": True,
            "decoder_start_token_id": config.decoder_start_token_id, "pad_token_id": config.pad_token_id,
            "eos_token_id": config.eos_token_id, "bos_token_id": config.eos_token_id}


def save_pretrained(model: Whisper, variables: dict, path) -> str:
    """Writes ``config.json`` + ``model.safetensors`` that ``transformers.WhisperForConditionalGeneration`` loads."""
    tensors = hf_io.export_tensors(key_maps(model.config), jax.device_get(variables["params"]))
    return hf_io.write_checkpoint(path, to_hf_config(model.config), tensors)


__all__ = ["ARCHITECTURES", "MODEL_TYPE", "MODULE", "config_from_hf", "from_pretrained", "key_maps", "save_pretrained",
           "to_hf_config"]
