"""Hyperparameter search: an interrupted study resumes its trial's run, the search space's checks, the direction."""

import dataclasses
import json
import math
import os
import shlex

import optuna
import pytest

from zoo.techniques import tune as tune_module
from zoo.techniques.tune import apply_params, parse_space, search_target, train_command, tune
from zoo.train import TrainConfig

BASE = TrainConfig(model="mlp", data="digits", steps=20, batch_size=64, checkpoint_every=10, log_every=10,
                   async_checkpointing=False)
SPACE = {"learning_rate": {"type": "float", "low": 3e-3, "high": 3e-2, "log": True},
         "schedule": {"type": "categorical", "choices": ["constant", "cosine"]}}


class Killed(BaseException):
    """Stands in for kill -9: no handler runs, so optuna leaves the trial RUNNING in the study."""


@pytest.fixture(scope="module")
def interrupted_then_resumed(tmp_path_factory):
    """A two-trial mlp study whose first trial dies at step 10 of 20, then the same search run again."""
    workdir = str(tmp_path_factory.mktemp("tune"))
    space = parse_space(SPACE, BASE)
    real = tune_module.train_and_evaluate
    calls = []

    def killed_at_step_10(config, run_dir, **kwargs):
        real(config, run_dir, stop_after=10, **kwargs)
        raise Killed

    def recorded(config, run_dir, **kwargs):
        result = real(config, run_dir, **kwargs)
        calls.append((run_dir, result))
        return result

    lines = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tune_module, "train_and_evaluate", killed_at_step_10)
        with pytest.raises(Killed):
            tune(BASE, space, 2, workdir, random_trials=1, final=False, progress=lines.append)
        storage = f"sqlite:///{os.path.join(workdir, 'study.db')}"
        killed = optuna.load_study(study_name="zoo", storage=storage).trials
        mp.setattr(tune_module, "train_and_evaluate", recorded)
        summary = tune(BASE, space, 2, workdir, random_trials=1, final=False, progress=lines.append)
        searched = list(calls)
        again = tune(BASE, space, 2, workdir, random_trials=1, final=True, progress=lines.append)
    return {"workdir": workdir, "killed": killed, "summary": summary, "searched": searched, "again": again,
            "final_calls": calls[len(searched):], "lines": lines}


def test_interrupted_trial_resumes_in_its_workdir(interrupted_then_resumed):
    r = interrupted_then_resumed
    assert [t.state for t in r["killed"]] == [optuna.trial.TrialState.RUNNING]
    killed_dir = r["killed"][0].user_attrs["workdir"]
    rows = r["summary"]["trials"]
    assert rows[0]["state"] == "FAIL" and "retry_of" not in rows[0]
    retry = rows[1]
    assert retry["retry_of"] == 0 and retry["params"] == rows[0]["params"] and retry["workdir"] == killed_dir
    # the retry continued the killed run from its step-10 checkpoint, it did not start over
    first_run_dir, first_result = r["searched"][0]
    assert first_run_dir == killed_dir and first_result["resumed_from"] == 10 and first_result["steps"] == 20
    counted = [t for t in rows if t["state"] in ("COMPLETE", "PRUNED")]
    assert len(counted) == 2 and len(rows) == 3
    assert any("interrupted" in line for line in r["lines"])
    complete = [t for t in rows if t["state"] == "COMPLETE"]
    assert all(t["value"] > 0.5 for t in complete), complete  # 20 steps of the mlp learn the digits


def test_finished_study_runs_only_the_final_training(interrupted_then_resumed):
    r = interrupted_then_resumed
    again = r["again"]
    assert [t["number"] for t in again["trials"]] == [t["number"] for t in r["summary"]["trials"]]
    best = again["best"]
    assert [run_dir for run_dir, _ in r["final_calls"]] == [os.path.join(r["workdir"], "best")]
    assert best["test"]["test_accuracy"] > 0.5
    with open(os.path.join(r["workdir"], "summary.json")) as f:
        assert json.load(f)["best"]["command"] == best["command"]
    assert os.path.getsize(again["figures"]["history"]) > 0


def test_best_command_is_the_best_trials_configuration(interrupted_then_resumed):
    from zoo.cli import _train_config, build_parser

    best = interrupted_then_resumed["again"]["best"]
    words = shlex.split(best["command"])
    args = build_parser().parse_args(words[1:])
    assert args.workdir == os.path.join(interrupted_then_resumed["workdir"], "best")
    parsed = _train_config(args)
    expected = apply_params(BASE, best["params"])
    assert parsed == dataclasses.replace(expected, async_checkpointing=True)  # the CLI's default; no flag


def test_command_refuses_settings_zoo_train_cannot_set():
    config = dataclasses.replace(BASE, optimizer=dataclasses.replace(BASE.optimizer, min_lr_ratio=0.1))
    with pytest.raises(ValueError, match="no flag for the optimizer setting.*min_lr_ratio"):
        train_command(config, "w")


