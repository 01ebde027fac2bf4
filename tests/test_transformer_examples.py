"""The transformer examples and the CLI path for token models, run as a user would (few steps)."""

import json
import os
import subprocess
import sys

from zoo.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, timeout=300)


def test_finetune_bert_example_learns_and_checkpoints(tmp_path):
    # a smoke run; the full default run (200 steps) reaches 0.71 held-out accuracy (README, Transformers)
    result = run(os.path.join(ROOT, "examples", "finetune_bert.py"), "--steps", "80", "--checkpoint-every", "40",
                 "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    train_loss = float(result.stdout.split("train loss ")[1].split(",")[0])
    accuracy = float(result.stdout.split("held-out accuracy ")[1].split()[0])
    assert train_loss < 0.4, result.stdout  # ln 2 = 0.69 is chance: the training sentences are learnt
    assert 0.5 <= accuracy <= 1.0, result.stdout  # 62 held-out sentences
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["40", "80"]
    assert "P(pos)=" in result.stdout


def test_train_gpt_example_loss_falls_and_samples(tmp_path):
    result = run(os.path.join(ROOT, "examples", "train_gpt.py"), "--steps", "30", "--batch-size", "16", "--context", "64",
                 "--sample-bytes", "30", "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    curve = [float(part.split(": ")[1]) for part in result.stdout.split("train loss (nats/byte): ")[1]
             .splitlines()[0].split(", ")]
    assert curve[0] > curve[-1] + 0.3 and curve[-1] < 3.5, curve  # uniform over bytes is ln 256 = 5.55
    sample = result.stdout.split("sample:\n")[1]
    assert sample.startswith("The import statement ") and len(sample.encode()) >= 40


def test_cli_trains_bert_on_sentiment_and_resumes(tmp_path, capsys):
    args = ["-m", "zoo.cli", "train", "bert_nano", "--data", "sentiment", "--steps", "4", "--batch-size", "16",
            "--checkpoint-every", "2", "--workdir", str(tmp_path), "--no-progress"]
    first = run(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 4 and summary["model"] == "bert_nano" and 0 <= summary["test_accuracy"] <= 1
    assert summary["task"] == "classification" and summary["test_loss"] > 0
    again = run(*args[:7], "6", *args[8:])
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["resumed_from"] == 4
    # (the refusal needs no fresh process: the CLI's main in this one)
    assert main(["train", "seed_cnn", "--data", "sentiment", "--steps", "1", "--workdir", str(tmp_path / "x")]) == 2
    assert "dataset 'sentiment' serves token ids" in capsys.readouterr().err
