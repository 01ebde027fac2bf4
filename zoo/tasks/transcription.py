"""Speech to text: audio features in, the transcript's tokens out (teacher-forced encoder-decoder training).

=================  ==========================================  ===============  ===========================
task               batch                                       model output     ``labels``
=================  ==========================================  ===============  ===========================
``transcription``  ``inputs [B, T, M]`` float (log-mel frames),  ``[B, L, V]``   ``[B, L]`` int: the next
                   ``decoder_input_ids [B, L]`` int                             token; ``IGNORE_INDEX`` =
                                                                                padding
=================  ==========================================  ===============  ===========================

``decoder_input_ids`` is the transcript shifted right behind the start token; the loss is
the mean cross-entropy over the labelled tokens, "accuracy" is per token.  Word error rate
needs decoding (``zoo.models.whisper.greedy_decode``; ``word_error_rate`` here).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from zoo.tasks.base import ArraySpec, ItemMeanTask, register_task
from zoo.tasks.classification import IGNORE_INDEX, _loss_accuracy, _masked_sums, token_items


@dataclasses.dataclass(frozen=True)
class Transcription(ItemMeanTask):
    """Encoder-decoder speech recognition: ``[B, L, V]`` logits against ``labels [B, L]``."""

    name = "transcription"
    best_metric = "loss"
    best_mode = "min"

    def check_model(self, config: Any) -> None:
        for field in ("vocab_size", "target_length", "decoder_start_token_id"):
            if not hasattr(config, field):
                raise ValueError(f"task 'transcription' needs an encoder-decoder config with {field}; "
                                 f"{type(config).__name__} has none")

    def schema(self, config):
        return {"inputs": ArraySpec(tuple(config.input_shape), "float32"),
                "decoder_input_ids": ArraySpec((config.target_length,), "int32"),
                "labels": ArraySpec((config.target_length,), "int32")}

    def model_inputs(self, batch):
        return batch["inputs"], {"decoder_input_ids": batch["decoder_input_ids"]}

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.target_length, config.vocab_size)

    def example_batch(self, config, key, batch_size=1):
        kx, ky = jax.random.split(key)
        length = config.target_length
        tokens = jax.random.randint(ky, (batch_size, length), 0, config.vocab_size, jnp.int32)
        decoder = jnp.concatenate([jnp.full((batch_size, 1), config.decoder_start_token_id, jnp.int32),
                                   tokens[:, :-1]], 1)
        return {"inputs": jax.random.normal(kx, (batch_size, *config.input_shape), jnp.float32),
                "decoder_input_ids": decoder, "labels": tokens}

    def items(self, outputs, batch):
        return token_items(outputs, batch["labels"])

    def eval_sums(self, outputs, batch, mask):
        return _masked_sums(*self.items(outputs, batch), mask)

    def metrics(self, sums):
        return _loss_accuracy(sums)


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate: word-level edit distance (substitutions + insertions + deletions) / reference words."""
    if len(references) != len(hypotheses):
        raise ValueError(f"word_error_rate needs as many hypotheses as references, got {len(hypotheses)} and "
                         f"{len(references)}")
    errors = words = 0
    for ref, hyp in zip(references, hypotheses):
        r, h = ref.split(), hyp.split()
        row = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            prev, row[0] = row[0], i
            for j, hw in enumerate(h, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
        errors += row[-1]
        words += len(r)
    if not words:
        raise ValueError("word_error_rate needs at least one reference word")
    return errors / words


TRANSCRIPTION = register_task(Transcription())

__all__ = ["IGNORE_INDEX", "TRANSCRIPTION", "Transcription", "word_error_rate"]
