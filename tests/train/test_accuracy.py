"""The seed LSTM learns the bundled digits (the CNN's target is checked through the CLI in test_cli.py)."""

import pytest

from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate


@pytest.mark.slow
def test_seed_lstm_reaches_95_percent_on_digits(tmp_path):
    # the row sequences augmented with 1-pixel shifts (augment="auto"), Adam 5e-3 with cosine decay
    config = TrainConfig(model="seed_lstm", data="digits", steps=600, batch_size=128,
                         optimizer=OptimizerConfig(learning_rate=5e-3, schedule="cosine"), checkpoint_every=600)
    summary = train_and_evaluate(config, str(tmp_path), progress=False)
    assert summary["test_accuracy"] >= 0.95, summary
