"""Exact resume: N steps + restart + N steps == 2N steps, and checkpoint hygiene."""

import json
import os

import chex
import pytest

from zoo.train import CheckpointError, OptimizerConfig, TrainConfig, load_run, train_and_evaluate
from zoo.train.metrics import read_metrics

# mlp has dropout, so the RNG stream is part of what must be restored; a cosine
# schedule makes the optimizer's step count matter too.
CONFIG = dict(model="mlp", batch_size=32, checkpoint_every=10, log_every=5, keep_checkpoints=2,
              optimizer=OptimizerConfig(name="adamw", learning_rate=3e-3, schedule="cosine", warmup_steps=5,
                                        weight_decay=1e-4, clip_norm=1.0))
# a constant schedule does not depend on the total step count, so runs can be extended
CONSTANT_LR = {**CONFIG, "optimizer": OptimizerConfig()}


@pytest.fixture(scope="module")
def straight_and_resumed(tmp_path_factory):
    straight = str(tmp_path_factory.mktemp("straight"))
    resumed = str(tmp_path_factory.mktemp("resumed"))
    full = train_and_evaluate(TrainConfig(steps=40, **CONFIG), straight, progress=False)
    # the first half: the same 40-step run interrupted after its step-20 checkpoint
    half = train_and_evaluate(TrainConfig(steps=40, **CONFIG), resumed, progress=False, stop_after=20)
    rest = train_and_evaluate(TrainConfig(steps=40, **CONFIG), resumed, progress=False)
    return straight, resumed, full, half, rest


def test_resumed_run_equals_uninterrupted_run_exactly(straight_and_resumed):
    straight, resumed, full, half, rest = straight_and_resumed
    assert half["steps"] == 20 and rest["resumed_from"] == 20 and rest["new_steps"] == 20
    _, state_a, _ = load_run(straight)
    _, state_b, _ = load_run(resumed)
    assert int(state_a.step) == int(state_b.step) == 40
    chex.assert_trees_all_equal(state_a.params, state_b.params)
    chex.assert_trees_all_equal(state_a.opt_state, state_b.opt_state)
    chex.assert_trees_all_equal(state_a.rng, state_b.rng)
    assert full["test_accuracy"] == rest["test_accuracy"]


def test_metrics_file_describes_one_continuous_run(straight_and_resumed):
    straight, resumed, *_ = straight_and_resumed
    a = [r["step"] for r in read_metrics(os.path.join(straight, "metrics.jsonl"))]
    b = [r["step"] for r in read_metrics(os.path.join(resumed, "metrics.jsonl"))]
    assert a == b == list(range(5, 41, 5))
    loss_a = [r["train_loss"] for r in read_metrics(os.path.join(straight, "metrics.jsonl"))]
    loss_b = [r["train_loss"] for r in read_metrics(os.path.join(resumed, "metrics.jsonl"))]
    assert loss_a == loss_b


def test_keeps_the_newest_checkpoints_plus_the_best(straight_and_resumed):
    straight, *_ = straight_and_resumed
    steps = sorted(int(d) for d in os.listdir(os.path.join(straight, "checkpoints")) if d.isdigit())
    accs = {r["step"]: r["test_accuracy"] for r in read_metrics(os.path.join(straight, "metrics.jsonl"))
            if "test_accuracy" in r}
    assert sorted(accs) == [10, 20, 30, 40]
    best = max(accs, key=lambda s: (accs[s], s))
    assert set(steps) == {30, 40} | {best}


def test_rerunning_a_finished_run_trains_nothing(straight_and_resumed, capsys):
    straight, _, full, *_ = straight_and_resumed
    again = train_and_evaluate(TrainConfig(steps=40, **CONFIG), straight, progress=False)
    assert again["new_steps"] == 0 and again["steps"] == 40
    assert again["test_accuracy"] == full["test_accuracy"]
    assert again["train_loss"] == full["train_loss"] is not None


def test_workdir_of_another_model_is_rejected(straight_and_resumed):
    straight, *_ = straight_and_resumed
    with pytest.raises(CheckpointError, match="holds a checkpoint of model 'mlp', not 'seed_lstm'"):
        train_and_evaluate(TrainConfig(steps=50, model="seed_lstm", checkpoint_every=10), straight, progress=False)


def test_changed_model_config_or_batch_size_is_rejected(straight_and_resumed):
    straight, *_ = straight_and_resumed
    with pytest.raises(CheckpointError, match="checkpoint with config"):
        train_and_evaluate(TrainConfig(steps=50, **{**CONFIG, "model_overrides": {"hidden_sizes": (64,)}}), straight,
                           progress=False)
    with pytest.raises(ValueError, match="data order used batch_size=32, this run uses batch_size=16"):
        train_and_evaluate(TrainConfig(steps=40, **{**CONFIG, "batch_size": 16}), straight, progress=False)
    with pytest.raises(CheckpointError, match=r"other optimizer settings \(horizon: 40 -> 50\).*cosine"):
        train_and_evaluate(TrainConfig(steps=50, **CONFIG), straight, progress=False)


def test_corrupt_checkpoint_metadata_is_a_clear_error(tmp_path):
    train_and_evaluate(TrainConfig(steps=10, **CONSTANT_LR), str(tmp_path), progress=False)
    meta_dir = tmp_path / "checkpoints" / "10" / "meta"
    for f in meta_dir.iterdir():
        if f.is_file():
            f.write_text("{not json")
    with pytest.raises(CheckpointError, match="no readable zoo metadata"):
        train_and_evaluate(TrainConfig(steps=20, **CONSTANT_LR), str(tmp_path), progress=False)


def test_checkpoint_with_mismatched_arrays_is_a_clear_error(tmp_path):
    """Metadata that claims the right model over arrays of another shape must not load silently."""
    train_and_evaluate(TrainConfig(steps=10, **{**CONSTANT_LR, "model_overrides": {"hidden_sizes": (32,)}}),
                       str(tmp_path), progress=False)
    meta_dir = tmp_path / "checkpoints" / "10" / "meta"
    meta_file = next(f for f in meta_dir.iterdir() if f.is_file())
    meta = json.loads(meta_file.read_text())
    meta["model_config"]["hidden_sizes"] = [256, 128]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="cannot restore checkpoint step 10"):
        train_and_evaluate(TrainConfig(steps=20, **CONSTANT_LR), str(tmp_path), progress=False)


def test_a_checkpoint_of_an_older_zoo_is_refused_in_one_line(tmp_path):
    """Checkpoints of format 1 (batches {"x", "y"}, older config spellings) neither resume nor mix."""
    train_and_evaluate(TrainConfig(steps=10, **CONSTANT_LR), str(tmp_path), progress=False)
    meta_file = next(f for f in (tmp_path / "checkpoints" / "10" / "meta").iterdir() if f.is_file())
    meta = json.loads(meta_file.read_text())
    assert meta["format_version"] == 2 and meta["task"] == "classification"
    meta["format_version"] = 1
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"written by an older zoo \(checkpoint format 1, this zoo writes 2\); "
                                              r"retrain in a new --workdir") as info:
        train_and_evaluate(TrainConfig(steps=20, **CONSTANT_LR), str(tmp_path), progress=False)
    assert "\n" not in str(info.value)
