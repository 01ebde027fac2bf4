"""Audio front end in JAX: STFT -> power / magnitude spectrogram -> log-mel -> MFCC, and augmentation.

Every function is jittable and batched (any leading dims), runs on the device (inside
a train step), and takes ``lengths`` for padded batches: ``wave [B, N]`` holds example
``b`` in its first ``lengths[b]`` samples.  With ``lengths`` the framing reflects / pads
each example at *its own* end, so every valid frame equals the unpadded example's frame
exactly; frames past an example's end are zero and ``frame_lengths`` says how many are
valid.  Layout is frames-major, ``[B, T, F]`` (time, then frequency / mel bins), the
``sequence`` layout of zoo models (librosa and Hugging Face put frequency first).

Parity (``tests/layers/test_audio.py``): :func:`melspectrogram` matches
``librosa.feature.melspectrogram`` (and :func:`mfcc` ``librosa.feature.mfcc``);
:func:`whisper_log_mel` matches Hugging Face ``WhisperFeatureExtractor`` (80 or 128 mels,
16 kHz, 25 ms / 10 ms hops) within 1e-4.

Augmentation (:func:`spec_augment`, :func:`add_noise`, :func:`time_shift`) takes a
``jax.random`` key; :func:`augment_key` ``(seed, step)`` gives the key of a training
step, so a resumed run draws exactly the masks and noise an uninterrupted one would
(zoo models draw it from the train step's ``dropout`` stream, which is ``fold_in(seed
key, step)`` too).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

WHISPER_SAMPLE_RATE = 16000
WHISPER_N_FFT = 400
WHISPER_HOP = 160


# -- filters (numpy, computed once at trace time) ------------------------------------------------
def hz_to_mel(freqs, htk: bool = False):
    """Hz -> mel: Slaney's scale (linear below 1 kHz, logarithmic above; librosa's default) or HTK's."""
    freqs = np.asarray(freqs, np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + freqs / 700.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(freqs >= min_log_hz, min_log_mel + np.log(np.maximum(freqs, 1e-10) / min_log_hz) / logstep,
                    freqs / f_sp)


def mel_to_hz(mels, htk: bool = False):
    """mel -> Hz (inverse of :func:`hz_to_mel`)."""
    mels = np.asarray(mels, np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


@functools.lru_cache(maxsize=32)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None,
                   htk: bool = False, norm: str | None = "slaney") -> np.ndarray:
    """Triangular mel filters ``[n_fft // 2 + 1, n_mels]`` (float32), as ``librosa.filters.mel`` builds them.

    ``norm="slaney"`` scales each triangle to unit area (librosa's and Whisper's default); None leaves peaks at 1.
    """
    if fmax is None:
        fmax = sample_rate / 2.0
    if not 0 <= fmin < fmax <= sample_rate / 2.0:
        raise ValueError(f"mel filters need 0 <= fmin < fmax <= sample_rate / 2 = {sample_rate / 2}; got fmin={fmin}, "
                         f"fmax={fmax}")
    if norm not in ("slaney", None):
        raise ValueError(f"mel filter norm must be 'slaney' or None, got {norm!r}")
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))  # [n_mels, n_freq]
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.T.astype(np.float32)


