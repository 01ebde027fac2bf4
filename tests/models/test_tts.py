"""Speech synthesis: the label-to-mel model, its task's loss, onset-aligned targets and the Griffin-Lim vocoder."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.data import audio
from zoo.tasks import get_task


def test_param_counts():
    # embed (V x C) + project (C -> T0 * C) + per block two conv5 (5 C C + C) + head (C -> M)
    c, t0, blocks, v, m = 128, 13, 3, 16, 40
    assert zoo.param_count("tts_fsdd") == v * c + (c * t0 * c + t0 * c) + blocks * 2 * (5 * c * c + c) + c * m + m


def test_loss_is_l1_plus_l2_and_eval_sums_add_up():
    task = get_task("speech_synthesis")
    rng = np.random.default_rng(0)
    out, target = rng.random((4, 16, 8), np.float32), rng.random((4, 16, 8), np.float32)
    batch = {"mels": jnp.asarray(target)}
    err = out - target
    np.testing.assert_allclose(task.loss(jnp.asarray(out), batch), np.abs(err).mean() + (err ** 2).mean(), rtol=1e-6)
    mask = jnp.array([1.0, 1.0, 1.0, 0.0])
    metrics = task.metrics({k: float(v) for k, v in task.eval_sums(jnp.asarray(out), batch, mask).items()})
    np.testing.assert_allclose(metrics["l1"], np.abs(err[:3]).mean(), rtol=1e-6)


def test_bad_configs():
    with pytest.raises(ValueError, match="vocab_size must be num_words \\+ num_voices = 16, got 12"):
        zoo.create_model("tts_fsdd", vocab_size=12)


@pytest.mark.skipif(not __import__("os").path.isdir(audio.default_directory()) and not __import__("os").environ.get("CI"), reason="FSDD is not present")
def test_targets_and_vocoder_on_real_recordings():
    pytest.importorskip("librosa")
    rec = audio.load_recordings(limit_per_class=1)
    waves = [w for w, s in zip(rec.waves, rec.speakers) if s == "jackson"][:3]
    frames = audio.synthesis_targets(waves, 101, 40)
    assert frames.shape == (3, 101, 40) and frames.min() >= 0 and np.allclose(frames.max((1, 2)), 1.0)
    # onset alignment: every target starts within 2 frames of its loud part
    assert all(np.argmax(f.max(-1) > 1 - 30 / 80) <= 2 for f in frames)
    wave = audio.mel_to_wave(frames[0], n_iter=32)
    assert wave.shape == (8000,) and np.isfinite(wave).all() and np.isclose(np.abs(wave).max(), 0.9)
    again = audio.synthesis_targets([wave], 101, 40)[0]
    loud = frames[0] > 0.4  # the spoken part; Griffin-Lim reproduces its mel envelope
    assert np.corrcoef(again[loud], frames[0][loud])[0, 1] > 0.9
