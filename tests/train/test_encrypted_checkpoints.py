"""Encrypted checkpoints at rest: no plaintext on disk, exact resume, tamper fallback, wrong or missing keys."""

import glob
import os
import pathlib
import shutil

import chex
import jax
import numpy as np
import pytest

from zoo.cli import main
from zoo.train import (Checkpointer, CheckpointError, CheckpointKeyError, CheckpointWarning, OptimizerConfig,
                       TrainConfig, load_run, train_and_evaluate)
from zoo.train.encryption import KeyFileError, load_key, write_key_file

CONFIG = dict(model="mlp", model_overrides={"hidden_sizes": (32,)}, steps=20, batch_size=32, checkpoint_every=5,
              log_every=5, keep_checkpoints=4, async_checkpointing=False,
              optimizer=OptimizerConfig(name="adamw", learning_rate=3e-3, schedule="cosine", warmup_steps=5))


def _files(directory) -> dict:
    out = {}
    for dirpath, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, directory)] = pathlib.Path(path).read_bytes()
    return out


def _state(workdir, key_file):
    _, state, _ = load_run(workdir, key_file=key_file)
    return jax.device_get(state.checkpoint_items())


@pytest.fixture(scope="module")
def encrypted_run(tmp_path_factory):
    """A 20-step encrypted run with checkpoints at 5, 10, 15, 20, its key file and its final state."""
    root = tmp_path_factory.mktemp("encrypted")
    key_file = write_key_file(root / "key")
    workdir = str(root / "run")
    summary = train_and_evaluate(TrainConfig(**CONFIG, encrypt_key_file=key_file), workdir, progress=False)
    return workdir, key_file, summary, _state(workdir, key_file)


