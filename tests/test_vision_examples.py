"""Vision examples run as a user runs them; the ResNet loop (BatchNorm + on-device augmentation) resumes exactly."""

import json
import os
import subprocess
import sys

import chex
import pytest
import torch
import transformers

from zoo.train import OptimizerConfig, TrainConfig, load_run, train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), *args], capture_output=True,
                          text=True, env=env, timeout=300)


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


# resnet_tiny on 8x8 digits (fast); BatchNorm statistics, on-device crop + mixup and a cosine schedule must all
# come back from the checkpoint for the resumed run to match
CONFIG = dict(model="resnet_tiny", model_overrides={"input_shape": (8, 8, 1)}, steps=6, batch_size=16,
              checkpoint_every=3, log_every=3, augment="crop:1,mixup:0.4",
              optimizer=OptimizerConfig(name="adamw", learning_rate=3e-3, schedule="cosine", warmup_steps=2))


def test_resnet_training_resumes_exactly_with_batch_stats_and_device_augmentation(tmp_path):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train_and_evaluate(TrainConfig(**CONFIG), straight, progress=False)
    train_and_evaluate(TrainConfig(**CONFIG), resumed, progress=False, stop_after=3)
    rest = train_and_evaluate(TrainConfig(**CONFIG), resumed, progress=False)
    assert rest["resumed_from"] == 3 and rest["new_steps"] == 3
    _, a, _ = load_run(straight)
    _, b, _ = load_run(resumed)
    assert set(a.model_state) == {"batch_stats"}
    chex.assert_trees_all_equal(a.params, b.params)
    chex.assert_trees_all_equal(a.model_state, b.model_state)
    chex.assert_trees_all_equal(a.opt_state, b.opt_state)


@pytest.mark.parametrize("script, extra", [("train_resnet.py", []), ("train_vit.py", [])])
def test_training_examples_run_the_loop(script, extra, tmp_path):
    result = run(script, "--steps", "2", "--batch-size", "16", "--checkpoint-every", "2", "--warmup-steps", "1",
                 "--workdir", str(tmp_path), "--no-progress", *extra)
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["steps"] == 2 and summary["data"] == "digits" and 0 <= summary["test_accuracy"] <= 1
    assert os.path.isdir(tmp_path / "checkpoints" / "2")


def test_finetune_example_replaces_the_head_of_a_local_hf_resnet(tmp_path):
    torch.manual_seed(0)
    config = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                                       num_labels=7)
    transformers.ResNetForImageClassification(config).save_pretrained(tmp_path / "hf")
    result = run("finetune_pretrained.py", "--hf-dir", str(tmp_path / "hf"), "--image-size", "32", "--steps", "3",
                 "--batch-size", "8", "--workdir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "loaded ResNet with 7 classes" in result.stdout
    summary = last_json(result.stdout)
    assert summary["steps"] == 3 and 0 <= summary["test_accuracy"] <= 1
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "3")
