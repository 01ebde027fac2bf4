"""Speech synthesis: labels in, mel frames out (regression of ``[B, T, M]`` frames).

=====================  =========================  ==================  ==============================
task                   batch                      model output        target
=====================  =========================  ==================  ==============================
``speech_synthesis``   ``inputs [B, *shape]`` int  ``[B, T, M]``      ``mels [B, T, M]`` float
=====================  =========================  ==================  ==============================

The loss is mean absolute error plus mean squared error over every frame and bin (L1 keeps
formant edges sharper than L2 alone); evaluation reports both.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from zoo.tasks.base import ArraySpec, Task, padded_mask, register_task


@dataclasses.dataclass(frozen=True)
class SpeechSynthesis(Task):
    """``[B, T, M]`` predicted mel frames against ``mels [B, T, M]``."""

    name = "speech_synthesis"
    best_metric = "loss"
    best_mode = "min"

    def check_model(self, config):
        if not hasattr(config, "frames") or not hasattr(config, "num_mels"):
            raise ValueError(f"task 'speech_synthesis' needs a config with frames and num_mels; "
                             f"{type(config).__name__} has none")

    def schema(self, config):
        return {"inputs": ArraySpec(tuple(config.input_shape), "int32"),
                "mels": ArraySpec((config.frames, config.num_mels), "float32")}

    def model_inputs(self, batch):
        return batch["inputs"], {}

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.frames, config.num_mels)

    def example_batch(self, config, key, batch_size=1):
        kx, ky = jax.random.split(key)
        return {"inputs": jax.random.randint(kx, (batch_size, *config.input_shape), 0, config.vocab_size, jnp.int32),
                "mels": jax.random.uniform(ky, (batch_size, config.frames, config.num_mels), jnp.float32)}

    def loss(self, outputs, batch, *, label_smoothing: float = 0.0):
        if label_smoothing:
            raise ValueError("label_smoothing is implemented for classification, not task 'speech_synthesis'")
        err = outputs.astype(jnp.float32) - batch["mels"]
        return jnp.mean(jnp.abs(err)) + jnp.mean(err ** 2)

    def train_metrics(self, outputs, batch):
        return {"l1": jnp.mean(jnp.abs(outputs.astype(jnp.float32) - batch["mels"]))}

    def eval_sums(self, outputs, batch, mask):
        err = outputs.astype(jnp.float32) - batch["mels"]
        weights = padded_mask(mask, err)
        return {"abs_sum": jnp.sum(jnp.abs(err) * weights), "sq_sum": jnp.sum(err ** 2 * weights),
                "count": jnp.sum(weights * jnp.ones_like(err))}

    def metrics(self, sums):
        if not sums["count"]:
            raise ValueError("no examples to evaluate (the eval sums count 0 values)")
        l1, l2 = sums["abs_sum"] / sums["count"], sums["sq_sum"] / sums["count"]
        return {"loss": l1 + l2, "l1": l1, "mse": l2}


SPEECH_SYNTHESIS = register_task(SpeechSynthesis())

__all__ = ["SPEECH_SYNTHESIS", "SpeechSynthesis"]