def _copy(encrypted_run, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(encrypted_run[0], workdir)
    return workdir


def test_checkpoint_files_hold_no_array_names_values_or_metadata(encrypted_run):
    workdir, _, _, final = encrypted_run
    blobs = b"".join(_files(os.path.join(workdir, "checkpoints")).values())
    for plain in (b"hidden_0", b"kernel", b"adamw", b"model_config", b"data_position"):
        assert plain not in blobs, plain
    kernel = np.asarray(final["params"]["hidden_0"]["kernel"])
    assert kernel.tobytes()[:64] not in blobs  # not even a run of 16 float32 weights


def test_tampered_newest_step_falls_back_and_resumes_exactly(encrypted_run, tmp_path):
    """Step 20 tampered and step 15 gone: the run resumes from step 10 and its 10 new steps equal the original's."""
    workdir, key_file, summary, final = encrypted_run
    workdir = _copy(encrypted_run, tmp_path)
    shutil.rmtree(os.path.join(workdir, "checkpoints", "15"))
    ciphertext = max(glob.glob(os.path.join(workdir, "checkpoints", "20", "state", "**", "d", "*"), recursive=True),
                     key=os.path.getsize)
    data = bytearray(pathlib.Path(ciphertext).read_bytes())
    data[len(data) // 2] ^= 0x01
    pathlib.Path(ciphertext).write_bytes(data)
    with pytest.warns(CheckpointWarning) as caught:
        resumed = train_and_evaluate(TrainConfig(**CONFIG, encrypt_key_file=key_file), workdir, progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "checkpoint step 20 in" in messages and "failed decryption" in messages, messages
    assert resumed["resumed_from"] == 10 and resumed["new_steps"] == 10
    assert len(glob.glob(os.path.join(workdir, "checkpoints", "20.corrupt-*"))) == 1  # moved aside, not deleted
    chex.assert_trees_all_equal(_state(workdir, key_file), final)  # 10 + restart + 10 == 20, bit for bit
    assert resumed["test_accuracy"] == summary["test_accuracy"]


def test_wrong_or_missing_key_is_a_clear_error_and_changes_nothing(encrypted_run, tmp_path):
    workdir = _copy(encrypted_run, tmp_path)
    before = _files(workdir)
    other = write_key_file(tmp_path / "other.key")
    with pytest.raises(CheckpointKeyError, match=r"checkpoint step 20 in .* was encrypted with another key"):
        train_and_evaluate(TrainConfig(**CONFIG, encrypt_key_file=other), workdir, progress=False)
    with pytest.raises(CheckpointKeyError, match=r"checkpoint step 20 in .* is encrypted \(AES-256-GCM\); give its key"):
        train_and_evaluate(TrainConfig(**CONFIG), workdir, progress=False)
    with pytest.raises(CheckpointKeyError, match="checkpoint step 15 .* another key"):
        load_run(workdir, step=15, key_file=other)
    assert _files(workdir) == before  # no step skipped, moved or rewritten


def test_a_step_moved_to_another_number_fails_authentication(encrypted_run, tmp_path):
    workdir = _copy(encrypted_run, tmp_path)
    checkpoints = os.path.join(workdir, "checkpoints")
    os.rename(os.path.join(checkpoints, "15"), os.path.join(checkpoints, "25"))  # the step is associated data
    with Checkpointer(checkpoints, key=load_key(encrypted_run[1]), async_save=False) as ckpt:
        with pytest.raises(CheckpointError, match=r"checkpoint step 25 in .* failed decryption \(AES-256-GCM "
                                                  r"authentication of its meta\)"):
            ckpt.read_meta(25)
        assert ckpt.read_meta(20)["model"] == "mlp"


def test_plain_checkpoint_read_with_a_key_is_refused(tmp_path):
    key = bytes(range(32))
    with Checkpointer(tmp_path / "c", best_metric=None, async_save=False) as plain:
        plain.save(1, {"w": np.ones(3, np.float32)}, {"model": "x"})
    with Checkpointer(tmp_path / "c", best_metric=None, async_save=False, key=key) as ckpt:
        with pytest.raises(CheckpointKeyError, match="checkpoint step 1 in .* is not encrypted, but an encryption key"):
            ckpt.read_meta(1)


def test_key_files(tmp_path, capsys):
    assert main(["keygen", str(tmp_path / "k")]) == 0
    assert os.stat(tmp_path / "k").st_mode & 0o777 == 0o600
    key = load_key(tmp_path / "k")
    assert len(key) == 32 and (tmp_path / "k").read_text().strip() == key.hex()
    assert main(["keygen", str(tmp_path / "k")]) == 2  # never overwritten (bad input)
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "raw").write_bytes(key)
    assert load_key(tmp_path / "raw") == key
    for bad in (b"\x00" * 16, b"ab" * 33, b"zz" * 32):
        (tmp_path / "bad").write_bytes(bad)
        with pytest.raises(KeyFileError, match=r"must hold a 32-byte key: 32 raw bytes or 64 hex digits"):
            load_key(tmp_path / "bad")
    with pytest.raises(KeyFileError, match="cannot read key file"):
        load_key(tmp_path / "missing")


def test_techniques_read_an_encrypted_run_and_write_encrypted_runs(encrypted_run, tmp_path, capsys):
    workdir, key_file, _, _ = encrypted_run
    assert main(["prune", "--workdir", workdir, "--sparsity", "0.5"]) == 3  # no key: exit 3 (checkpoint), one line
    assert "is encrypted (AES-256-GCM); give its key file" in capsys.readouterr().err
    out = str(tmp_path / "pruned")
    assert main(["prune", "--workdir", workdir, "--sparsity", "0.5", "--out", out, "--encrypt-key-file", key_file]) == 0
    with pytest.raises(CheckpointKeyError, match="is encrypted"):  # the pruned run is encrypted with the same key
        load_run(out)
    _, state, meta = load_run(out, key_file=key_file)
    assert meta["pruned"]["sparsity"] == 0.5
    kernel = np.asarray(state.params["hidden_0"]["kernel"])
    assert 0.45 < float(np.mean(kernel == 0)) < 0.55


def test_an_altered_key_fingerprint_is_tampering_not_a_wrong_key(encrypted_run, tmp_path):
    workdir = _copy(encrypted_run, tmp_path)
    (wrapper,) = glob.glob(os.path.join(workdir, "checkpoints", "10", "meta", "metadata"))
    text = pathlib.Path(wrapper).read_text()
    key_id = text.split('"key_id": "')[1][:16]
    pathlib.Path(wrapper).write_text(text.replace(key_id, "0" * 16))
    with Checkpointer(os.path.join(workdir, "checkpoints"), key=load_key(encrypted_run[1]), async_save=False) as ckpt:
        with pytest.raises(CheckpointError, match="step 10 in .* was tampered with: the key fingerprint") as e:
            ckpt.read_meta(10)
        assert not isinstance(e.value, CheckpointKeyError)
