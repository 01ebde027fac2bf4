"""N-BEATS, PatchTST, the LSTM seq2seq forecaster, the autoencoder, the VAE and Deep SVDD: parameter counts,
bad configs, a short training run per application that learns, and `zoo train` with exact resume."""

import json

import jax
import numpy as np
import optax
import pytest

import zoo
from zoo.cli import main
from zoo.data import load_dataset
from zoo.train import create_train_state, evaluate, eval_step, train_step
from zoo.data import BatchSchedule, train_batch


def _train(model, data, steps, lr=3e-3):
    state = create_train_state(model, optax.adam(lr), seed=0)
    before = evaluate(jax.jit(eval_step), state, data.test, 64)
    schedule, step = BatchSchedule(data.num_train, 32, 0), jax.jit(train_step)
    losses = []
    for s in range(steps):
        state, metrics = step(state, train_batch(data, schedule, s))
        losses.append(float(metrics["loss"]))
    after = evaluate(jax.jit(eval_step), state, data.test, 64)
    return before, {**after, "first_train_loss": np.mean(losses[:10]), "last_train_loss": np.mean(losses[-10:])}


def test_nbeats_parameter_count():
    # per block: U (L + 1) + (layers - 1) U (U + 1) + (U + 1)(L + H); the last block has no backcast
    length, horizon, units = 16, 4, 16
    block = units * (length + 1) + units * (units + 1) + (units + 1) * (length + horizon)
    assert zoo.param_count("nbeats_tiny") == 2 * block - (units + 1) * length


@pytest.mark.parametrize("name", ["nbeats_tiny", "patchtst_tiny", "lstm_seq2seq_tiny"])
def test_forecasters_learn_ausbeer(name):
    model = zoo.create_model(name)
    before, after = _train(model, load_dataset("series:ausbeer", model.config), 150)
    assert after["mase"] < 0.8 * before["mase"], (before, after)
    assert np.isfinite(after["smape"])


@pytest.mark.parametrize("name", ["autoencoder_tiny", "vae_tiny", "deep_svdd_tiny"])
def test_anomaly_scorers_learn_breast_cancer(name):
    model = zoo.create_model(name, input_shape=(30,))
    before, after = _train(model, load_dataset("breast_cancer", model.config), 150)
    # (the test loss includes the anomalies, whose loss should grow: the training loss on normal data falls)
    assert after["last_train_loss"] < 0.7 * after["first_train_loss"] and after["auroc"] > 0.85, (before, after)


@pytest.mark.parametrize("name, overrides, message", [
    ("nbeats", {"input_shape": (48, 2)}, r"input_shape must be \(L, 1\)"),
    ("nbeats", {"horizon": 0}, "horizon must be positive"),
    ("patchtst", {"patch_len": 7}, "must be patch_len .* plus a multiple of stride"),
    ("patchtst", {"num_heads": 3}, "divisible by num_heads"),
    ("lstm_seq2seq", {"decoder_sizes": ()}, "decoder_sizes must be positive"),
    ("autoencoder", {"task": "classification"}, "serves task 'anomaly_reconstruction' or 'anomaly_vae'"),
    ("deep_svdd", {"hidden_sizes": (8,)}, "at least two layers"),
])
def test_bad_configs_are_refused(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **overrides)


def _summary(capfd):
    return json.loads([line for line in capfd.readouterr()[0].splitlines() if line.startswith("{")][-1])


def test_zoo_train_forecaster_reports_mase_and_resumes_exactly(capfd, tmp_path):
    args = ["train", "nbeats_tiny", "--data", "series:ausbeer", "--batch-size", "32", "--checkpoint-every", "20",
            "--no-progress", "--lr", "3e-3"]
    assert main([*args, "--steps", "40", "--workdir", str(tmp_path / "a")]) == 0
    straight = _summary(capfd)
    assert straight["task"] == "forecasting" and "test_mase" in straight and "test_smape" in straight
    assert main([*args, "--steps", "20", "--workdir", str(tmp_path / "b")]) == 0
    capfd.readouterr()
    assert main([*args, "--steps", "40", "--workdir", str(tmp_path / "b")]) == 0
    resumed = _summary(capfd)
    assert resumed["resumed_from"] == 20 and resumed["test_mase"] == straight["test_mase"]


def test_zoo_train_anomaly_scorer_reports_auroc(capfd, tmp_path):
    assert main(["train", "autoencoder_tiny", "--data", "breast_cancer", "--set", "input_shape=[30]", "--steps",
                 "60", "--batch-size", "32", "--no-progress", "--workdir", str(tmp_path)]) == 0
    summary = _summary(capfd)
    assert summary["task"] == "anomaly_reconstruction" and 0.5 < summary["test_auroc"] <= 1.0
