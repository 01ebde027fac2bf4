"""The techniques from the command line: DP-SGD, pruning and regularisation flags of `zoo train`,
`zoo explain` and `zoo federated` (`zoo prune` / `zoo quantize` are tested beside their subjects)."""

import json

import pytest

from zoo.cli import main
from zoo.techniques.privacy import compute_epsilon


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_dp_training_reports_epsilon_and_refuses_other_noise_on_resume(capsys, tmp_path):
    """`zoo train MODEL --dp-noise 1.1 --dp-clip 1.0` (the seed CNN's per-example path is tested in test_privacy)."""
    argv = ["train", "mlp", "--data", "digits", "--dp-noise", "1.1", "--dp-clip", "1.0", "--steps", "6",
            "--batch-size", "32", "--checkpoint-every", "6", "--workdir", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    summary = last_json(out)
    expected = compute_epsilon(noise_multiplier=1.1, sampling_rate=32 / 1437, steps=6, delta=1e-5, accountant="pld")
    assert summary["dp_epsilon_pld"] == pytest.approx(expected) and summary["dp_delta"] == 1e-5
    assert 0 < summary["dp_epsilon_pld"] < summary["dp_epsilon_rdp"]
    assert f"(epsilon, delta) = ({expected:.2f}, 1e-05)" in err
    assert main([a if a != "1.1" else "0.5" for a in argv]) == 3  # EXIT_CHECKPOINT
    assert "'noise_multiplier': 1.1" in capsys.readouterr()[1]


def test_pruning_and_regularisation_flags_then_a_refused_resume(capsys, tmp_path):
    argv = ["train", "mlp", "--steps", "30", "--batch-size", "32", "--checkpoint-every", "10", "--log-every", "10",
            "--prune-sparsity", "0.5", "--prune-frequency", "5", "--label-smoothing", "0.1", "--dropout", "0.2",
            "--workdir", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    summary = last_json(capsys.readouterr()[0])
    # end step 2/3 of 30 = 20: every layer at exactly round(0.5 * size) zeros
    assert summary["sparsity_per_layer"] == {"head/kernel": 0.5, "hidden_0/kernel": 0.5, "hidden_1/kernel": 0.5}
    assert summary["test_accuracy"] > 0.5
    # resuming with another target sparsity or label smoothing would not continue the same training
    assert main([a if a != "0.5" else "0.6" for a in argv]) == 3  # EXIT_CHECKPOINT
    assert "'target_sparsity': 0.5" in capsys.readouterr()[1]
    assert main([a if a != "0.1" else "0.2" for a in argv]) == 3
    assert "label_smoothing=0.1" in capsys.readouterr()[1]


def test_early_stopping_stops_and_stays_stopped(capsys, tmp_path):
    # a learning rate too small to change any prediction: no evaluation improves on the first one
    argv = ["train", "mlp", "--steps", "50", "--batch-size", "32", "--checkpoint-every", "10", "--lr", "1e-9",
            "--early-stopping", "2", "--workdir", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    summary = last_json(capsys.readouterr()[0])
    assert summary["early_stopped_at"] == 30 and summary["steps"] == 30
    assert main(argv) == 0  # rerunning does not train past the stop
    again = last_json(capsys.readouterr()[0])
    assert again["steps"] == 30 and again["new_steps"] == 0


def test_explain_writes_the_png(cnn_run, capsys, tmp_path):
    # integrated gradients are tested in test_explain; they are the slow part on a CPU
    argv = ["explain", "seed_cnn", "--workdir", cnn_run[0], "--input", "test:0,1", "--out", str(tmp_path),
            "--methods", "saliency,grad_cam"]
    assert main(argv) == 0
    report = last_json(capsys.readouterr()[0])
    assert report["methods"] == ["saliency", "grad_cam"] and report["ig_completeness_error"] is None
    assert report["predicted"] == report["labels"]  # the trained CNN reads these two right
    with open(report["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_federated_prints_accuracy_per_round(capsys):
    argv = ["federated", "mlp", "--clients", "4", "--rounds", "2", "--alpha", "0.3", "--batch-size", "32"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    report = last_json(out)
    assert [r["round"] for r in report["rounds"]] == [1, 2]
    assert sum(report["client_sizes"]) == 1437 and len(report["client_sizes"]) == 4
    assert report["rounds"][-1]["centralised_accuracy"] > 0.5  # two epochs of SGD on all the data
    assert "round  federated  centralised" in err
