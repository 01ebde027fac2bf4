"""The `zoo` command line, including the issue's acceptance runs on the real digits."""

import json
import struct
import subprocess
import sys

import pytest

from zoo.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_list_prints_name_params_and_input_shape(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["seed_cnn"][1:3] == ["225,034", "28x28x1"]
    assert lines["seed_lstm"][1:3] == ["204,042", "10x10"]
    assert lines["mlp"][2] == "64"


def test_unknown_model_exits_2_with_one_clear_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "resnet9000", "--workdir", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("zoo: error: unknown model 'resnet9000'")


def test_bad_flag_value_is_a_clear_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "mlp", "--lr", "-1", "--workdir", str(tmp_path))
    assert code == 2 and "learning_rate must be > 0, got -1.0" in err


@pytest.mark.slow
def test_seed_cnn_reaches_98_5_percent_then_resumes_and_continues(capfd, tmp_path):
    """`zoo train seed_cnn --data digits --steps 600 --workdir W`, the issue's acceptance command."""
    workdir = str(tmp_path)
    assert main(["train", "seed_cnn", "--data", "digits", "--steps", "600", "--workdir", workdir]) == 0
    out, err = capfd.readouterr()
    first = last_json(out)
    assert first["steps"] == 600 and first["new_steps"] == 600
    assert first["test_accuracy"] >= 0.985, first
    assert first["train_samples_per_s"] > 0
    assert "it/s" in err or "step/s" in err or "s/step" in err  # the progress bar ran
    for key in ("metrics", "plot", "tensorboard", "checkpoint_dir"):
        assert key in first

    # the same command again: no new steps, the same result
    assert main(["train", "seed_cnn", "--data", "digits", "--steps", "600", "--workdir", workdir]) == 0
    again = last_json(capfd.readouterr()[0])
    assert again["new_steps"] == 0 and again["steps"] == 600
    assert again["test_accuracy"] == first["test_accuracy"]

    # a larger --steps continues from step 600
    assert main(["train", "seed_cnn", "--steps", "640", "--workdir", workdir, "--no-progress"]) == 0
    more = last_json(capfd.readouterr()[0])
    assert more["resumed_from"] == 600 and more["new_steps"] == 40 and more["steps"] == 640


def test_outputs_written_by_a_run(capsys, tmp_path):
    import os

    code, out, _ = run_cli(capsys, "train", "mlp", "--steps", "30", "--batch-size", "64", "--checkpoint-every", "10",
                           "--log-every", "10", "--workdir", str(tmp_path), "--no-progress")
    assert code == 0
    summary = last_json(out)
    with open(summary["metrics"]) as f:
        rows = [json.loads(line) for line in f]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert {"train_loss", "test_accuracy", "learning_rate", "train_samples_per_s"} <= set(rows[-1])
    with open(summary["plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # the events are written without tensorboardX (which imports torch, seconds at every start) ...
    assert "tensorboardX" not in sys.modules
    (events,) = os.listdir(summary["tensorboard"])
    assert events.startswith("events.out.tfevents.")
    # ... and read back by it: TFRecord framing with checksums, the purge marker, one scalar per key and row
    from tensorboardX.crc32c import crc32c
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    def masked(data):
        crc = crc32c(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    with open(os.path.join(summary["tensorboard"], events), "rb") as f:
        data, records = f.read(), []
    while data:
        (length,), (header_crc,) = struct.unpack("<Q", data[:8]), struct.unpack("<I", data[8:12])
        body, (body_crc,) = data[12:12 + length], struct.unpack("<I", data[12 + length:16 + length])
        assert header_crc == masked(data[:8]) and body_crc == masked(body)
        records.append(Event.FromString(body))
        data = data[16 + length:]
    assert records[0].file_version == "brain.Event:2"
    assert records[1].session_log.status == SessionLog.START and records[1].step == 1
    scalars = {(e.step, v.tag): v.simple_value for e in records[2:] for v in e.summary.value}
    assert {step for step, _ in scalars} == {10, 20, 30}
    for row in rows:
        for key in ("train_loss", "test_accuracy", "learning_rate"):
            assert scalars[row["step"], key] == pytest.approx(row[key], rel=1e-6)


def test_console_script_help_runs_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-m", "zoo.cli", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for flag in ("--data", "--steps", "--epochs", "--batch-size", "--lr", "--workdir", "--seed"):
        assert flag in out


def test_epochs_sets_the_step_count(capsys, tmp_path):
    # 1,437 training digits / 128 per batch = 11 full batches per epoch
    code, out, _ = run_cli(capsys, "train", "mlp", "--epochs", "2", "--workdir", str(tmp_path), "--no-progress")
    assert code == 0 and last_json(out)["steps"] == 22
    code, _, err = run_cli(capsys, "train", "mlp", "--epochs", "0", "--workdir", str(tmp_path / "b"))
    assert code == 2 and "epochs must be > 0" in err
