"""The JAX audio front end against librosa and Hugging Face's WhisperFeatureExtractor; augmentation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo.layers import audio

librosa = pytest.importorskip("librosa", reason="librosa is in the test extra")


@pytest.fixture(scope="module")
def voice():
    """A voiced, chirpy 8 kHz signal with harmonics and noise (0.43 s), float32."""
    rng = np.random.default_rng(0)
    t = np.arange(3472) / 8000.0
    f0 = 120 + 80 * t
    y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 8000.0) / k for k in range(1, 6))
    y = y * np.hanning(len(t)) + 0.01 * rng.standard_normal(len(t))
    return (0.3 * y).astype(np.float32)


def _rel(ours, ref):
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


@pytest.mark.parametrize("kwargs", [
    dict(n_fft=256, hop_length=80, n_mels=40),                                    # keyword-spotting settings
    dict(n_fft=512, hop_length=128, win_length=400, n_mels=64, fmin=20.0, fmax=3800.0, pad_mode="reflect"),
    dict(n_fft=256, hop_length=64, n_mels=32, htk=True, norm=None, power=1.0),   # magnitude, HTK mels
    dict(),                                                                       # librosa's defaults
])
def test_melspectrogram_matches_librosa(voice, kwargs):
    ref = librosa.feature.melspectrogram(y=voice, sr=8000, **kwargs)  # [M, T]
    ours = np.asarray(jax.jit(lambda y: audio.melspectrogram(y, sample_rate=8000, **kwargs))(voice))  # [T, M]
    assert ours.shape == ref.T.shape
    assert _rel(ours, ref.T) < 1e-4


def test_filters_stft_db_and_mfcc_match_librosa(voice):
    np.testing.assert_allclose(audio.mel_filterbank(8000, 256, 40), librosa.filters.mel(sr=8000, n_fft=256,
                                                                                       n_mels=40).T, atol=1e-6)
    ref = librosa.stft(voice, n_fft=256, hop_length=80)
    ours = np.asarray(audio.stft(voice, n_fft=256, hop_length=80))
    assert _rel(ours, ref.T) < 1e-4
    mel = librosa.feature.melspectrogram(y=voice, sr=8000, n_fft=256, hop_length=80, n_mels=40)
    db = np.asarray(audio.log_mel_spectrogram(voice, sample_rate=8000, n_fft=256, hop_length=80, n_mels=40))
    np.testing.assert_allclose(db, librosa.power_to_db(mel).T, atol=1e-3)  # dB: 1e-3 dB is 2e-4 relative power
    ref = librosa.feature.mfcc(y=voice, sr=8000, n_mfcc=13, n_fft=256, hop_length=80, n_mels=40)
    ours = np.asarray(audio.mfcc(voice, sample_rate=8000, n_mfcc=13, n_fft=256, hop_length=80, n_mels=40))
    assert _rel(ours, ref.T) < 1e-4


def test_whisper_features_match_the_hugging_face_extractor(voice):
    transformers = pytest.importorskip("transformers")
    y16 = librosa.resample(voice, orig_sr=8000, target_sr=16000).astype(np.float32)
    for n_mels in (80, 128):
        extractor = transformers.WhisperFeatureExtractor(feature_size=n_mels)
        ref = extractor([y16, y16[:5000]], sampling_rate=16000, return_tensors="np")["input_features"]  # [2, M, 3000]
        batch = np.zeros((2, 480000), np.float32)
        batch[0, :len(y16)], batch[1, :5000] = y16, y16[:5000]
        ours = np.asarray(jax.jit(lambda w, n_mels=n_mels: audio.whisper_log_mel(w, n_mels=n_mels))(batch))
        chex.assert_shape(ours, (2, 3000, n_mels))
        np.testing.assert_allclose(ours, ref.transpose(0, 2, 1), atol=1e-4)


def test_padded_batch_with_lengths_equals_each_example_alone(voice):
    lengths = np.array([3472, 3000, 1201])
    batch = np.zeros((3, 3472), np.float32)
    for i, n in enumerate(lengths):
        batch[i, :n] = voice[:n]
    for pad_mode in ("constant", "reflect"):
        kw = dict(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40, pad_mode=pad_mode)
        out = np.asarray(jax.jit(lambda w, n: audio.log_mel_spectrogram(w, lengths=n, **kw))(batch, lengths))
        for i, n in enumerate(lengths):
            alone = librosa.power_to_db(librosa.feature.melspectrogram(
                y=voice[:n], sr=8000, n_fft=256, hop_length=80, n_mels=40, pad_mode=pad_mode)).T
            frames = int(audio.num_frames(n, 256, 80))
            assert alone.shape[0] == frames
            np.testing.assert_allclose(out[i, :frames], alone, atol=2e-3)
            assert np.all(out[i, frames:] == 0)  # past the example's end


def test_front_end_errors_are_clear():
    with pytest.raises(ValueError, match=r"stft takes float waveforms \[..., N\]; got int32"):
        audio.stft(jnp.zeros((2, 100), jnp.int32))
    with pytest.raises(ValueError, match=r"lengths must be ints of shape \(2,\)"):
        audio.stft(jnp.zeros((2, 1000)), n_fft=256, lengths=jnp.array([3, 4, 5]))
    with pytest.raises(ValueError, match="fewer than one frame"):
        audio.stft(jnp.zeros((2, 100)), n_fft=256, center=False)
    with pytest.raises(ValueError, match="fmax <= sample_rate / 2"):
        audio.mel_filterbank(8000, 256, 40, fmax=6000.0)


def test_augmentation_is_deterministic_in_seed_and_step(voice):
    feats = jnp.ones((4, 50, 40))
    key = audio.augment_key(3, 17)
    a = audio.spec_augment(key, feats, time_masks=2, time_width=10, freq_masks=2, freq_width=8,
                           frame_lengths=jnp.array([50, 40, 30, 20]))
    chex.assert_trees_all_equal(a, audio.spec_augment(audio.augment_key(3, 17), feats, time_masks=2, time_width=10,
                                                      freq_masks=2, freq_width=8,
                                                      frame_lengths=jnp.array([50, 40, 30, 20])))
    assert not np.array_equal(a, audio.spec_augment(audio.augment_key(3, 18), feats,
                                                    frame_lengths=jnp.array([50, 40, 30, 20])))
    masked = np.asarray(a == 0)
    assert masked.any() and not masked.all()
    # a time mask covers whole frames, a frequency mask whole bins; at most 2 x 10 frames, 2 x 8 bins
    time_cols = masked.all(-1).sum(-1)
    assert np.all(time_cols <= 20)
    assert np.all(masked.all(-2).sum(-1) <= 16)
    # masks stay inside each example's own frames: example 3 has 20
    assert not masked[3, 20:].all(-1).any()

    wave = jnp.asarray(np.stack([voice, voice]))
    noisy = audio.add_noise(jax.random.key(0), wave, jnp.array([10.0, 0.0]))
    noise = np.asarray(noisy - wave)
    snr = 10 * np.log10(np.mean(voice ** 2) / np.mean(noise ** 2, -1))
    np.testing.assert_allclose(snr, [10.0, 0.0], atol=0.2)  # measured SNR of 3,472 samples
    chex.assert_trees_all_equal(noisy, audio.add_noise(jax.random.key(0), wave, jnp.array([10.0, 0.0])))

    shifted = np.asarray(audio.time_shift(jax.random.key(1), wave, 400))
    for row in shifted:
        lag = next(s for s in range(-400, 401) if np.allclose(np.roll(voice, s)[400:-400], row[400:-400]))
        expected = np.roll(voice, lag)
        if lag > 0:
            expected[:lag] = 0
        elif lag < 0:
            expected[lag:] = 0
        np.testing.assert_array_equal(row, expected)
