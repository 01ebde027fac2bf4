"""`zoo train t5_tiny` on a (tiny, local) WMT corpus, resume, and `zoo generate` with its errors."""

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zoo.cli import main
from zoo.train.generate import generate_text

EN = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
DE = ["eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("t5cli")
    data = root / "wmt" / "de-en"
    data.mkdir(parents=True)
    rows = [{"de": d, "en": e} for d, e in zip(DE, EN)]
    pq.write_table(pa.table({"translation": rows[:6] * 4}), data / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"translation": rows[6:]}), data / "test-00000-of-00001.parquet")
    workdir = root / "run"
    argv = ["train", "t5_tiny", "--data", f"wmt:{root / 'wmt'},pair=en-de", "--steps", "2", "--batch-size", "8",
            "--checkpoint-every", "2", "--set", "num_layers=1",
            "--set", "input_shape=[16]", "--set", "target_length=8", "--workdir", str(workdir), "--no-progress"]
    return workdir, argv


def test_train_resume_and_generate_from_the_cli(run, capsys):
    workdir, argv = run
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["task"] == "translation" and summary["steps"] == 2 and summary["new_steps"] == 2
    assert {"test_bleu", "test_chrf", "test_exact_match", "test_rouge_l"} <= set(summary)
    assert (workdir / "curves.png").is_file() and (workdir / "metrics.jsonl").is_file()
    assert main(argv) == 0  # resumed: nothing more to train
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["new_steps"] == 0
    assert main(["generate", "--workdir", str(workdir), "--input", "seven", "--input", "eight " * 20]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("seven\t")


@pytest.mark.parametrize("argv, message", [
    (["--num-beams", "0"], "num_beams must be a positive int"),
    (["--max-length", "1"], "max_length must be an int >= 2"),
    (["--long", "refuse", "--input", "eight " * 20], r"source has \d+ tokens, more than the model's 16"),
])
def test_generate_refuses_what_makes_no_sense(run, capsys, argv, message):
    workdir, train_argv = run
    if not (workdir / "checkpoints").is_dir():
        main(train_argv)
    code = main(["generate", "--workdir", str(workdir), "--input", "one", *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("zoo: error: ") and re.search(message, err), err


def test_generate_needs_inputs(run):
    workdir, _ = run
    with pytest.raises(ValueError, match="generate needs at least one input text"):
        generate_text(str(workdir), [])
