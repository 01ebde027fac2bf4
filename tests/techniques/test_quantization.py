"""Int8 quantization: per-channel round trip, the trained seed CNN's accuracy and size, qwix int8 and QAT."""

import json

import jax
import jax.numpy as jnp
import numpy as np

import zoo
from zoo.cli import main
from zoo.techniques.quantization import QMAX, dequantize_params, quantize_params, quantize_tensor, qwix_int8, size_bytes


def test_dequantised_weights_are_within_half_a_step(key):
    w = jax.random.normal(key, (3, 3, 8, 16)) * jnp.linspace(0.01, 5.0, 16)  # channels of very different ranges
    t = jax.jit(quantize_tensor)(w)
    assert t.q.dtype == jnp.int8 and t.scale.shape == (16,)
    np.testing.assert_allclose(t.scale, jnp.abs(w).max(axis=(0, 1, 2)) / QMAX, rtol=1e-6)
    error = jnp.abs(t.q.astype(jnp.float32) * t.scale - w)
    assert bool(jnp.all(error <= t.scale / 2 * (1 + 1e-5)))
    assert int(jnp.abs(t.q).max()) == QMAX  # each channel's largest weight maps to +-127 exactly


def test_quantised_mlp_params_round_trip_and_shrink(key):
    model = zoo.create_model("mlp")
    params = zoo.init_variables(model, key)["params"]
    q = quantize_params(params)
    restored = dequantize_params(q)
    for (name, w), r in zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(restored)):
        if w.ndim == 1:
            assert bool(jnp.all(r == w)), name  # biases stay float
    # kernels 64*256 + 256*128 + 128*10 bytes + float32 scales (256 + 128 + 10) and biases (256 + 128 + 10)
    assert size_bytes(q) == 64 * 256 + 256 * 128 + 128 * 10 + 4 * 2 * (256 + 128 + 10)
    assert size_bytes(params) == 4 * zoo.param_count(model)


def test_quantised_seed_cnn_keeps_its_accuracy_from_the_cli(cnn_run, capsys):
    workdir, summary = cnn_run
    assert main(["quantize", "--workdir", workdir]) == 0
    report = json.loads(capsys.readouterr()[0].strip().splitlines()[-1])
    assert report["accuracy_float"] == summary["test_accuracy"]
    assert abs(report["accuracy_int8_weights"] - report["accuracy_float"]) <= 0.005, report
    assert report["max_weight_error_in_steps"] <= 0.5 + 1e-4
    assert 0.25 < report["size_ratio"] < 0.26  # int8 kernels + float32 scales and biases: ~1/4
    # qwix: every kernel in int8, activations too; accuracy within a point
    assert report["qwix_int8_layers"] == ["conv_0/kernel", "conv_1/kernel", "dense_0/kernel", "head/kernel"]
    assert abs(report["accuracy_qwix_int8"] - report["accuracy_float"]) <= 0.01, report


def test_qwix_int8_runs_the_mlp_in_int8(key):
    model = zoo.create_model("mlp")
    params = zoo.init_variables(model, key)["params"]
    x = zoo.random_input(model.config, jax.random.key(1), 4)
    qmodel, qparams, layers = qwix_int8(model, params)
    assert layers == ["head/kernel", "hidden_0/kernel", "hidden_1/kernel"]
    out, ref = qmodel.apply({"params": qparams}, x, train=False), model.apply({"params": params}, x, train=False)
    np.testing.assert_allclose(out, ref, atol=0.03 * float(jnp.abs(ref).max()))
    assert not np.array_equal(np.asarray(out), np.asarray(ref))  # it really ran in int8
