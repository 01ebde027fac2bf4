"""Speech to text with a trained run: ``zoo transcribe --workdir W file.wav ...``.

A transcription run (``whisper_fsdd``) decodes greedily; a spoken-digit classifier run
(``kws_cnn``) prints the word of its class.  Files must be mono 8 kHz WAVs (FSDD's format);
each is fitted to the model's one-second clip as in training (``zoo.data.audio.fit_clip``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from zoo.data import audio
from zoo.registry import task_name
from zoo.train.loop import load_run


def transcribe(workdir: str, files: list[str], *, step: int | None = None, key_file: str | None = None) -> list[str]:
    """The text of each WAV file in ``files`` under the run in ``workdir`` (its newest checkpoint, or ``step``;
    ``key_file``: the key of an encrypted run)."""
    if not files:
        raise ValueError("transcribe needs at least one WAV file")
    model, state, _ = load_run(workdir, step, key_file=key_file)
    config = model.config
    waves = [audio.read_wav(f) for f in files]
    variables = {"params": state.params}
    task = task_name(config)
    if task == "transcription":
        from zoo.models.whisper import greedy_decode

        features = audio.transcription_features(waves, tuple(config.input_shape))
        ids = greedy_decode(model, variables, features, max_length=config.target_length)
        return [audio.decode_text(row[1:]) for row in np.asarray(ids)]
    if task == "classification" and config.layout == "vector" and config.num_classes == 10:
        x = audio.clips(waves, config.input_shape[0])
        logits = model.apply(variables, jnp.asarray(x), train=False)
        return [audio.DIGIT_WORDS[i] for i in np.argmax(np.asarray(logits), -1)]
    raise ValueError(f"{workdir} holds a {config.variant if hasattr(config, 'variant') else type(config).__name__} "
                     f"run for task {task!r}; transcribe takes a transcription run (whisper_fsdd) or a spoken-digit "
                     "classifier (kws_cnn)")


__all__ = ["transcribe"]
