"""The example scripts run as a user would run them."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.parametrize("script", ["train_seed_cnn.py", "train_seed_lstm.py", "tune_seed_lstm.py", "deidentify.py"])
def test_example_help(script):
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "--steps" in result.stdout and "--workdir" in result.stdout


def test_cnn_example_trains_and_checkpoints(tmp_path):
    result = run("train_seed_cnn.py", "--steps", "30", "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.5  # 30 steps already beat chance (0.1) by far
    assert os.path.isdir(tmp_path / "checkpoints" / "30")


def test_lstm_example_runs_the_full_loop(tmp_path):
    result = run("train_seed_lstm.py", "--steps", "20", "--checkpoint-every", "10", "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "20"]
