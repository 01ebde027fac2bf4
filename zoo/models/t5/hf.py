"""Hugging Face ``T5ForConditionalGeneration`` checkpoints <-> zoo :class:`~zoo.models.t5.T5` (local directories only).

Hugging Face keeps the relative-position table in the first block of each stack
(``{encoder,decoder}.block.0.layer.0.SelfAttention.relative_attention_bias``); zoo keeps it
at the stack (``{encoder,decoder}/relative_attention_bias``), as every block uses it.  The
token embedding ``shared`` also serves both stacks; copies stored as
``{encoder,decoder}.embed_tokens.weight`` must equal it.  ``lm_head.weight``: equal to
``shared.weight`` (or absent) means tied output logits; a different one (the published v1.1
checkpoints) becomes zoo's untied ``lm_head``.  Whether the decoder output is scaled by
``d_model ** -0.5`` is ``config.json``'s ``scale_decoder_outputs`` (``transformers`` >= 5),
else what ``tie_word_embeddings`` said in earlier versions (v1.0 scales, v1.1 does not).
Called through :func:`zoo.from_pretrained` / :func:`zoo.save_pretrained`.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from zoo import registry
from zoo.convert import hf as hf_io
from zoo.convert.hf import CheckpointFormatError, KeyMap, linear_maps
from zoo.models.t5.model import T5, T5Config

MODEL_TYPE = "t5"
MODULE = T5
ARCHITECTURES = ("T5ForConditionalGeneration", "T5WithLMHeadModel")

_REQUIRED = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads")
_ACTS = {"relu": "relu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "silu": "silu"}


def _activation(feed_forward_proj: str) -> tuple[str, bool]:
    parts = feed_forward_proj.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise CheckpointFormatError(f"feed_forward_proj must be 'ACT' or 'gated-ACT', got {feed_forward_proj!r}")
    act = "gelu_new" if feed_forward_proj == "gated-gelu" else parts[-1]  # as transformers reads it
    if act not in _ACTS:
        raise CheckpointFormatError(f"unsupported T5 activation {act!r} (feed_forward_proj={feed_forward_proj!r}); "
                                    f"zoo supports {sorted(_ACTS)}")
    return _ACTS[act], parts[0] == "gated"


def config_from_hf(hf: dict, *, tie_word_embeddings: bool = True, **overrides) -> T5Config:
    """zoo :class:`T5Config` from a Hugging Face T5 ``config.json`` dict (+ zoo field overrides)."""
    activation, gated = _activation(hf.get("feed_forward_proj", "relu"))
    scale = hf.get("scale_decoder_outputs")
    if scale is None:
        scale = hf.get("tie_word_embeddings", True) is not False
    pad = hf.get("pad_token_id", 0)
    eos = hf.get("eos_token_id", 1)
    if isinstance(eos, list):
        if len(eos) != 1:
            raise CheckpointFormatError(f"zoo's T5 has one eos_token_id; this config lists {eos}")
        eos = eos[0]
    start = hf.get("decoder_start_token_id")
    fields = dict(
        vocab_size=hf["vocab_size"], hidden_size=hf["d_model"], head_dim=hf["d_kv"], mlp_dim=hf["d_ff"],
        num_layers=hf["num_layers"], num_decoder_layers=hf.get("num_decoder_layers") or hf["num_layers"],
        num_heads=hf["num_heads"], relative_attention_num_buckets=hf.get("relative_attention_num_buckets", 32),
        relative_attention_max_distance=hf.get("relative_attention_max_distance", 128),
        dropout_rate=hf.get("dropout_rate", 0.1), attention_dropout_rate=hf.get("dropout_rate", 0.1),
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-6), activation=activation, gated_mlp=gated,
        scale_decoder_outputs=bool(scale), tie_word_embeddings=tie_word_embeddings,
        pad_token_id=0 if pad is None else pad, eos_token_id=1 if eos is None else eos,
        decoder_start_token_id=(0 if pad is None else pad) if start is None else start,
        input_shape=(hf.get("n_positions", 512),),
    )
    fields.update(overrides)
    return T5Config(**fields)


def _attention_maps(hf_prefix: str, zoo_path: tuple[str, ...], n: int, h: int) -> list[KeyMap]:
    """``q``/``k``/``v`` ``weight [N*H, D]`` <-> ``kernel [D, N, H]``; ``o`` ``weight [D, N*H]`` <-> ``[N, H, D]``."""
    maps = [KeyMap(f"{hf_prefix}.{p}.weight", (*zoo_path, p), lambda w: w.T.reshape(w.shape[1], n, h),
                   lambda k: k.reshape(k.shape[0], -1).T) for p in ("q", "k", "v")]
    maps.append(KeyMap(f"{hf_prefix}.o.weight", (*zoo_path, "o"), lambda w: w.T.reshape(n, h, w.shape[0]),
                       lambda k: k.reshape(-1, k.shape[-1]).T))
    return maps


def _norm(hf_prefix: str, zoo_path: tuple[str, ...]) -> KeyMap:
    return KeyMap(f"{hf_prefix}.weight", (*zoo_path, "scale"))


def key_maps(config: T5Config) -> list[KeyMap]:
    """One :class:`KeyMap` per zoo parameter."""
    n, h = config.num_heads, config.head_dim
    mlp = ("wi_0", "wi_1", "wo") if config.gated_mlp else ("wi", "wo")
    maps = [KeyMap("shared.weight", ("shared", "embedding"))]
    if not config.tie_word_embeddings:
        maps += linear_maps("lm_head", ("lm_head",), bias=False)
    for stack, layers in (("encoder", config.num_layers), ("decoder", config.decoder_layers)):
        maps.append(KeyMap(f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                           (stack, "relative_attention_bias", "embedding")))
        maps.append(_norm(f"{stack}.final_layer_norm", (stack, "final_norm")))
        for i in range(layers):
            p, z = f"{stack}.block.{i}.layer.", (stack, f"layer_{i}")
            maps += _attention_maps(f"{p}0.SelfAttention", (*z, "self_attention"), n, h)
            maps.append(_norm(f"{p}0.layer_norm", (*z, "self_attention_norm")))
            ff = 1
            if stack == "decoder":
                maps += _attention_maps(f"{p}1.EncDecAttention", (*z, "cross_attention"), n, h)
                maps.append(_norm(f"{p}1.layer_norm", (*z, "cross_attention_norm")))
                ff = 2
            for name in mlp:
                maps += linear_maps(f"{p}{ff}.DenseReluDense.{name}", (*z, "mlp", name), bias=False)
            maps.append(_norm(f"{p}{ff}.layer_norm", (*z, "mlp_norm")))
    return maps


def _same(tensors: dict, a: str, b: str) -> bool:
    return np.shape(tensors[a]) == np.shape(tensors[b]) and np.array_equal(np.asarray(tensors[a]),
                                                                           np.asarray(tensors[b]))


def from_pretrained(path, *, allow_pickle: bool = False, **overrides):
    """Loads a local Hugging Face T5 (``T5ForConditionalGeneration``) checkpoint directory.

    Args:
      path: directory with ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``
        with ``allow_pickle=True``). A Hub id such as ``"t5-small"`` is an error: zoo has no network.
      allow_pickle: see :func:`zoo.convert.hf.read_weights`.
      **overrides: other zoo config fields (e.g. ``input_shape``, ``target_length``, ``dtype``).

    Returns:
      ``(model, variables)``: a :class:`T5` and ``{"params": ...}``.

    Raises:
      CheckpointFormatError: naming every missing / unexpected key and shape mismatch.
    """
    hf = hf_io.read_config(path, required=_REQUIRED)
    if hf.get("model_type", "t5") != "t5":
        raise CheckpointFormatError(f"{path} holds a {hf.get('model_type')!r} model, not 't5'")
    hf_io.check_architecture(path, hf, ARCHITECTURES, "T5")
    tensors = hf_io.read_weights(path, allow_pickle=allow_pickle)
    ignore = ["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"]  # unused by T5 itself
    for copy in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        if copy in tensors:
            if "shared.weight" not in tensors or not _same(tensors, copy, "shared.weight"):
                raise CheckpointFormatError(f"{path}: {copy} differs from shared.weight; T5 shares one embedding")
            ignore.append(copy)
    tied = "lm_head.weight" not in tensors or ("shared.weight" in tensors and _same(tensors, "lm_head.weight",
                                                                                     "shared.weight"))
    if tied and "lm_head.weight" in tensors:
        ignore.append("lm_head.weight")
    config = config_from_hf(hf, tie_word_embeddings=tied, **overrides)
    model = T5(config)
    shapes = jax.eval_shape(lambda: registry.init_variables(model, jax.random.key(0)))["params"]
    params = hf_io.import_params(key_maps(config), tensors, shapes, source=os.fspath(path), ignore=ignore)
    return model, {"params": params}


def to_hf_config(config: T5Config) -> dict:
    """The Hugging Face ``config.json`` dict of a zoo :class:`T5Config`."""
    if config.dropout_rate != config.attention_dropout_rate:
        raise ValueError(f"Hugging Face T5 has one dropout_rate; this config has dropout_rate={config.dropout_rate} "
                         f"and attention_dropout_rate={config.attention_dropout_rate}")
    names = {"relu": "relu", "gelu_tanh": "gelu_new", "gelu": "gelu", "silu": "silu"}
    act = names[config.activation]
    if config.gated_mlp:
        if act == "gelu":
            raise ValueError("Hugging Face reads 'gated-gelu' as the tanh GELU; a gated exact-GELU T5 has no "
                             "config.json spelling")
        proj = "gated-gelu" if act == "gelu_new" else f"gated-{act}"
    else:
        proj = act
    return {
        "architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "is_encoder_decoder": True,
        "vocab_size": config.vocab_size, "d_model": config.hidden_size, "d_kv": config.head_dim,
        "d_ff": config.mlp_dim, "num_layers": config.num_layers, "num_decoder_layers": config.decoder_layers,
        "num_heads": config.num_heads, "relative_attention_num_buckets": config.relative_attention_num_buckets,
        "relative_attention_max_distance": config.relative_attention_max_distance,
        "dropout_rate": config.dropout_rate, "layer_norm_epsilon": config.layer_norm_eps,
        "feed_forward_proj": proj, "scale_decoder_outputs": config.scale_decoder_outputs,
        "tie_word_embeddings": config.tie_word_embeddings, "pad_token_id": config.pad_token_id,
        "eos_token_id": config.eos_token_id, "decoder_start_token_id": config.decoder_start_token_id,
        "n_positions": config.input_shape[0], "initializer_factor": 1.0,
    }


def save_pretrained(model: T5, variables: dict, path) -> str:
    """Writes ``config.json`` + ``model.safetensors`` that ``transformers.T5ForConditionalGeneration`` loads.

    Args:
      model: a :class:`T5`.  variables: its ``{"params": ...}``.  path: output directory (created).

    Returns:
      the absolute directory path.
    """
    config = model.config
    tensors = hf_io.export_tensors(key_maps(config), jax.device_get(variables["params"]))
    return hf_io.write_checkpoint(path, to_hf_config(config), tensors)


__all__ = ["ARCHITECTURES", "MODEL_TYPE", "MODULE", "config_from_hf", "from_pretrained", "key_maps", "save_pretrained",
           "to_hf_config"]
