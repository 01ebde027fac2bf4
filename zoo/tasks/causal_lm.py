"""Causal language modelling: predict every next token of a window.

Batch ``{"tokens": [B, T + 1]}`` int32 (optionally ``attention_mask [B, T + 1]``, 1 =
token, 0 = padding).  The model reads ``tokens[:, :-1]`` (``T`` = its
``input_shape[0]``) and is scored on ``tokens[:, 1:]``, position by position; a
padded target position takes no part.  Metrics: mean next-token cross-entropy
``loss`` (nats), next-token ``accuracy`` and ``perplexity = exp(loss)``, which
picks the best checkpoint (lower is better).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from zoo.tasks.base import ArraySpec, ItemMeanTask, padded_mask, register_task
from zoo.tasks.classification import token_items


@dataclasses.dataclass(frozen=True)
class CausalLM(ItemMeanTask):
    """Next-token prediction on ``tokens [B, T + 1]``; model outputs ``[B, T, V]`` logits."""

    name = "causal_lm"
    best_metric = "perplexity"
    best_mode = "min"

    def check_model(self, config):
        if config.layout != "tokens" or not hasattr(config, "vocab_size"):
            raise ValueError(f"task 'causal_lm' needs a token model with vocab_size; {type(config).__name__} has "
                             f"layout {config.layout!r}")

    def schema(self, config):
        return {"tokens": ArraySpec((config.input_shape[0] + 1,), "int32")}

    def example_batch(self, config, key, batch_size=1):
        return {"tokens": jax.random.randint(key, (batch_size, config.input_shape[0] + 1), 0, config.vocab_size,
                                             jnp.int32)}

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.input_shape[0], config.vocab_size)

    def model_inputs(self, batch):
        kwargs = {"attention_mask": batch["attention_mask"][:, :-1]} if "attention_mask" in batch else {}
        return batch["tokens"][:, :-1], kwargs

    def items(self, logits, batch):
        losses, correct, weights = token_items(logits, batch["tokens"][:, 1:])
        if "attention_mask" in batch:
            weights = weights * batch["attention_mask"][:, 1:].astype(jnp.float32)
        return losses, correct, weights

    def eval_sums(self, outputs, batch, mask):
        losses, correct, weights = self.items(outputs, batch)
        weights = weights * padded_mask(mask, weights)
        return {"loss_sum": jnp.sum(losses * weights), "correct": jnp.sum(correct * weights),
                "count": jnp.sum(weights)}

    def metrics(self, sums):
        if not sums["count"]:
            raise ValueError("no target tokens to evaluate (the eval sums count 0 tokens)")
        loss = sums["loss_sum"] / sums["count"]
        return {"loss": loss, "accuracy": sums["correct"] / sums["count"],
                "perplexity": math.exp(min(loss, 700.0))}


CAUSAL_LM = register_task(CausalLM())

__all__ = ["CAUSAL_LM", "CausalLM"]
