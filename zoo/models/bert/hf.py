"""Hugging Face BERT checkpoints <-> zoo :class:`~zoo.models.bert.Bert` (local directories only).

Called through :func:`zoo.from_pretrained` / :func:`zoo.save_pretrained`.

``from_pretrained(dir)`` maps every tensor of a ``BertFor{SequenceClassification,
TokenClassification,QuestionAnswering}`` (or ``BertModel`` / ``BertForPreTraining``
with ``new_head=True``) checkpoint onto zoo's parameter tree; anything missing,
unexpected or misshapen is an error naming the key.  ``save_pretrained`` writes
a directory ``transformers`` loads with ``AutoModelFor...from_pretrained``.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from zoo import registry
from zoo.convert import hf as hf_io
from zoo.convert.hf import CheckpointFormatError, KeyMap, layer_norm_maps, linear_maps
from zoo.models.bert.model import Bert, BertConfig

MODEL_TYPE = "bert"
MODULE = Bert

ARCHITECTURES = {
    "BertForSequenceClassification": "classification",
    "BertForTokenClassification": "token_classification",
    "BertForQuestionAnswering": "question_answering",
}
_HEAD_KEYS = {"classification": "classifier", "token_classification": "classifier",
              "question_answering": "qa_outputs"}
_REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings", "type_vocab_size")
# Buffers older checkpoints carry (recomputed, not learned).
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


def config_from_hf(hf: dict, **overrides) -> BertConfig:
    """zoo :class:`BertConfig` from a Hugging Face BERT ``config.json`` dict (+ zoo field overrides)."""
    act = hf.get("hidden_act", "gelu")
    if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu"):
        raise CheckpointFormatError(f"unsupported hidden_act {act!r} (zoo supports gelu, gelu_new, relu)")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointFormatError(f"unsupported position_embedding_type {hf['position_embedding_type']!r}; "
                                    "zoo's BERT has absolute positions")
    task = ARCHITECTURES.get((hf.get("architectures") or [None])[0])
    num_labels = hf.get("num_labels") or len(hf.get("id2label") or {}) or 2
    fields = dict(
        vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"], num_layers=hf["num_hidden_layers"],
        num_heads=hf["num_attention_heads"], mlp_dim=hf["intermediate_size"],
        max_position_embeddings=hf["max_position_embeddings"], type_vocab_size=hf["type_vocab_size"],
        input_shape=(min(512, hf["max_position_embeddings"]),),
        dropout_rate=hf.get("hidden_dropout_prob", 0.1),
        attention_dropout_rate=hf.get("attention_probs_dropout_prob", 0.1),
        classifier_dropout_rate=hf.get("classifier_dropout"),
        activation={"gelu": "gelu", "relu": "relu"}.get(act, "gelu_tanh"),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12), pad_token_id=hf.get("pad_token_id", 0),
        task=task or "classification", num_classes=2 if task == "question_answering" else num_labels,
    )
    fields.update(overrides)
    return BertConfig(**fields)


def key_maps(config: BertConfig, prefix: str = "bert.") -> list[KeyMap]:
    """One :class:`KeyMap` per zoo parameter of ``Bert(config)`` (HF keys under ``prefix``)."""
    n, h = config.num_heads, config.hidden_size // config.num_heads
    e = f"{prefix}embeddings."
    maps = [KeyMap(f"{e}word_embeddings.weight", ("embeddings", "word", "embedding")),
            KeyMap(f"{e}position_embeddings.weight", ("embeddings", "position", "embedding")),
            KeyMap(f"{e}token_type_embeddings.weight", ("embeddings", "token_type", "embedding")),
            *layer_norm_maps(f"{e}LayerNorm", ("embeddings", "norm"))]
    for i in range(config.num_layers):
        p, z = f"{prefix}encoder.layer.{i}.", (f"layer_{i}",)
        for name in ("query", "key", "value"):
            maps += linear_maps(f"{p}attention.self.{name}", (*z, "attention", name), out_shape=(n, h))
        maps += linear_maps(f"{p}attention.output.dense", (*z, "attention", "out"), in_shape=(n, h))
        maps += layer_norm_maps(f"{p}attention.output.LayerNorm", (*z, "attention_norm"))
        maps += linear_maps(f"{p}intermediate.dense", (*z, "mlp", "in"))
        maps += linear_maps(f"{p}output.dense", (*z, "mlp", "out"))
        maps += layer_norm_maps(f"{p}output.LayerNorm", (*z, "mlp_norm"))
    if config.task == "classification":
        maps += linear_maps(f"{prefix}pooler.dense", ("pooler",))
    maps += linear_maps(_HEAD_KEYS[config.task], ("head",))
    return maps


def _param_shapes(config: BertConfig):
    model = Bert(config)
    return jax.eval_shape(lambda: registry.init_variables(model, jax.random.key(0)))["params"]


def from_pretrained(path, *, task: str | None = None, num_classes: int | None = None, new_head: bool = False,
                    seed: int = 0, allow_pickle: bool = False, **overrides):
    """Loads a local Hugging Face BERT checkpoint directory.

    Args:
      path: directory with ``config.json`` and ``model.safetensors`` (or
        ``pytorch_model.bin`` with ``allow_pickle=True``). A Hub id such as
        ``"bert-base-uncased"`` is an error: zoo has no network.
      task: zoo task; default: the checkpoint's (from its ``architectures``).
      num_classes: labels of a new head (with ``new_head=True``).
      new_head: the checkpoint's own head (if any) is dropped and a fresh
        ``head`` (and pooler, if the checkpoint has none) is initialised from
        ``seed`` -- for fine-tuning a pre-trained encoder on a new task. Without
        it, a checkpoint lacking the task's head is an error.
      seed: initialises the new head (numpy, N(0, 0.02) kernels and zero biases as BERT does).
      allow_pickle: see :func:`zoo.convert.hf.read_weights`.
      **overrides: other zoo config fields (e.g. ``input_shape=(128,)``, ``dtype``).

    Returns:
      ``(model, variables)``: a :class:`Bert` module and ``{"params": ...}``.

    Raises:
      CheckpointFormatError: unreadable directory / config, or a key or shape
        that does not match (every one is named).
    """
    hf = hf_io.read_config(path, required=_REQUIRED)
    if hf.get("model_type", "bert") != "bert":
        raise CheckpointFormatError(f"{path} holds a {hf.get('model_type')!r} model, not 'bert'")
    ckpt_task = ARCHITECTURES.get((hf.get("architectures") or [None])[0])
    task = task or ckpt_task
    if task is None:
        raise CheckpointFormatError(
            f"{path} holds {hf.get('architectures')} without a task head; pass task=... and new_head=True "
            "to fine-tune its encoder with a freshly initialised head")
    fields = dict(overrides, task=task)
    if num_classes is not None:
        fields["num_classes"] = num_classes
    config = config_from_hf(hf, **fields)
    tensors = hf_io.read_weights(path, allow_pickle=allow_pickle)
    prefix = "bert." if any(k.startswith("bert.") for k in tensors) else ""
    maps = key_maps(config, prefix)
    ignore = [k for k in tensors if k.removeprefix(prefix) in _BUFFERS]
    fresh = set()
    if new_head or task != ckpt_task:
        if not new_head:
            raise CheckpointFormatError(
                f"{path} is a {ckpt_task or hf.get('architectures')} checkpoint, not {task}; pass new_head=True to "
                "initialise a new head for it")
        fresh = {"head"}
        if task == "classification" and f"{prefix}pooler.dense.weight" not in tensors:
            fresh.add("pooler")
        maps = [m for m in maps if m.zoo_path[0] not in fresh]
        encoder = (f"{prefix}embeddings.", f"{prefix}encoder.")
        mapped = {m.hf_key for m in maps}
        ignore += [k for k in tensors if k not in mapped and not k.startswith(encoder)]  # the old heads
    shapes = _param_shapes(config)
    kept = {k: v for k, v in shapes.items() if k not in fresh}
    params = hf_io.import_params(maps, tensors, kept, source=os.fspath(path), ignore=ignore)
    rng = np.random.default_rng(seed)
    for name in sorted(fresh):  # BERT's initialisation: N(0, 0.02) kernels, zero biases
        params[name] = {"kernel": (rng.standard_normal(shapes[name]["kernel"].shape) * 0.02).astype(np.float32),
                        "bias": np.zeros(shapes[name]["bias"].shape, np.float32)}
    return Bert(config), {"params": params}


def to_hf_config(config: BertConfig) -> dict:
    """The Hugging Face ``config.json`` dict of a zoo :class:`BertConfig`."""
    arch = {v: k for k, v in ARCHITECTURES.items()}[config.task]
    labels = {str(i): f"LABEL_{i}" for i in range(config.num_classes)}
    return {
        "architectures": [arch], "model_type": "bert", "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size, "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads, "intermediate_size": config.mlp_dim,
        "hidden_act": {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}[config.activation],
        "hidden_dropout_prob": config.dropout_rate,
        "attention_probs_dropout_prob": config.attention_dropout_rate,
        "classifier_dropout": config.classifier_dropout_rate,
        "max_position_embeddings": config.max_position_embeddings, "type_vocab_size": config.type_vocab_size,
        "layer_norm_eps": config.layer_norm_eps, "pad_token_id": config.pad_token_id if config.pad_token_id
        is not None else 0, "initializer_range": 0.02, "position_embedding_type": "absolute",
        "id2label": labels, "label2id": {v: int(k) for k, v in labels.items()},
    }


def save_pretrained(model: Bert, variables: dict, path) -> str:
    """Writes ``config.json`` + ``model.safetensors`` that ``transformers`` loads as the matching ``BertFor...``.

    Args:
      model: a :class:`Bert`.  variables: its ``{"params": ...}``.
      path: output directory (created).

    Returns:
      the absolute directory path.
    """
    config = model.config
    if config.activation == "silu":
        raise ValueError("Hugging Face BERT has no 'silu' activation option in this mapping")
    params = jax.device_get(variables["params"])
    tensors = hf_io.export_tensors(key_maps(config), params)
    return hf_io.write_checkpoint(path, to_hf_config(config), tensors)


__all__ = ["ARCHITECTURES", "MODEL_TYPE", "MODULE", "config_from_hf", "from_pretrained", "key_maps", "save_pretrained",
           "to_hf_config"]
