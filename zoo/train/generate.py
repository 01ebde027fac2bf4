"""Text generation with a trained sequence-to-sequence run: ``zoo generate --workdir W --input "..."``.

The run's tokenizer is rebuilt from its dataset (``zoo.data.seq2seq`` learns it
deterministically from the training side: the same ids as in training), the inputs are
encoded as in training (a source longer than the model's maximum is cut, or refused with
``long="refuse"``) and decoded greedily or with beam search (``zoo.layers.decoding``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from zoo.data import load_dataset
from zoo.layers import decoding
from zoo.registry import task_name
from zoo.train.loop import load_run


def generate_text(workdir: str, inputs: list[str], *, step: int | None = None, num_beams: int = 1,
                  length_penalty: float = 1.0, max_length: int | None = None, long: str = "truncate",
                  key_file: str | None = None) -> list[str]:
    """The output text of each string in ``inputs`` under the run in ``workdir`` (its newest checkpoint, or ``step``;
    ``key_file``: the key of an encrypted run)."""
    if not inputs:
        raise ValueError("generate needs at least one input text")
    model, state, meta = load_run(workdir, step, key_file=key_file)
    config = model.config
    if task_name(config) not in ("translation", "summarization"):
        raise ValueError(f"{workdir} holds a run for task {task_name(config)!r}; generate takes a translation or "
                         "summarization run (e.g. zoo train t5_tiny --data translate:en-de)")
    dataset = load_dataset(meta["data"], config, seed=meta["train_config"]["seed"])
    decoding.check_search_args(num_beams=num_beams, vocab_size=config.vocab_size, length_penalty=length_penalty)
    max_length = config.target_length + 1 if max_length is None else max_length
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2 (the start token and at least one more), got {max_length!r}")
    batch = dataset.text.encode_sources(inputs, config.input_shape[0], long=long)
    ids = _search(model, num_beams, max_length)(state.params, jnp.asarray(batch["inputs"]),
                                                jnp.asarray(batch["attention_mask"]), jnp.float32(length_penalty))
    return [dataset.text.decode(row) for row in np.asarray(ids)]


@functools.lru_cache(maxsize=8)
def _search(model, num_beams: int, max_length: int):
    cfg = model.config

    def run(params, x, mask, length_penalty):
        return decoding.encoder_decoder_search(
            model.apply, params, x, mask, max_length=max_length, start_id=cfg.decoder_start_token_id,
            eos_id=cfg.eos_token_id, pad_id=cfg.pad_token_id, num_beams=num_beams, length_penalty=length_penalty)

    return jax.jit(run)


__all__ = ["generate_text"]
