"""Magnitude pruning: exact sparsity, gradual pruning through optax, one-shot pruning of a trained run."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo.cli import main
from zoo.techniques.pruning import apply_masks, magnitude_masks, polynomial_sparsity, pruned, sparsity_report
from zoo.train import create_train_state, load_run, train_step


def random_params(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {"a": {"kernel": jax.random.normal(k1, (30, 20)), "bias": jnp.ones(20)},
            "b": {"kernel": jax.random.normal(k2, (3, 3, 4, 5)) * 3.0}, "c": {"kernel": jax.random.normal(k3, (7, 3))}}


@pytest.mark.parametrize("sparsity", [0.3, 0.9])
def test_layerwise_masks_hit_the_target_exactly_and_drop_the_smallest(key, sparsity):
    params = random_params(key)
    pruned_params = apply_masks(params, jax.jit(magnitude_masks)(params, sparsity))
    report = sparsity_report(pruned_params)
    for name, w in (("a/kernel", params["a"]["kernel"]), ("b/kernel", params["b"]["kernel"]),
                    ("c/kernel", params["c"]["kernel"])):
        k = round(sparsity * w.size)
        assert report["layers"][name] == k / w.size
        kept = np.abs(np.asarray(w))[np.asarray(pruned_params[name.split("/")[0]]["kernel"]) != 0]
        if k:  # every kept weight is at least as large as every pruned one
            assert kept.min() >= np.sort(np.abs(np.asarray(w)).ravel())[k - 1]
    chex.assert_trees_all_equal(pruned_params["a"]["bias"], params["a"]["bias"])  # biases are never pruned


def test_global_masks_hit_the_target_over_all_kernels(key):
    params = random_params(key)
    masks = jax.jit(magnitude_masks, static_argnames="scope")(params, 0.6, scope="global")
    report = sparsity_report(apply_masks(params, masks))
    total = 30 * 20 + 3 * 3 * 4 * 5 + 7 * 3
    assert report["prunable"] == total and report["zeros"] == round(0.6 * total)
    # layer "b" was scaled up 3x, so a global threshold prunes it least
    assert report["layers"]["b/kernel"] < report["layers"]["a/kernel"]


def test_bad_sparsity_is_a_clear_error(key):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\), got 1.5"):
        magnitude_masks(random_params(key), 1.5)
    with pytest.raises(ValueError, match="scope must be one of"):
        magnitude_masks(random_params(key), 0.5, scope="row")


def test_gradual_pruning_reaches_the_target_and_pruned_weights_stay_zero():
    model = zoo.create_model("mlp", dropout_rate=0.0)
    tx = pruned(optax.adam(1e-2), target_sparsity=0.8, begin_step=0, end_step=20, frequency=5)
    state = create_train_state(model, tx, seed=0)
    step = jax.jit(train_step)
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 64), np.float32), rng.integers(0, 10, 32).astype(np.int32)
    sparsities = []
    for i in range(35):
        state, _ = step(state, {"inputs": x, "label": y})
        sparsities.append(sparsity_report(state.params)["sparsity"])
        if i + 1 == 21:  # the last mask update is at step 20
            zeros_at_end = jax.tree.map(lambda w: np.asarray(w) == 0, state.params)
    # the polynomial schedule only grows, and ends exactly at the target in every layer
    assert all(b >= a for a, b in zip(sparsities, sparsities[1:]))
    assert float(polynomial_sparsity(20, target=0.8, begin_step=0, end_step=20)) == pytest.approx(0.8)
    report = sparsity_report(state.params)
    for name, value in report["layers"].items():
        size = {"hidden_0/kernel": 64 * 256, "hidden_1/kernel": 256 * 128, "head/kernel": 128 * 10}[name]
        assert value == round(0.8 * size) / size, name
    # 14 more steps of training after the last mask update moved no pruned weight
    for was_zero, w in zip(jax.tree.leaves(zeros_at_end), jax.tree.leaves(state.params)):
        if w.ndim >= 2:
            np.testing.assert_array_equal(np.asarray(w)[was_zero], 0.0)


def test_one_shot_pruning_of_the_trained_seed_cnn_from_the_cli(cnn_run, tmp_path, capsys):
    workdir, summary = cnn_run
    out = str(tmp_path / "pruned")
    assert main(["prune", "--workdir", workdir, "--sparsity", "0.5", "--scope", "global", "--out", out]) == 0
    stdout, stderr = capsys.readouterr()
    report = json.loads(stdout.strip().splitlines()[-1])
    prunable = 3 * 3 * 1 * 32 + 3 * 3 * 32 * 64 + 1600 * 128 + 128 * 10
    assert report["sparsity"] == round(0.5 * prunable) / prunable
    assert report["accuracy_before"] == summary["test_accuracy"]
    assert report["accuracy_after"] > summary["test_accuracy"] - 0.05  # half the weights cost little here
    assert "dense_0/kernel" in stderr and "test accuracy" in stderr
    # the pruned run loads back with its zeros
    _, state, meta = load_run(out)
    assert meta["pruned"] == {"sparsity": 0.5, "scope": "global"}
    assert sparsity_report(state.params)["sparsity"] == report["sparsity"]
