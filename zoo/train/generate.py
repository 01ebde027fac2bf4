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
    # the arguments first (before restoring anything); the vocabulary-dependent checks follow
    plenty = 2 * num_beams if isinstance(num_beams, int) else 2  # the vocabulary is checked once the run is read
    decoding.check_search_args(num_beams=num_beams, vocab_size=plenty, length_penalty=length_penalty)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
        raise ValueError(f"max_length must be an int >= 2 (the start token and at least one more), got {max_length!r}")
    if long not in ("truncate", "refuse"):
        raise ValueError(f"long must be 'truncate' or 'refuse', got {long!r}")
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


def decode_split(model, params, split: dict, *, num_beams: int = 1, batch_size: int = 256,
                 length_penalty: float = 1.0) -> np.ndarray:
    """``[N, target_length]`` decoded ids of a dataset split's ``inputs`` / ``attention_mask`` (greedy or beam search).

    The examples score held-out splits with it (``examples/translate.py``, ``examples/summarize.py``).
    """
    cfg = model.config
    decoding.check_search_args(num_beams=num_beams, vocab_size=cfg.vocab_size, length_penalty=length_penalty)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    search = _search(model, num_beams, cfg.target_length + 1)
    n = len(split["inputs"])
    return np.concatenate([np.asarray(search(params, jnp.asarray(split["inputs"][i:i + batch_size]),
                                             jnp.asarray(split["attention_mask"][i:i + batch_size]),
                                             jnp.float32(length_penalty)))
                           for i in range(0, n, batch_size)])


def best_step(result: dict, metric: str, mode: str = "max") -> int:
    """The kept checkpoint of a :func:`zoo.train.train_and_evaluate` ``result`` with the best ``test_METRIC``.

    Reads the run's ``metrics.jsonl``; a kept step without that metric (none logged) loses to any
    step with it; with none scored at all, the newest kept step.
    """
    import json

    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    kept, key = set(result["checkpoints"]), f"test_{metric}"
    if not kept:
        raise ValueError(f"no checkpoint kept in {result.get('workdir')}")
    scores = {}
    with open(result["metrics"]) as f:
        for line in f:
            row = json.loads(line)
            if row.get("step") in kept and key in row:
                scores[row["step"]] = row[key]
    if not scores:
        return max(kept)
    sign = 1 if mode == "max" else -1
    return max(scores, key=lambda step: (sign * scores[step], step))


def pretrained_start(path, task: str) -> tuple[dict, dict, str | None]:
    """``(model_overrides, params, tokenizer_dir)`` to train from a local Hugging Face T5 checkpoint.

    The overrides make the registry model the checkpoint's configuration (``zoo.from_pretrained``);
    ``tokenizer_dir`` is ``path`` when it holds a ``tokenizer.json`` (pass it as the dataset's
    ``tokenizer=DIR`` option), else None (the dataset learns its own, which must fit the
    checkpoint's ``vocab_size``).
    """
    import os

    import zoo
    from zoo import registry

    loaded, variables = zoo.from_pretrained(path, task=task)
    overrides = {k: v for k, v in registry.config_to_dict(loaded.config).items() if k != "variant"}
    overrides["input_shape"] = tuple(overrides["input_shape"])
    tokenizer = os.path.abspath(path) if os.path.isfile(os.path.join(path, "tokenizer.json")) else None
    return overrides, variables["params"], tokenizer


@functools.lru_cache(maxsize=8)
def _search(model, num_beams: int, max_length: int):
    cfg = model.config

    def run(params, x, mask, length_penalty):
        return decoding.encoder_decoder_search(
            model.apply, params, x, mask, max_length=max_length, start_id=cfg.decoder_start_token_id,
            eos_id=cfg.eos_token_id, pad_id=cfg.pad_token_id, num_beams=num_beams, length_penalty=length_penalty)

    return jax.jit(run)


__all__ = ["best_step", "decode_split", "generate_text", "pretrained_start"]