@functools.lru_cache(maxsize=32)
def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` centred in ``n_fft`` samples (``scipy.signal.get_window('hann')``)."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(window, (left, n_fft - win_length - left)).astype(np.float32)


@functools.lru_cache(maxsize=32)
def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II ``[n_mels, n_mfcc]`` (``scipy.fft.dct(type=2, norm="ortho")``)."""
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    basis[0] *= np.sqrt(0.5)
    return basis.T.astype(np.float32)


# -- checks ---------------------------------------------------------------------------------------
def _check_wave(wave, fn: str):
    wave = jnp.asarray(wave)
    if wave.ndim < 1 or not jnp.issubdtype(wave.dtype, jnp.floating):
        raise ValueError(f"{fn} takes float waveforms [..., N]; got {wave.dtype} of shape {tuple(wave.shape)}")
    return wave


def _check_lengths(lengths, wave, fn: str):
    if lengths is None:
        return None
    lengths = jnp.asarray(lengths)
    if tuple(lengths.shape) != tuple(wave.shape[:-1]) or not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(f"{fn}: lengths must be ints of shape {tuple(wave.shape[:-1])} (one per waveform), got "
                         f"{lengths.dtype} {tuple(lengths.shape)}")
    return lengths


def num_frames(num_samples, n_fft: int, hop_length: int, center: bool = True):
    """Frames of an STFT of ``num_samples`` samples (an int or an int array of lengths)."""
    pad = 2 * (n_fft // 2) if center else 0
    return 1 + (num_samples + pad - n_fft) // hop_length


# -- STFT and spectrograms -------------------------------------------------------------------------
def stft(wave, *, n_fft: int = 2048, hop_length: int | None = None, win_length: int | None = None,
         center: bool = True, pad_mode: str = "constant", lengths=None):
    """Short-time Fourier transform with a periodic Hann window (``librosa.stft``'s conventions).

    Args:
      wave: ``[..., N]`` float waveforms.
      n_fft: FFT size.  hop_length: frame step (default ``win_length // 4``).  win_length: window
        size (default ``n_fft``), zero-padded to ``n_fft``.
      center: pad ``n_fft // 2`` samples at both ends, so frame ``t`` is centred on sample ``t * hop``.
      pad_mode: ``"constant"`` (zeros; librosa's default) or ``"reflect"`` (Whisper's).
      lengths: ``[...]`` valid samples per waveform of a padded batch (None: all ``N``).

    Returns:
      ``[..., T, n_fft // 2 + 1]`` complex64, ``T = 1 + N // hop`` (centred).  With ``lengths``,
      frames past each example's own ``num_frames(lengths)`` are zero.
    """
    wave = _check_wave(wave, "stft")
    lengths = _check_lengths(lengths, wave, "stft")
    win_length = n_fft if win_length is None else win_length
    hop_length = win_length // 4 if hop_length is None else hop_length
    if not 0 < win_length <= n_fft or hop_length < 1:
        raise ValueError(f"stft needs 0 < win_length <= n_fft and hop_length >= 1; got n_fft={n_fft}, "
                         f"win_length={win_length}, hop_length={hop_length}")
    if pad_mode not in ("constant", "reflect"):
        raise ValueError(f"stft pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")
    n = wave.shape[-1]
    pad = n_fft // 2 if center else 0
    frames = num_frames(n, n_fft, hop_length, center)
    if frames < 1:
        raise ValueError(f"stft: {n} samples are fewer than one frame of n_fft={n_fft}")
    if pad_mode == "reflect" and center and n <= pad:
        raise ValueError(f"stft: reflect padding of {pad} samples needs more than {pad} samples, got {n}")
    # sample index of every (frame, tap) in the unpadded signal; out-of-range taps reflect or read zero
    taps = (np.arange(frames)[:, None] * hop_length + np.arange(n_fft)[None, :] - pad)  # [T, n_fft]
    length = jnp.full(wave.shape[:-1], n, jnp.int32) if lengths is None else lengths.astype(jnp.int32)
    length = length[..., None, None]  # [..., 1, 1]
    idx = jnp.asarray(taps, jnp.int32)
    if pad_mode == "reflect":
        idx = jnp.abs(idx)
        idx = jnp.where(idx >= length, 2 * (length - 1) - idx, idx)
    valid = (idx >= 0) & (idx < length)
    idx = jnp.broadcast_to(jnp.clip(idx, 0, n - 1), (*wave.shape[:-1], frames, n_fft))
    segments = jnp.take_along_axis(wave, idx.reshape(*wave.shape[:-1], frames * n_fft), axis=-1)
    segments = segments.reshape(*wave.shape[:-1], frames, n_fft)
    segments = jnp.where(valid, segments, 0.0) * jnp.asarray(hann_window(win_length, n_fft), wave.dtype)
    spec = jnp.fft.rfft(segments.astype(jnp.float32), axis=-1)  # [..., T, F]
    if lengths is not None:
        spec = spec * frame_mask(lengths, frames, n_fft, hop_length, center)[..., None]
    return spec


def frame_mask(lengths, frames: int, n_fft: int, hop_length: int, center: bool = True):
    """``[..., T]`` float32: 1 for the frames of each example's own length, 0 past it."""
    valid = num_frames(jnp.asarray(lengths), n_fft, hop_length, center)
    return (jnp.arange(frames) < valid[..., None]).astype(jnp.float32)


def spectrogram(wave, *, power: float = 2.0, n_fft: int = 2048, hop_length: int | None = None,
                win_length: int | None = None, center: bool = True, pad_mode: str = "constant", lengths=None):
    """``|stft|**power`` ``[..., T, n_fft // 2 + 1]`` float32 (power 2: power spectrogram; 1: magnitude)."""
    spec = stft(wave, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center,
                pad_mode=pad_mode, lengths=lengths)
    if power == 2.0:
        return jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
    if power == 1.0:
        return jnp.abs(spec)
    if not power > 0:
        raise ValueError(f"spectrogram power must be > 0, got {power}")
    return jnp.abs(spec) ** power


def melspectrogram(wave, *, sample_rate: int, n_fft: int = 2048, hop_length: int | None = None,
                   win_length: int | None = None, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None,
                   power: float = 2.0, center: bool = True, pad_mode: str = "constant", htk: bool = False,
                   norm: str | None = "slaney", lengths=None):
    """Mel spectrogram ``[..., T, n_mels]``: ``librosa.feature.melspectrogram`` (same defaults), frames first."""
    spec = spectrogram(wave, power=power, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center,
                       pad_mode=pad_mode, lengths=lengths)
    filters = jnp.asarray(mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm))
    return jnp.matmul(spec, filters, precision=jax.lax.Precision.HIGHEST)


def power_to_db(spec, *, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0, mask=None):
    """``10 log10(max(amin, S) / ref)`` clipped at ``top_db`` below each example's maximum (librosa).

    ``spec`` is ``[..., T, F]``; the maximum is over each example's last two axes (its valid
    frames only, when ``mask [..., T]`` is given).
    """
    db = 10.0 * jnp.log10(jnp.maximum(amin, spec)) - 10.0 * np.log10(max(amin, ref))
    if top_db is not None:
        if top_db < 0:
            raise ValueError(f"top_db must be >= 0, got {top_db}")
        masked = db if mask is None else jnp.where(mask[..., None] > 0, db, -jnp.inf)
        peak = jnp.max(masked, axis=(-2, -1), keepdims=True)
        db = jnp.maximum(db, peak - top_db)
    return db


def log_mel_spectrogram(wave, *, sample_rate: int, n_fft: int = 2048, hop_length: int | None = None,
                        win_length: int | None = None, n_mels: int = 128, fmin: float = 0.0,
                        fmax: float | None = None, top_db: float | None = 80.0, center: bool = True,
                        pad_mode: str = "constant", lengths=None):
    """Log-mel in dB, ``power_to_db(melspectrogram(...))`` ``[..., T, n_mels]``; padded frames are 0 with ``lengths``."""
    hop = (n_fft if win_length is None else win_length) // 4 if hop_length is None else hop_length
    mel = melspectrogram(wave, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop, win_length=win_length,
                         n_mels=n_mels, fmin=fmin, fmax=fmax, center=center, pad_mode=pad_mode, lengths=lengths)
    mask = None if lengths is None else frame_mask(lengths, mel.shape[-2], n_fft, hop, center)
    db = power_to_db(mel, top_db=top_db, mask=mask)
    return db if mask is None else db * mask[..., None]


def mfcc(wave, *, sample_rate: int, n_mfcc: int = 20, n_mels: int = 128, lengths=None, **mel_kwargs):
    """MFCCs ``[..., T, n_mfcc]``: orthonormal DCT-II of the dB log-mel (``librosa.feature.mfcc``)."""
    db = log_mel_spectrogram(wave, sample_rate=sample_rate, n_mels=n_mels, lengths=lengths, **mel_kwargs)
    if not 0 < n_mfcc <= n_mels:
        raise ValueError(f"mfcc needs 0 < n_mfcc <= n_mels ({n_mels}), got {n_mfcc}")
    return jnp.matmul(db, jnp.asarray(dct_matrix(n_mels, n_mfcc)), precision=jax.lax.Precision.HIGHEST)


def whisper_log_mel(wave, *, n_mels: int = 80, lengths=None):
    """Whisper's input features ``[..., T, n_mels]`` from 16 kHz audio (``WhisperFeatureExtractor``, frames first).

    Reflect-padded 400-point STFT every 160 samples, power, Slaney mels, ``log10(max(1e-10, .))``,
    the last frame dropped, floored at 8 below each example's maximum, then ``(x + 4) / 4``.
    The extractor pads audio to 30 s (480,000 samples) first; pass audio of the length the model
    expects (``T = N // 160``).
    """
    wave = _check_wave(wave, "whisper_log_mel")
    mel = melspectrogram(wave, sample_rate=WHISPER_SAMPLE_RATE, n_fft=WHISPER_N_FFT, hop_length=WHISPER_HOP,
                         n_mels=n_mels, pad_mode="reflect", lengths=lengths)[..., :-1, :]
    log_spec = jnp.log10(jnp.maximum(mel, 1e-10))
    peak = jnp.max(log_spec, axis=(-2, -1), keepdims=True)
    return (jnp.maximum(log_spec, peak - 8.0) + 4.0) / 4.0


# -- augmentation (deterministic in the key) -------------------------------------------------------
def augment_key(seed: int, step) -> jax.Array:
    """The augmentation key of training step ``step`` of a run seeded ``seed``: ``fold_in(key(seed), step)``."""
    return jax.random.fold_in(jax.random.key(seed), step)


def _band_mask(key, size: int, max_width: int, count: int, batch: tuple, limit=None):
    """``[*batch, size]`` bool: ``count`` random bands of width ``0..max_width`` each, inside ``[0, limit)``."""
    if count == 0 or max_width == 0:
        return jnp.zeros((*batch, size), bool)
    kw, ks = jax.random.split(key)
    width = jax.random.randint(kw, (*batch, count), 0, max_width + 1)
    span = (size if limit is None else limit[..., None]) - width
    start = jnp.floor(jax.random.uniform(ks, (*batch, count)) * (jnp.maximum(span, 0) + 1)).astype(jnp.int32)
    pos = jnp.arange(size)
    inside = (pos >= start[..., None]) & (pos < (start + width)[..., None])  # [*batch, count, size]
    return jnp.any(inside, axis=-2)


def spec_augment(key, spec, *, time_masks: int = 2, time_width: int = 10, freq_masks: int = 2,
                 freq_width: int = 8, mask_value: float = 0.0, frame_lengths=None):
    """SpecAugment (Park et al. 2019) time and frequency masks on ``[..., T, F]`` features.

    Each example gets ``time_masks`` bands of ``0..time_width`` frames (inside its first
    ``frame_lengths`` frames when given) and ``freq_masks`` bands of ``0..freq_width`` bins, set
    to ``mask_value``.  The same ``key`` gives the same masks.
    """
    spec = jnp.asarray(spec)
    if spec.ndim < 2:
        raise ValueError(f"spec_augment takes features [..., T, F], got shape {tuple(spec.shape)}")
    *batch, frames, bins = spec.shape
    kt, kf = jax.random.split(key)
    limit = None if frame_lengths is None else jnp.minimum(jnp.asarray(frame_lengths), frames)
    time = _band_mask(kt, frames, min(time_width, frames), time_masks, tuple(batch), limit)
    freq = _band_mask(kf, bins, min(freq_width, bins), freq_masks, tuple(batch))
    masked = time[..., :, None] | freq[..., None, :]
    return jnp.where(masked, jnp.asarray(mask_value, spec.dtype), spec)


def add_noise(key, wave, snr_db, *, lengths=None):
    """``wave [..., N]`` plus white Gaussian noise at signal-to-noise ratio ``snr_db`` (per example, valid samples)."""
    wave = _check_wave(wave, "add_noise")
    lengths = _check_lengths(lengths, wave, "add_noise")
    n = wave.shape[-1]
    valid = jnp.ones(wave.shape, bool) if lengths is None else jnp.arange(n) < lengths[..., None]
    count = jnp.maximum(jnp.sum(valid, -1, keepdims=True), 1)
    signal_power = jnp.sum(jnp.where(valid, wave, 0.0) ** 2, -1, keepdims=True) / count
    snr = jnp.broadcast_to(jnp.asarray(snr_db, jnp.float32), wave.shape[:-1])[..., None]  # a scalar or one per wave
    noise_power = signal_power / (10.0 ** (snr / 10.0))
    noise = jax.random.normal(key, wave.shape, jnp.float32) * jnp.sqrt(noise_power)
    return jnp.where(valid, wave + noise.astype(wave.dtype), wave)


def time_shift(key, wave, max_shift: int, *, lengths=None):
    """Shifts each ``wave [..., N]`` by a random ``-max_shift..max_shift`` samples, filling with zeros.

    A shift never moves samples past ``N`` (or the example's ``lengths``): what leaves is dropped.
    """
    wave = _check_wave(wave, "time_shift")
    lengths = _check_lengths(lengths, wave, "time_shift")
    n = wave.shape[-1]
    shift = jax.random.randint(key, wave.shape[:-1], -max_shift, max_shift + 1)
    source = jnp.arange(n) - shift[..., None]  # output sample i reads input sample i - shift
    limit = n if lengths is None else lengths[..., None]
    ok = (source >= 0) & (source < limit)
    flat_src = jnp.clip(source, 0, n - 1)
    return jnp.where(ok, jnp.take_along_axis(wave, flat_src, -1), 0.0)


__all__ = ["WHISPER_HOP", "WHISPER_N_FFT", "WHISPER_SAMPLE_RATE", "add_noise", "augment_key", "dct_matrix",
           "frame_mask", "hann_window", "hz_to_mel", "log_mel_spectrogram", "mel_filterbank", "mel_to_hz",
           "melspectrogram", "mfcc", "num_frames", "power_to_db", "spec_augment", "spectrogram", "stft",
           "time_shift", "whisper_log_mel"]
