"""Keyword-spotting CNN: raw waveform in, log-mels on the device, a small conv stack, class logits.

``[B, N]`` float waveform (``input_shape (N,)`` at ``sample_rate``) -> log-mel dB ``[B, T, M]``
(``zoo.layers.audio``, inside the jitted step) -> per-utterance standardisation -> ``len(features)``
blocks of conv 3x3 + ReLU + 2x2 max-pool over ``[B, T, M, 1]`` -> flatten -> dense + ReLU ->
dropout -> ``[B, num_classes]`` logits.

In training (``train=True``) the model augments its own input with keys from the step's
``dropout`` stream (``fold_in(seed key, step)``, so resume is exact): a random time shift of
up to ``max_shift`` samples, white noise at ``noise_snr_db`` (None: off), and SpecAugment
time / frequency masks on the standardised log-mel.

Variants::

    name       mels  features        params
    kws_cnn      40  (16, 32, 64)   269,770   (8 kHz, 1 s: FSDD; examples/keyword_spotting.py)
    kws_tiny     16  (4, 8)           1,970   (tests)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo import registry
from zoo.layers import (CONV_IMPLS, Conv2D, Dense, Dropout, audio, axes, check_input, check_positive_ints,
                        max_pool, normalize_config, with_logical_constraint)
from zoo.layers.checks import check_common_fields


@dataclasses.dataclass(frozen=True, kw_only=True)
class KWSConfig:
    """Config of :class:`KWSCNN` (defaults: ``kws_cnn`` for 1 s of 8 kHz audio).

    Attributes:
      variant: registry name, for messages.
      input_shape: ``(N,)`` waveform samples.  sample_rate: Hz.
      n_fft, hop_length, n_mels: the log-mel front end (``zoo.layers.audio.log_mel_spectrogram``).
      features: conv channels per block.  mlp_dim: the dense layer before the head.  dropout_rate: before the head.
      max_shift: random time shift in samples (training).  noise_snr_db: additive noise (None: off).
      time_masks, time_width, freq_masks, freq_width: SpecAugment (0 masks: off).
    """

    variant: str = "kws_cnn"
    input_shape: tuple[int, ...] = (8000,)
    sample_rate: int = 8000
    n_fft: int = 256
    hop_length: int = 80
    n_mels: int = 40
    features: tuple[int, ...] = (16, 32, 64)
    mlp_dim: int = 64
    dropout_rate: float = 0.1
    max_shift: int = 800
    noise_snr_db: float | None = None
    time_masks: int = 2
    time_width: int = 10
    freq_masks: int = 2
    freq_width: int = 6
    num_classes: int = 10
    conv_impl: str = "auto"
    layout: str = "vector"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self, tuple_fields=("features",))
        name = type(self).__name__
        if len(self.input_shape) != 1:
            raise ValueError(f"{name}.input_shape must be (N,) waveform samples, got {self.input_shape!r}")
        check_common_fields(self)
        check_positive_ints(self, "features", "mlp_dim", "sample_rate", "n_fft", "hop_length", "n_mels")
        if self.input_shape[0] < self.n_fft:
            raise ValueError(f"{name}.input_shape {self.input_shape} is shorter than one frame (n_fft={self.n_fft})")
        frames = int(audio.num_frames(self.input_shape[0], self.n_fft, self.hop_length))
        if min(frames, self.n_mels) < 2 ** len(self.features):
            raise ValueError(f"{name}: {frames} frames x {self.n_mels} mels are too small for {len(self.features)} "
                             "2x2 pools")
        for field in ("max_shift", "time_masks", "time_width", "freq_masks", "freq_width"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}.{field} must be an int >= 0, got {value!r}")
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"{name}.conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}")
        if self.layout != "vector":
            raise ValueError(f"{name}.layout must be 'vector' (a waveform), got {self.layout!r}")


def log_mel_features(config: KWSConfig, wave):
    """``[B, N]`` waveform -> standardised log-mel ``[B, T, M]`` (zero mean, unit variance per utterance)."""
    db = audio.log_mel_spectrogram(wave.astype(jnp.float32), sample_rate=config.sample_rate, n_fft=config.n_fft,
                                   hop_length=config.hop_length, n_mels=config.n_mels)
    mean = db.mean(axis=(-2, -1), keepdims=True)
    std = db.std(axis=(-2, -1), keepdims=True)
    return (db - mean) / (std + 1e-5)


class KWSCNN(nn.Module):
    """``[B, N]`` waveform -> ``[B, num_classes]`` logits."""

    config: KWSConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, N]")
        x = with_logical_constraint(x.astype(jnp.float32), (axes.BATCH, axes.LENGTH))
        if train:
            k_shift, k_noise, k_mask = jax.random.split(self.make_rng("dropout"), 3)
            if cfg.max_shift:
                x = audio.time_shift(k_shift, x, cfg.max_shift)
            if cfg.noise_snr_db is not None:
                x = audio.add_noise(k_noise, x, cfg.noise_snr_db)
        h = log_mel_features(cfg, x)  # [B, T, M]
        if train and (cfg.time_masks or cfg.freq_masks):
            h = audio.spec_augment(k_mask, h, time_masks=cfg.time_masks, time_width=cfg.time_width,
                                   freq_masks=cfg.freq_masks, freq_width=cfg.freq_width)
        h = h[..., None].astype(cfg.dtype)  # [B, T, M, 1]
        for i, features in enumerate(cfg.features):
            h = Conv2D(features, (3, 3), padding="SAME", impl=cfg.conv_impl, dtype=cfg.dtype,
                       param_dtype=cfg.param_dtype, name=f"conv_{i}")(h)
            h = nn.relu(max_pool(h, 2))  # [B, T / 2^i, M / 2^i, F]
        h = h.reshape(h.shape[0], -1)  # [B, T' * M' * F]: keeps where in the word each feature is
        h = nn.relu(Dense(cfg.mlp_dim, dtype=cfg.dtype, param_dtype=cfg.param_dtype, name="dense")(h))  # [B, H]
        h = Dropout(cfg.dropout_rate, deterministic=not train)(h)
        self.sow("intermediates", "pre_logits", h)
        return Dense(cfg.num_classes, logical_axes=(axes.MLP, axes.CLASSES), dtype=cfg.dtype,
                     param_dtype=cfg.param_dtype, name="head")(h)  # [B, K]


registry.register_model(
    "kws_cnn", module=KWSCNN, config=KWSConfig(),
    description="keyword-spotting CNN on on-device log-mels of 1 s of 8 kHz audio (FSDD spoken digits)",
)
registry.register_model(
    "kws_tiny", module=KWSCNN,
    config=KWSConfig(variant="kws_tiny", input_shape=(2000,), n_mels=16, features=(4, 8), mlp_dim=8, max_shift=100),
    description="keyword-spotting CNN, tiny: tests",
)
