"""The bad-input matrix: each bad input is a clear error naming what was expected and what came in,
and leaves every file of the work directory as it was (names, sizes, mtimes, bytes).
"""

import glob
import json
import os
import pathlib
import re
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.cli import main
from zoo.train import OptimizerConfig, TrainConfig, read_metrics, train_and_evaluate

BASE = ["mlp", "--steps", "5", "--batch-size", "32", "--checkpoint-every", "5", "--no-progress"]


def snapshot(directory) -> dict:
    """Every file under ``directory``: (size, mtime_ns, bytes) by relative path."""
    out = {}
    for dirpath, _, files in os.walk(directory):
        for name in files:
            path = pathlib.Path(dirpath, name)
            st = path.stat()
            out[os.path.relpath(path, directory)] = (st.st_size, st.st_mtime_ns, path.read_bytes())
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A finished 5-step mlp run: what every bad command below is pointed at."""
    path = str(tmp_path_factory.mktemp("bad-inputs") / "run")
    assert main(["train", *BASE, "--workdir", path]) == 0
    return path


def _with(**changes):
    """BASE with some flags replaced (value None drops the flag) or added."""
    args = list(BASE)
    for flag, value in changes.items():
        flag = "--" + flag.replace("_", "-")
        if flag in args:
            i = args.index(flag)
            del args[i:i + 2]
        if value is not None:
            args += [flag, str(value)]
    return args


# (argv, exit code, substrings of the message: what was expected and what came in)
CLI_CASES = {
    "unknown model": (["resnet9000", *BASE[1:]], 2, ["unknown model 'resnet9000'", "known models:", "mlp"]),
    "unknown dataset": (_with(data="mnist9000"), 2, ["unknown dataset 'mnist9000'", "available: breast_cancer, cifar10, cnn_dailymail, digits, digits_ovr, docstrings, fsdd, imagenet, imdb, movielens, pii, pydoc, sentiment, series, squad, sst2, synthetic, translate, wikitext, wmt, xsum"]),
    "negative steps": (_with(steps=-1), 2, ["steps must be a non-negative int, got -1"]),
    "zero batch": (_with(batch_size=0), 2, ["batch_size must be a positive int, got 0"]),
    "negative batch": (_with(batch_size=-3), 2, ["batch_size must be a positive int, got -3"]),
    "zero checkpoint_every": (_with(checkpoint_every=0), 2, ["checkpoint_every must be a positive int, got 0"]),
    "zero keep": (_with(keep=0), 2, ["keep_checkpoints must be a positive int, got 0"]),
    "negative log_every": (_with(log_every=-1), 2, ["log_every must be a positive int, got -1"]),
    "zero epochs": (_with(steps=None, epochs=0), 2, ["epochs must be > 0, got 0.0"]),
    "negative epochs": (_with(steps=None, epochs=-2), 2, ["epochs must be > 0, got -2.0"]),
    "negative warmup": (_with(warmup_steps=-1), 2, ["warmup_steps must be >= 0, got -1"]),
    "zero lr": (_with(lr=0), 2, ["learning_rate must be > 0, got 0.0"]),
    "negative clip": (_with(clip_norm=-1), 2, ["clip_norm must be > 0 or None, got -1.0"]),
    "bad nonfinite policy": (_with(on_nonfinite="skip:0"), 2,
                             ["on_nonfinite must be 'stop', 'skip' or 'skip:N' with N > 0, got 'skip:0'"]),
    "batch larger than dataset": (_with(batch_size=5000), 2,
                                  ["batch_size 5000 is larger than the training set (1437 examples)"]),
    "checkpoint of another model": (["seed_lstm", *BASE[1:]], 3,
                                     ["holds a checkpoint of model 'mlp', not 'seed_lstm'"]),
    "another dataset": (_with(data="synthetic"), 3, ["was trained on dataset 'digits', not 'synthetic'"]),
    "another batch size": (_with(batch_size=16), 3,
                           ["the checkpoint's data order used batch_size=32, this run uses batch_size=16"]),
    "another learning rate": (_with(lr=0.01), 3, ["other optimizer settings (learning_rate: 0.001 -> 0.01)"]),
    "another optimizer": (_with(optimizer="sgd"), 3, ["other optimizer settings (name: 'adam' -> 'sgd')"]),
    "augmentation the layout cannot take": (_with(augment="shift:1"), 2,
                                            ["shift augmentation needs image or row-sequence inputs, not layout "
                                             "'vector'"]),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_command_is_a_clear_error_and_changes_no_file(workdir, case, capsys):
    argv, code, expected = CLI_CASES[case]
    before = snapshot(workdir)
    assert main(["train", *argv, "--workdir", workdir]) == code
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("zoo: error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err
    assert snapshot(workdir) == before


@pytest.mark.parametrize("flag, value, choices", [("--optimizer", "adamx", "'sgd', 'adam', 'adamw'"),
                                                  ("--schedule", "linear", "'constant', 'cosine'"),
                                                  ("--dtype", "int8", "'float32', 'bfloat16', 'float16'")])
def test_unknown_choice_names_the_choices(workdir, flag, value, choices, capsys):
    before = snapshot(workdir)
    with pytest.raises(SystemExit) as e:
        main(["train", *BASE, flag, value, "--workdir", workdir])
    assert e.value.code == 2
    assert f"argument {flag}: invalid choice: '{value}' (choose from {choices})" in capsys.readouterr().err
    assert snapshot(workdir) == before


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_sizes": (0,)}, "MLPConfig.hidden_sizes must be positive integer(s), got (0,)"),
    ({"hidden_sizes": (64, -8)}, "MLPConfig.hidden_sizes must be positive integer(s), got (64, -8)"),
    ({"num_classes": 0}, "MLPConfig.num_classes must be positive integer(s), got 0"),
    ({"input_shape": (-1,)}, "MLPConfig.input_shape must be positive integer(s), got (-1,)"),
    ({"hidden_sizes": (64,)}, "holds a mlp checkpoint with config"),
])
def test_bad_or_other_model_config_changes_no_file(workdir, overrides, message):
    before = snapshot(workdir)
    with pytest.raises(ValueError, match=re.escape(message)):
        train_and_evaluate(TrainConfig(model="mlp", steps=5, batch_size=32, checkpoint_every=5,
                                       model_overrides=overrides), workdir, progress=False)
    assert snapshot(workdir) == before


def test_unknown_optimizer_from_python():
    with pytest.raises(ValueError, match=r"optimizer must be one of \('sgd', 'adam', 'adamw'\), got 'adamx'"):
        OptimizerConfig(name="adamx")


def test_a_bad_run_on_a_new_workdir_creates_nothing(tmp_path, capsys):
    workdir = tmp_path / "new"
    assert main(["train", *_with(batch_size=5000), "--workdir", str(workdir)]) == 2
    assert main(["train", "resnet9000", "--workdir", str(workdir)]) == 2
    assert not workdir.exists()


# --- wrong inputs to every registered model (traced abstractly: no memory, so every size is covered) -------


def _bad_inputs(config):
    shape, dtype = tuple(config.input_shape), (jnp.int32 if config.layout == "tokens" else jnp.float32)
    wrong_last = (2, *shape[:-1], shape[-1] + 1)
    cases = {
        "missing batch dim": (jax.ShapeDtypeStruct(shape, dtype), rf"rank {len(shape) + 1}\b.*got rank {len(shape)}"),
        "extra dim": (jax.ShapeDtypeStruct((2, *shape, 1), dtype), rf"got rank {len(shape) + 2}"),
        "wrong size": (jax.ShapeDtypeStruct(wrong_last, dtype), re.escape(f"got shape {wrong_last}")),
        "complex dtype": (jax.ShapeDtypeStruct((2, *shape), jnp.complex64), "got dtype complex64"),
        "bool dtype": (jax.ShapeDtypeStruct((2, *shape), jnp.bool_), "got dtype bool"),
    }
    if config.layout == "tokens":
        cases["float dtype for token ids"] = (jax.ShapeDtypeStruct((2, *shape), jnp.float32), "got dtype float32")
    return cases


@pytest.mark.parametrize("name", zoo.list_models())
def test_wrong_input_rank_shape_or_dtype_names_expected_and_got(name):
    model = zoo.create_model(name)
    variables = jax.eval_shape(lambda: zoo.init_variables(model, jax.random.key(0)))
    shape = model.config.input_shape
    # token models take any length up to input_shape's T
    expected = (f"T <= {shape[-1]}" if model.config.layout == "tokens" else
                f"H, W >= {model.config.min_image_size}" if hasattr(model.config, "min_image_size")  # any size
                else f"[B, {', '.join(map(str, shape))}]")
    for case, (x, got) in _bad_inputs(model.config).items():
        with pytest.raises(ValueError, match=got) as e:
            jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
        message = str(e.value)
        assert name in message and "expects" in message, (case, message)
        if "dtype" not in case:
            assert expected in message, (case, message)


@pytest.mark.parametrize("name", ["bert_nano", "gpt2_tiny"])
def test_token_ids_outside_the_vocabulary_raise_when_concrete(name):
    model = zoo.create_model(name)
    variables = zoo.init_variables(model, jax.random.key(0))
    vocab = model.config.vocab_size
    ids = np.zeros((2, 5), np.int32)
    for bad, low, high in ((vocab, 0, vocab), (-1, -1, 0)):
        ids_bad = ids.copy()
        ids_bad[1, 3] = bad
        for x in (ids_bad, jnp.asarray(ids_bad)):
            with pytest.raises(ValueError, match=re.escape(f"{name} expects token ids in [0, vocab_size={vocab}), "
                                                           f"got ids from {low} to {high}")):
                model.apply(variables, x)
    assert np.isfinite(model.apply(variables, ids + vocab - 1)).all()  # the last id is fine


def test_bert_token_type_ids_outside_type_vocab_size_raise():
    model = zoo.create_model("bert_nano")
    variables = zoo.init_variables(model, jax.random.key(0))
    ids = np.ones((2, 5), np.int32)
    with pytest.raises(ValueError, match=re.escape("token_type_ids in [0, type_vocab_size=2), got ids from 0 to 2")):
        model.apply(variables, ids, token_type_ids=np.array([[0, 0, 1, 1, 2]] * 2))


# --- Hugging Face checkpoint directories (zoo.convert, here through BERT) ------------------------------


class _RunsCodeWhenUnpickled:
    """A pickle payload that would create ``path`` if it were unpickled without ``weights_only``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A valid bert_nano checkpoint directory (config.json + model.safetensors) and its params."""
    model = zoo.create_model("bert_nano")
    params = jax.device_get(zoo.init_variables(model, jax.random.key(0))["params"])
    path = zoo.save_pretrained(model, {"params": params}, tmp_path_factory.mktemp("hf") / "bert_nano")
    return path, params


def _edit_tensors(path, edit):
    from safetensors.numpy import load_file, save_file

    file = os.path.join(path, "model.safetensors")
    tensors = dict(load_file(file))
    edit(tensors)
    save_file(tensors, file, metadata={"format": "pt"})


def _first_key(tensors, part="encoder.layer.0.attention.self.query.weight"):
    return next(k for k in sorted(tensors) if k.endswith(part))


def _drop(tensors):
    del tensors[_first_key(tensors)]


def _extra(tensors):
    tensors["bert.encoder.layer.9.extra.weight"] = np.zeros((3, 3), np.float32)


def _reshape(tensors):
    key = _first_key(tensors)
    tensors[key] = np.zeros((tensors[key].shape[0], tensors[key].shape[1] + 1), np.float32)


def _as_int32(tensors):
    key = _first_key(tensors)
    tensors[key] = tensors[key].astype(np.int32)


def _config_text(text):
    def edit(path):
        pathlib.Path(path, "config.json").write_text(text)
    return edit


def _drop_config_field(field):
    def edit(path):
        config = json.loads(pathlib.Path(path, "config.json").read_text())
        del config[field]
        pathlib.Path(path, "config.json").write_text(json.dumps(config))
    return edit


def _pickle_only(path):
    import torch
    from safetensors.numpy import load_file

    file = os.path.join(path, "model.safetensors")
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in load_file(file).items()},
               os.path.join(path, "pytorch_model.bin"))
    os.remove(file)


HF_CASES = {
    "missing tensor": (lambda p: _edit_tensors(p, _drop),
                       r"does not match the model: missing keys \['bert\.encoder\.layer\.0\.attention\.self\.query"),
    "extra tensor": (lambda p: _edit_tensors(p, _extra),
                     re.escape("unexpected keys ['bert.encoder.layer.9.extra.weight']")),
    "mis-shaped tensor": (lambda p: _edit_tensors(p, _reshape),
                          re.escape("shape mismatches [bert.encoder.layer.0.attention.self.query.weight (64, 65) "
                                    "does not fit zoo layer_0/attention/query/kernel (64, 2, 32)]")),
    "malformed config.json": (_config_text("{not json"), r"config\.json is not valid JSON"),
    "config.json not an object": (_config_text("[1, 2]"), r"config\.json must hold a JSON object, got list"),
    "config.json lacks a field": (_drop_config_field("hidden_size"),
                                  re.escape("lacks the required field(s) ['hidden_size']")),
    "int32 tensor": (lambda p: _edit_tensors(p, _as_int32),
                     re.escape("non-float tensors for float parameters [bert.encoder.layer.0.attention.self.query."
                               "weight has dtype int32, zoo layer_0/attention/query/kernel is float32]")),
    "pickle-only weights": (_pickle_only, r"holds only pytorch_model\.bin, a pickle-based format.*allow_pickle=True"),
}


@pytest.mark.parametrize("case", list(HF_CASES))
def test_bad_hugging_face_directory_is_a_clear_error_and_changes_no_file(hf_dir, tmp_path, case):
    from zoo.convert import CheckpointFormatError

    source, _ = hf_dir
    path = str(tmp_path / "ckpt")
    shutil.copytree(source, path)
    damage, message = HF_CASES[case]
    damage(path)
    before = snapshot(path)
    with pytest.raises(CheckpointFormatError, match=message):
        zoo.from_pretrained(path)
    assert snapshot(path) == before


def test_pickle_weights_load_only_with_opt_in_and_never_run_code(hf_dir, tmp_path):
    import torch

    source, params = hf_dir
    path = str(tmp_path / "ckpt")
    shutil.copytree(source, path)
    _pickle_only(path)
    _, variables = zoo.from_pretrained(path, allow_pickle=True)
    chex.assert_trees_all_equal(jax.device_get(variables["params"]), params)

    marker = tmp_path / "code-ran"
    torch.save({"weights": _RunsCodeWhenUnpickled(str(marker))}, os.path.join(path, "pytorch_model.bin"))
    before = snapshot(path)
    with pytest.raises(Exception, match="Weights only load failed"):
        zoo.from_pretrained(path, allow_pickle=True)
    assert not marker.exists()
    assert snapshot(path) == before


# --- every subcommand: a refused invocation changes no file (missing, empty or finished work directory) ----


def tree(root) -> dict:
    """Every file (size, mtime_ns, bytes) and directory (its mtime_ns: an entry added or removed shows) under
    ``root``."""
    out = {".": os.stat(root).st_mtime_ns}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root) + "/"] = os.lstat(path).st_mtime_ns
        for name in files:
            path = pathlib.Path(dirpath, name)
            st = path.lstat()
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns,
                                                os.readlink(path) if path.is_symlink() else path.read_bytes())
    return out


W = "{workdir}"
# refused whatever the work directory holds (flags of every subcommand checked before any file is touched)
REFUSED = {
    "list: unknown flag": ["list", "--bogus"],
    "train: negative seed": ["train", *BASE, "--seed", "-1", "--workdir", W],
    "train: infinite lr": ["train", *BASE, "--lr", "inf", "--workdir", W],
    "train: unknown model": ["train", "resnet9000", "--workdir", W],
    "train --dry-run: zero batch": ["train", *BASE, "--batch-size", "0", "--dry-run", "--workdir", W],
    "plan: zero batch": ["plan", "mlp", "--batch-size", "0"],
    "prune: sparsity 1.5": ["prune", "--workdir", W, "--sparsity", "1.5"],
    "prune: negative step": ["prune", "--workdir", W, "--sparsity", "0.5", "--step", "-1"],
    "quantize: negative QAT steps": ["quantize", "--workdir", W, "--qat-steps", "-5"],
    "federated: fraction 2": ["federated", "mlp", "--fraction", "2"],
    "federated: NaN lr": ["federated", "mlp", "--lr", "nan"],
    "federated: all sampled clients drop": ["federated", "mlp", "--dropout-clients", "5"],
    "train: empty key file": ["train", *BASE, "--encrypt-key-file", os.devnull, "--workdir", W],
    "explain: unknown method": ["explain", "mlp", "--workdir", W, "--methods", "saliency,bogus"],
    "explain: another model": ["explain", "seed_cnn", "--workdir", W],
    "explain: no such test example": ["explain", "mlp", "--workdir", W, "--input", "test:99999"],
    "explain: no such input file": ["explain", "mlp", "--workdir", W, "--input", "missing.npy"],
    "tune: no space file": ["tune", "mlp", "--trials", "2", "--space", "missing.toml", "--workdir", W],
    "tune: a space the model refuses": ["tune", "mlp", "--trials", "2", "--workdir", W, "--space",  # row shifts
                                        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                     "examples", "tune_seed_lstm.toml")],
}
# refused because there is no run to work on
NO_RUN = {
    "prune": ["prune", "--workdir", W, "--sparsity", "0.5"],
    "quantize": ["quantize", "--workdir", W],
    "explain": ["explain", "mlp", "--workdir", W],
}
STATES = ("missing", "empty", "finished run")


def _refused(argv, capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's refusals
        code = e.code
    out, err = capsys.readouterr()
    assert out == "", out
    return code, err


@pytest.mark.parametrize("case, state", [*((c, s) for c in REFUSED for s in STATES),
                                         *((f"{c}: no run", s) for c in NO_RUN for s in STATES[:2])])
def test_a_refused_invocation_of_any_subcommand_changes_no_file(workdir, tmp_path, monkeypatch, capsys, case, state):
    argv = NO_RUN[case[:-len(": no run")]] if case.endswith(": no run") else REFUSED[case]
    if state == "finished run":
        root = path = workdir
    else:
        root, path = str(tmp_path), str(tmp_path / "run")
        if state == "empty":
            os.mkdir(path)
    monkeypatch.chdir(root)  # subcommands without a --workdir must not write where they run either
    before = tree(root)
    code, err = _refused([a.replace(W, path) for a in argv], capsys)
    assert code in (2, 3), (code, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("zoo") and "error: " in last and "Traceback" not in err, err
    assert tree(root) == before


def _float_options():
    import argparse

    from zoo.cli import _finite_float, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(name, flag) for name, p in sub.choices.items() for a in p._actions if a.type is _finite_float
            for flag in a.option_strings[:1]]


@pytest.mark.parametrize("command, flag", _float_options())
@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_every_float_option_refuses_non_finite_values(command, flag, value, capsys):
    positional = {"train": ["mlp"], "tune": ["mlp"], "plan": ["mlp"], "federated": ["mlp"],
                  "explain": ["mlp"]}.get(command, [])
    required = {"prune": ["--workdir", "w", "--sparsity", "0.5"], "quantize": ["--workdir", "w"],
                "explain": ["--workdir", "w"], "tune": ["--trials", "2", "--space", "s.toml"]}.get(command, [])
    code, err = _refused([command, *positional, *required, f"{flag}={value}"], capsys)
    assert code == 2 and f"argument {flag}: expected a finite number, got '{value}'" in err


def test_a_symlink_loop_or_a_file_as_workdir_is_named(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    file = tmp_path / "file"
    file.write_text("mine")
    before = tree(tmp_path)
    code, err = _refused(["train", *BASE, "--workdir", str(loop)], capsys)
    assert code == 2 and f"work directory {loop} is a symbolic link loop ({loop} -> loop)" in err
    code, err = _refused(["train", *BASE, "--workdir", str(file)], capsys)
    assert code == 2 and f"work directory {file} exists but is not a directory" in err
    code, err = _refused(["prune", "--workdir", str(loop), "--sparsity", "0.5"], capsys)
    assert code == 3 and "is a symbolic link loop" in err
    assert tree(tmp_path) == before


# --- a damaged metrics.jsonl, history without checkpoints: kept aside with a warning, never dropped silently --


def _resume(workdir, capsys):
    """Reruns the 5-step command; returns its summary and the MetricsWarning it gave (pytest captures it)."""
    from zoo.train.metrics import MetricsWarning

    with pytest.warns(MetricsWarning) as caught:
        code = main(["train", *BASE, "--workdir", workdir])
    out, err = capsys.readouterr()
    assert code == 0, err
    (warning,) = [w for w in caught if w.category is MetricsWarning]
    return json.loads(out.strip().splitlines()[-1]), str(warning.message)


@pytest.mark.parametrize("damage", ["list", "no step", "bytes", "torn", "directory"])
def test_a_damaged_metrics_file_is_kept_aside_with_a_warning_and_the_run_resumes(workdir, tmp_path, capsys, damage):
    path = str(tmp_path / "run")
    shutil.copytree(workdir, path)
    metrics = pathlib.Path(path, "metrics.jsonl")
    rows = metrics.read_bytes()
    bad = {"list": b"[1, 2]\n", "no step": b'{"loss": 1.0}\n', "bytes": b'{"step": 3, "l\xff\xfe": 1}\n',
           "torn": b'{"step": 4, "train_lo'}.get(damage)
    if damage == "directory":
        metrics.unlink()
        metrics.mkdir()
        (metrics / "x").write_text("x")
    else:
        metrics.write_bytes(rows + bad)
    summary, err = _resume(path, capsys)
    assert summary["resumed_from"] == 5 and summary["new_steps"] == 0
    (aside,) = glob.glob(f"{metrics}.corrupt-*")
    assert err.startswith(str(metrics)) and aside in err, err
    if damage == "directory":
        assert "is not a readable file" in err and os.path.isdir(aside)
    else:
        assert pathlib.Path(aside).read_bytes() == bad.rstrip(b"\n") + b"\n"
        assert metrics.read_bytes() == rows  # the readable history is kept byte for byte
        assert ("torn last line" in err) == (damage == "torn")


def test_history_without_a_checkpoint_is_moved_aside_with_a_warning(workdir, tmp_path, capsys):
    path = str(tmp_path / "run")
    shutil.copytree(workdir, path)
    shutil.rmtree(os.path.join(path, "checkpoints"))
    old = pathlib.Path(path, "metrics.jsonl").read_bytes()
    summary, err = _resume(path, capsys)
    assert summary["resumed_from"] is None and summary["new_steps"] == 5
    (aside,) = glob.glob(os.path.join(path, "metrics.jsonl.no-checkpoint-*"))
    assert "metrics.jsonl holds metrics up to step 5 but there is no checkpoint to resume from" in err
    assert aside in err
    assert pathlib.Path(aside).read_bytes() == old
    assert [r["step"] for r in read_metrics(os.path.join(path, "metrics.jsonl"))] == [5]
