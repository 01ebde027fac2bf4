"""One trained seed CNN shared by the post-training technique tests (pruning, quantization, explanations, CLI)."""

import pytest

from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate

CNN_RUN = TrainConfig(model="seed_cnn", steps=150, batch_size=32, checkpoint_every=150, log_every=50,
                      optimizer=OptimizerConfig(learning_rate=2e-3))


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory):
    """``(workdir, summary)`` of a seed CNN trained 150 steps on the digits (~0.98 test accuracy)."""
    workdir = str(tmp_path_factory.mktemp("cnn_run"))
    summary = train_and_evaluate(CNN_RUN, workdir, progress=False)
    assert summary["test_accuracy"] > 0.95, summary
    return workdir, summary


@pytest.fixture(scope="session")
def cnn_trained(cnn_run):
    """The shared run loaded with its test split (``zoo.techniques.common.TrainedRun``)."""
    from zoo.techniques.common import load_trained

    return load_trained(cnn_run[0])
