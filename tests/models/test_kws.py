"""Keyword-spotting CNN: parameter counts, on-device front end, deterministic augmentation, learning on FSDD."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo.data import audio as fsdd
from zoo.layers import audio
from zoo.models.kws.model import log_mel_features
from zoo.train import create_train_state, train_step


def test_param_counts():
    # conv 3x3: 9 * in * out + out; dense: flattened [T', M', F] -> H; head: H * 10 + 10.
    # kws_cnn: 101 frames x 40 mels -> 3 pools -> 12 x 5 x 64;  kws_tiny: 26 x 16 -> 2 pools -> 6 x 4 x 8
    convs = (9 * 1 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 32 * 64 + 64)
    assert zoo.param_count("kws_cnn") == convs + (12 * 5 * 64 * 64 + 64) + 64 * 10 + 10 == 269_770
    assert zoo.param_count("kws_tiny") == (9 * 1 * 4 + 4) + (9 * 4 * 8 + 8) + (6 * 4 * 8 * 8 + 8) + 8 * 10 + 10


def test_features_are_the_front_end_standardised():
    config = zoo.get_config("kws_tiny")
    wave = jax.random.normal(jax.random.key(0), (2, 2000)) * 0.1
    feats = log_mel_features(config, wave)
    db = audio.log_mel_spectrogram(wave, sample_rate=8000, n_fft=256, hop_length=80, n_mels=16)
    chex.assert_shape(feats, (2, 26, 16))
    np.testing.assert_allclose(feats, (db - db.mean((1, 2), keepdims=True)) / (db.std((1, 2), keepdims=True) + 1e-5),
                               atol=1e-5)


def test_augmentation_follows_the_dropout_key_and_is_off_in_eval():
    model = zoo.create_model("kws_tiny", dropout_rate=0.0)
    variables = zoo.init_variables(model, jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, 2000)) * 0.1
    run = jax.jit(lambda key: model.apply(variables, x, train=True, rngs={"dropout": key}))
    chex.assert_trees_all_equal(run(jax.random.key(5)), run(jax.random.key(5)))
    assert not np.allclose(run(jax.random.key(5)), run(jax.random.key(6)))
    plain = zoo.create_model("kws_tiny", dropout_rate=0.0, max_shift=0, noise_snr_db=None, time_masks=0,
                             freq_masks=0)
    chex.assert_trees_all_close(plain.apply(variables, x, train=True, rngs={"dropout": jax.random.key(5)}),
                                model.apply(variables, x, train=False), atol=1e-6)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match=r"KWSConfig.input_shape must be \(N,\) waveform samples"):
        zoo.create_model("kws_tiny", input_shape=(20, 20))
    with pytest.raises(ValueError, match="too small for 3 2x2 pools"):
        zoo.create_model("kws_cnn", n_mels=4)
    with pytest.raises(ValueError, match="KWSConfig.max_shift must be an int >= 0, got -1"):
        zoo.create_model("kws_tiny", max_shift=-1)


@pytest.mark.skipif(not os.path.isdir(fsdd.default_directory()) and not os.environ.get("CI"), reason="FSDD is not in ../shared/data/fsdd")
def test_learns_spoken_digits_from_real_recordings():
    """80 steps on 600 real recordings (2 digits' worth of speakers each): accuracy clearly above chance."""
    rec = fsdd.load_recordings(limit_per_class=10)
    x = fsdd.clips(rec.waves, 4000)
    keep = rec.digits < 3  # 3 classes: zero, one, two
    x, y, idx = x[keep], rec.digits[keep], rec.indices[keep]
    train, test = idx >= 3, idx < 3
    model = zoo.create_model("kws_tiny", input_shape=(4000,), features=(8, 16), mlp_dim=16, num_classes=3)
    state = create_train_state(model, optax.adam(1e-2), seed=0)
    step = jax.jit(train_step)
    rng = np.random.default_rng(0)
    xt, yt = x[train], y[train]
    for _ in range(80):
        b = rng.choice(len(xt), 32, replace=False)
        state, _ = step(state, {"inputs": xt[b], "label": yt[b]})
    logits = model.apply({"params": state.params}, jnp.asarray(x[test]), train=False)
    accuracy = float(np.mean(np.argmax(logits, -1) == y[test]))
    assert accuracy > 0.6, accuracy  # chance is 1/3