@pytest.mark.parametrize("table, message", [
    ({"learnig_rate": {"type": "float", "low": 1e-4, "high": 1e-2}}, "'learnig_rate' is not a setting"),
    ({"learning_rate": {"type": "float", "low": 1e-2, "high": 1e-4}}, "learning_rate: low must be < high"),
    ({"learning_rate": {"type": "float", "low": 0.0, "high": 1e-2, "log": True}}, "log range needs low > 0"),
    ({"learning_rate": {"type": "uniform", "low": 1e-4, "high": 1e-2}}, "type must be one of"),
    ({"learning_rate": {"type": "float", "low": "1e-4", "high": 1e-2}}, "low must be a number"),
    ({"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "lg": True}}, "unknown key.*lg"),
    ({"learning_rate": 1e-3}, "learning_rate: expected a table"),
    ({"schedule": {"type": "categorical", "choices": ["constant", "cosin"]}}, "schedule: 'cosin' is refused"),
    ({"schedule": {"type": "float", "low": 0.0, "high": 1.0}}, "schedule: type 'float' does not fit"),
    ({"batch_size": {"type": "categorical", "choices": [32, "64"]}}, "batch_size: choice '64' is a str"),
    ({"batch_size": {"type": "int", "low": 0, "high": 64}}, "batch_size: 0 is refused: batch_size must be"),
    ({"augment": {"type": "categorical", "choices": ["none", "shift:x"]}}, "augment: 'shift:x' is refused"),
    ({"model": {"hiden_sizes": {"type": "categorical", "choices": [[64]]}}}, r"\[model\] 'hiden_sizes' is not"),
    ({}, "no settings to search"),
])
def test_search_space_errors_name_the_key(table, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_space(table, BASE, source="space.toml")
    assert str(info.value).startswith("space.toml") and "\n" not in str(info.value)


def test_search_space_file_is_read_and_checked(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('learning_rate = {type = "float", low = 1e-4, high = 1e-2, log = true}\n'
                    'schedule = {type = "categorical", choices = ["constant", "cosine"]}\n'
                    '[model]\nhidden_sizes = {type = "categorical", choices = [[64], [128, 64]]}\n')
    space = tune_module.load_space(str(path), BASE)
    assert [p.name for p in space.params] == ["learning_rate", "schedule", "model.hidden_sizes"]
    config = apply_params(BASE, {"learning_rate": 1e-3, "schedule": "cosine", "model.hidden_sizes": [64]})
    assert config.optimizer.learning_rate == 1e-3 and config.optimizer.schedule == "cosine"
    assert config.model_overrides == {"hidden_sizes": [64]}
    path.write_text("learning_rate = {type = ")
    with pytest.raises(ValueError, match="is not valid TOML"):
        tune_module.load_space(str(path), BASE)


def test_lower_is_better_metric_is_minimised(tmp_path):
    """A forecaster's trials are scored by validation MASE, lowest best; the sampler gets the direction."""
    base = TrainConfig(model="nbeats_tiny", data="series:co2", steps=4, batch_size=8)
    assert search_target(base) == ("val_mase", "minimize")
    assert search_target(BASE) == ("val_accuracy", "maximize")
    space = parse_space({"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}, base)

    def fake_run(config, run_dir, **kwargs):  # MASE smallest at lr = 1e-2: the search must find the low values
        assert config.holdout == 0.1
        return {"val_mase": (math.log10(config.optimizer.learning_rate) + 2) ** 2 + 1.0}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tune_module, "train_and_evaluate", fake_run)
        summary = tune(base, space, 8, str(tmp_path), random_trials=3, final=False, progress=lambda line: None)
    values = [t["value"] for t in summary["trials"]]
    assert summary["direction"] == "minimize" and summary["best"]["val_mase"] == min(values)
    assert summary["best"]["val_mase"] < 1.2, values  # within ~0.45 decades of 1e-2


def test_held_out_examples_are_fixed_disjoint_and_replace_the_test_set():
    import numpy as np

    import zoo
    from zoo.data import load_dataset

    data = load_dataset("digits", zoo.registry.get_config("mlp"))
    held = data.hold_out(0.2)
    assert (held.num_train, held.num_test) == (1150, 287)  # round(0.2 * 1437) held out
    rows = {row.tobytes() for row in np.asarray(data.train["inputs"])}
    train_rows = {row.tobytes() for row in np.asarray(held.train["inputs"])}
    val_rows = {row.tobytes() for row in np.asarray(held.test["inputs"])}
    assert val_rows <= rows and not (val_rows & train_rows)  # from the training set, never trained on
    assert not val_rows & {row.tobytes() for row in np.asarray(data.test["inputs"])}
    np.testing.assert_array_equal(data.hold_out(0.2).test["label"], held.test["label"])
    with pytest.raises(ValueError, match="leaves 0 to evaluate"):
        data.hold_out(0.0001)


def test_list_valued_choices_reach_the_run_and_the_command(tmp_path):
    """optuna stores only scalars: a [model] choice such as hidden_sizes = [64] travels as JSON and comes back."""
    space = parse_space({"model": {"hidden_sizes": {"type": "categorical", "choices": [[32], [64, 32]]}}}, BASE)
    seen = []

    def fake_run(config, run_dir, **kwargs):
        seen.append(config.model_overrides["hidden_sizes"])
        return {"val_accuracy": 0.5 + 0.1 * len(config.model_overrides["hidden_sizes"])}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tune_module, "train_and_evaluate", fake_run)
        summary = tune(BASE, space, 3, str(tmp_path), random_trials=3, final=False, progress=lambda line: None)
    assert sorted(map(json.dumps, seen)) == sorted(json.dumps(t["params"]["model.hidden_sizes"])
                                                  for t in summary["trials"])
    assert [64, 32] in seen and [32] in seen  # the sampler's seed-0 draws take both
    assert summary["best"]["params"] == {"model.hidden_sizes": [64, 32]}
    assert "--set 'hidden_sizes=[64, 32]'" in summary["best"]["command"]
