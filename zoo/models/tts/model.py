"""A small non-autoregressive text-to-speech model: ``(word, voice)`` ids in, log-mel frames out.

``inputs [B, 2]`` int: the word's id (``0 .. num_words - 1``) and the voice's id offset by
``num_words`` -> summed embeddings -> dense to ``T0`` frames of ``hidden_size`` channels ->
``num_upsample`` blocks of (x2 nearest upsampling in time, conv 5 + GELU, conv 5 + GELU
residual) -> crop to ``frames`` -> ``head`` dense -> ``[B, frames, num_mels]`` mel frames in
[0, 1] units (``zoo.data.audio.synthesis_targets``: dB below the utterance's peak / 80 + 1).
A vocoder (``zoo.data.audio.mel_to_wave``: Griffin-Lim) turns frames into a waveform.

Variants::

    name       words  voices  frames  mels  hidden  params
    tts_fsdd      10       6     101    40     128  (FSDD digits; examples/text_to_speech.py)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import Dense, Embed, axes, check_positive_ints, check_tokens, normalize_config
from zoo.layers.checks import check_common_fields


@dataclasses.dataclass(frozen=True, kw_only=True)
class MelTTSConfig:
    """Config of :class:`MelTTS`.

    Attributes:
      variant: registry name.  num_words, num_voices: label vocabularies (``vocab_size`` = their sum).
      frames, num_mels: the output ``[frames, num_mels]``.  hidden_size: channels.  num_upsample: x2 blocks.
    """

    variant: str = "tts_fsdd"
    num_words: int = 10
    num_voices: int = 6
    frames: int = 101
    num_mels: int = 40
    hidden_size: int = 128
    num_upsample: int = 3
    vocab_size: int = 16
    input_shape: tuple[int, ...] = (2,)
    task: str = "speech_synthesis"
    layout: str = "tokens"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self)
        name = type(self).__name__
        check_common_fields(self)
        check_positive_ints(self, "num_words", "num_voices", "frames", "num_mels", "num_upsample")
        if self.vocab_size != self.num_words + self.num_voices:
            raise ValueError(f"{name}.vocab_size must be num_words + num_voices = "
                             f"{self.num_words + self.num_voices}, got {self.vocab_size}")
        if tuple(self.input_shape) != (2,):
            raise ValueError(f"{name}.input_shape must be (2,) (word id, voice id), got {self.input_shape!r}")
        if self.task != "speech_synthesis" or self.layout != "tokens":
            raise ValueError(f"{name} is a 'speech_synthesis' model on 'tokens'; got task {self.task!r}, layout "
                             f"{self.layout!r}")

    @property
    def start_frames(self) -> int:
        return -(-self.frames // 2 ** self.num_upsample)


class MelTTS(nn.Module):
    """``[B, 2]`` (word, num_words + voice) ids -> ``[B, frames, num_mels]`` mel frames."""

    config: MelTTSConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        del train  # no dropout
        cfg = self.config
        check_tokens(x, 2, model=cfg.variant, vocab_size=cfg.vocab_size)
        if x.shape[1] != 2:
            raise ValueError(f"{cfg.variant} expects input [B, 2] (word id, voice id), got shape {tuple(x.shape)}")
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        c = cfg.hidden_size
        h = Embed(cfg.vocab_size, c, (axes.VOCAB, axes.EMBED), name="embed", **kw)(x).sum(1)  # [B, C]
        h = Dense(cfg.start_frames * c, name="project", **kw)(nn.gelu(h))
        h = h.reshape(x.shape[0], cfg.start_frames, c)  # [B, T0, C]
        for i in range(cfg.num_upsample):
            h = jnp.repeat(h, 2, axis=1)  # [B, 2T, C]
            y = nn.gelu(nn.Conv(c, (5,), padding="SAME", name=f"conv_{i}a", **kw)(h))
            h = h + nn.gelu(nn.Conv(c, (5,), padding="SAME", name=f"conv_{i}b", **kw)(y))
        h = h[:, :cfg.frames]
        self.sow("intermediates", "pre_logits", h)
        return Dense(cfg.num_mels, logical_axes=(axes.MLP, axes.EMBED), name="head", **kw)(h)  # [B, T, M]


registry.register_model("tts_fsdd", module=MelTTS, config=MelTTSConfig(),
                        description="label-to-mel TTS for FSDD's 10 digits x 6 voices (Griffin-Lim vocoder)")
