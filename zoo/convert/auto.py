"""``from_pretrained`` / ``save_pretrained`` for every family, chosen by ``config.json``'s ``model_type``.

    model, variables = zoo.from_pretrained("path/to/bert-dir")      # any supported family
    logits = model.apply(variables, ids, train=False)
    zoo.save_pretrained(model, variables, "out-dir")                # transformers loads it back

Each family's converter (``zoo.models.<family>.hf``) is imported only when a
checkpoint of that family is read or written.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from zoo.convert import hf

# model_type -> (converter module, the Hugging Face architectures it reads)
_FAMILIES = {
    "bert": ("zoo.models.bert.hf", "BertForSequenceClassification, BertForTokenClassification, "
                                   "BertForQuestionAnswering (BertModel / BertForPreTraining with new_head=True)"),
    "gpt2": ("zoo.models.gpt2.hf", "GPT2LMHeadModel, GPT2Model"),
    "resnet": ("zoo.models.resnet.hf", "ResNetForImageClassification"),
    "t5": ("zoo.models.t5.hf", "T5ForConditionalGeneration"),
    "vit": ("zoo.models.vit.hf", "ViTForImageClassification"),
    "whisper": ("zoo.models.whisper.hf", "WhisperForConditionalGeneration"),
}
SUPPORTED_MODEL_TYPES = tuple(_FAMILIES)


def _supported() -> str:
    return "; ".join(f"{t!r} ({archs})" for t, (_, archs) in _FAMILIES.items())


def _converter(model_type: str) -> ModuleType:
    return importlib.import_module(_FAMILIES[model_type][0])


def from_pretrained(path: str | os.PathLike, **kwargs):
    """Loads a local Hugging Face checkpoint directory as a zoo model.

    Args:
      path: a directory with ``config.json`` and ``model.safetensors`` (or a
        sharded ``model.safetensors.index.json``; ``pytorch_model.bin`` only with
        ``allow_pickle=True``). A Hub id such as ``"bert-base-uncased"`` is an
        error: zoo reads local directories only.
      **kwargs: passed to the family's loader: ``allow_pickle``, zoo config
        overrides (``dtype="bfloat16"``, ``input_shape=...``, ``attention_impl=...``)
        and, for BERT, ``task``, ``num_classes``, ``new_head``, ``seed`` (see
        :func:`zoo.models.bert.hf.from_pretrained`).

    Returns:
      ``(model, variables)``: a flax module and its variables (``{"params": ...}``,
      plus ``"batch_stats"`` for ResNet); ``model.apply(variables, x, train=False)``
      gives the checkpoint's logits.

    Raises:
      CheckpointFormatError: no usable directory or config, a ``model_type`` zoo
        has no converter for (the message lists the supported ones), or weights
        that do not match (every key is named).
    """
    config = hf.read_config(path)
    model_type = config.get("model_type")
    if model_type not in _FAMILIES:
        raise hf.CheckpointFormatError(
            f"{os.fspath(path)}: config.json has model_type {model_type!r}, which zoo cannot convert; supported "
            f"model types: {_supported()}")
    return _converter(model_type).from_pretrained(path, **kwargs)


def save_pretrained(model, variables: dict, path: str | os.PathLike) -> str:
    """Writes ``model`` with ``variables`` as a Hugging Face checkpoint directory.

    Args:
      model: a zoo model of a supported family (as :func:`from_pretrained` or
        ``zoo.create_model`` returns it).
      variables: its variables (``{"params": ...}``, plus ``"batch_stats"`` for ResNet).
      path: output directory (created); gets ``config.json`` and ``model.safetensors``,
        which ``transformers``' ``AutoModelFor...from_pretrained`` reads.

    Returns:
      the absolute directory path.

    Raises:
      ValueError: ``model`` is of a family with no Hugging Face converter, or its
        config has no Hugging Face equivalent.
    """
    for model_type in _FAMILIES:
        converter = _converter(model_type)
        if isinstance(model, converter.MODULE):
            return converter.save_pretrained(model, variables, path)
    raise ValueError(f"zoo has no Hugging Face converter for {type(model).__name__}; supported model types: "
                     f"{_supported()}")


__all__ = ["SUPPORTED_MODEL_TYPES", "from_pretrained", "save_pretrained"]
