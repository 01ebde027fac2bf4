"""Sequence to sequence: source tokens in, target tokens out (teacher-forced training, evaluation by decoding).

=================  ============================================  ===============  ===========================
task               batch                                         model output     best checkpoint
=================  ============================================  ===============  ===========================
``translation``    ``inputs [B, S]`` int source ids,             ``[B, L, V]``    ``bleu`` (sacrebleu)
                   ``attention_mask [B, S]`` (1 = token),
``summarization``  ``decoder_input_ids [B, L]`` (the target      ``[B, L, V]``    ``rouge_l`` (rouge-score)
                   shifted right behind the start token),
                   ``labels [B, L]`` (the target, then EOS;
                   ``IGNORE_INDEX`` = padding)
=================  ============================================  ===============  ===========================

The training loss is the mean next-token cross-entropy over the labelled target tokens (the
source padding is masked in attention, the target padding in the loss); ``accuracy`` is per
token.  Evaluation also **decodes** (greedy, ``zoo.layers.decoding``): the eval loop runs
:meth:`Seq2Seq.predict` over the test split and :meth:`Seq2Seq.decoded_metrics` turns the
decoded ids into text with the dataset's tokenizer and scores them against the reference
texts: ``bleu`` and ``chrf`` (sacrebleu, corpus level), ``rouge_l`` (rouge-score's ROUGE-L
F-measure, mean over examples, x100) and ``exact_match`` (fraction of outputs equal to
their reference).  The two tasks differ only in the metric that picks the best checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zoo.tasks.base import ArraySpec, ItemMeanTask, register_task
from zoo.tasks.classification import IGNORE_INDEX, _loss_accuracy, _masked_sums, token_items

DECODED_METRICS = ("bleu", "chrf", "rouge_l", "exact_match")


@dataclasses.dataclass(frozen=True)
class Seq2Seq(ItemMeanTask):
    """Encoder-decoder text generation: ``[B, L, V]`` logits against ``labels [B, L]``; decoded text scored."""

    name = "seq2seq"
    best_metric = "bleu"
    best_mode = "max"
    decodes = True  # the eval loop decodes the test split (predict) and adds decoded_metrics

    def check_model(self, config: Any) -> None:
        for field in ("vocab_size", "target_length", "decoder_start_token_id", "eos_token_id", "pad_token_id"):
            if not hasattr(config, field):
                raise ValueError(f"task {self.name!r} needs an encoder-decoder config with {field}; "
                                 f"{type(config).__name__} has none")
        if config.layout != "tokens":
            raise ValueError(f"task {self.name!r} needs a token model, got layout {config.layout!r}")

    def schema(self, config):
        s, length = tuple(config.input_shape), (config.target_length,)
        return {"inputs": ArraySpec(s, "int32"), "attention_mask": ArraySpec(s, "int32"),
                "decoder_input_ids": ArraySpec(length, "int32"), "labels": ArraySpec(length, "int32")}

    def model_inputs(self, batch):
        return batch["inputs"], {"attention_mask": batch["attention_mask"],
                                 "decoder_input_ids": batch["decoder_input_ids"]}

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.target_length, config.vocab_size)

    def example_batch(self, config, key, batch_size=1):
        ks, kl, kt = jax.random.split(key, 3)
        (s,), length = config.input_shape, config.target_length
        low = min(3, config.vocab_size - 1)  # past the special ids where the vocabulary allows
        inputs = jax.random.randint(ks, (batch_size, s), low, config.vocab_size, jnp.int32)
        source_len = jax.random.randint(kl, (batch_size, 1), 1, s + 1)
        mask = (jnp.arange(s)[None] < source_len).astype(jnp.int32)
        target = jax.random.randint(kt, (batch_size, length), low, config.vocab_size, jnp.int32)
        target_len = jnp.maximum(source_len * length // s, 1)
        labels = jnp.where(jnp.arange(length)[None] < target_len, target, IGNORE_INDEX)
        labels = jnp.where(jnp.arange(length)[None] == target_len, config.eos_token_id, labels)
        return {"inputs": jnp.where(mask == 1, inputs, config.pad_token_id), "attention_mask": mask,
                "decoder_input_ids": shift_right(labels, config.decoder_start_token_id, config.pad_token_id),
                "labels": labels}

    def items(self, outputs, batch):
        return token_items(outputs, batch["labels"])

    def eval_sums(self, outputs, batch, mask):
        return _masked_sums(*self.items(outputs, batch), mask)

    def metrics(self, sums):
        return _loss_accuracy(sums)

    # -- evaluation by decoding ------------------------------------------------------------------
    def predict(self, apply_fn: Callable, variables: dict, batch: dict, *, config: Any = None):
        """Greedy decoding of ``batch["inputs"]``: ``[B, target_length]`` ids (pads after EOS), under ``jit``.

        ``config`` (the model's; default ``apply_fn.__self__.config``, as for a train state's
        ``model.apply``) gives the start, end and pad ids and the length.
        """
        from zoo.layers import decoding

        config = getattr(getattr(apply_fn, "__self__", None), "config", None) if config is None else config
        if config is None:
            raise ValueError(f"task {self.name!r}: predict needs the model config (pass config=model.config)")
        ids = decoding.encoder_decoder_search(
            apply_fn, variables["params"], batch["inputs"], batch["attention_mask"],
            max_length=config.target_length + 1, start_id=config.decoder_start_token_id,
            eos_id=config.eos_token_id, pad_id=config.pad_token_id)
        return ids

    def decoded_metrics(self, predictions, references: Sequence[str], decode_text: Callable) -> dict:
        """The decoded metrics of ``predictions [N, L]`` ids (``decode_text(ids) -> str``) against ``references``."""
        hypotheses = [decode_text(row) for row in np.asarray(predictions)]
        return text_metrics(hypotheses, list(references))


@dataclasses.dataclass(frozen=True)
class Summarization(Seq2Seq):
    """As :class:`Seq2Seq` (``translation``), the best checkpoint chosen by ROUGE-L."""

    name = "summarization"
    best_metric = "rouge_l"


@dataclasses.dataclass(frozen=True)
class Translation(Seq2Seq):
    """Encoder-decoder translation: the best checkpoint chosen by BLEU."""

    name = "translation"
    best_metric = "bleu"


def shift_right(labels, start_id: int, pad_id: int):
    """``[B, L]`` labels (``IGNORE_INDEX`` = padding) -> decoder inputs: ``start_id`` then ``labels[:, :-1]``, pads."""
    labels = jnp.asarray(labels)
    shifted = jnp.concatenate([jnp.full((labels.shape[0], 1), start_id, labels.dtype), labels[:, :-1]], 1)
    return jnp.where(shifted == IGNORE_INDEX, pad_id, shifted).astype(jnp.int32)


def text_metrics(hypotheses: list[str], references: list[str]) -> dict:
    """``bleu``, ``chrf`` (sacrebleu corpus scores), ``rouge_l`` (mean F x100) and ``exact_match`` (fraction)."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"text_metrics needs as many hypotheses as references (>= 1), got {len(hypotheses)} and "
                         f"{len(references)}")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge = np.mean([scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(references, hypotheses)])
    return {"bleu": float(sacrebleu.corpus_bleu(hypotheses, [references]).score),
            "chrf": float(sacrebleu.corpus_chrf(hypotheses, [references]).score),
            "rouge_l": 100.0 * float(rouge),
            "exact_match": float(np.mean([h.strip() == r.strip() for h, r in zip(hypotheses, references)]))}


TRANSLATION = register_task(Translation())
SUMMARIZATION = register_task(Summarization())

__all__ = ["DECODED_METRICS", "SUMMARIZATION", "Seq2Seq", "Summarization", "TRANSLATION", "Translation",
           "shift_right", "text_metrics"]
