"""Registry behaviour and one registry-wide conformance test for every model."""

import dataclasses

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import zoo
from zoo.tasks import task_for
from zoo.train import create_train_state, train_step

ALL_MODELS = zoo.list_models()
# init/apply/train conformance runs on the smallest variant of each architecture; every variant is
# checked abstractly (below) and shares its code with the small variant that runs.
MODELS = zoo.registry.conformance_models()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_initialises_abstractly(name):
    assert zoo.param_count(name) > 0


def test_list_models_has_the_seed_models():
    assert {"mlp", "seed_cnn", "seed_lstm"} <= set(ALL_MODELS)
    assert zoo.list_models("seed_*") == ["seed_cnn", "seed_lstm"]
    assert zoo.list_models("nothing*") == []


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown model 'resnet9000'.*known models: .*seed_cnn"):
        zoo.create_model("resnet9000")


def test_unknown_override_names_valid_fields():
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['widht'\].*valid fields"):
        zoo.create_model("seed_cnn", widht=3)


@pytest.mark.parametrize("name, overrides, message", [
    ("seed_cnn", {"features": (32, 0)}, "features must be positive"),
    ("seed_cnn", {"input_shape": (28, 28)}, r"input_shape must be \(H, W, C\)"),
    ("seed_cnn", {"input_shape": (6, 6, 1)}, "too small"),
    ("seed_cnn", {"conv_impl": "fft"}, "conv_impl must be one of"),
    ("seed_cnn", {"dropout_rate": 1.5}, r"dropout_rate must be in \[0, 1\)"),
    ("seed_lstm", {"hidden_sizes": ()}, "hidden_sizes must be positive"),
    ("seed_lstm", {"unroll": 0}, "unroll must be True or a positive int"),
    ("mlp", {"activation": "swishy"}, "activation must be one of"),
    ("mlp", {"dtype": "int32"}, "dtype must be a floating dtype"),
    ("mlp", {"num_classes": -1}, "num_classes must be positive"),
])
def test_bad_config_values_are_rejected(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **overrides)


def test_init_and_param_count_say_what_they_take():
    model = zoo.create_model("mlp")
    variables = zoo.init_variables(model, jax.random.key(0))
    with pytest.raises(TypeError, match="init_variables takes a zoo model .* got dict .*pass the model, not its"):
        zoo.init_variables(variables, jax.random.key(0))
    with pytest.raises(TypeError, match="init_variables takes a jax.random key as rng .* got int"):
        zoo.init_variables(model, 0)
    with pytest.raises(TypeError, match="param_count takes a zoo model .* got dict"):
        zoo.param_count(variables)
    # compiled init: the same variables as Flax's own init on the example input
    eager = model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)},
                       zoo.example_input(model.config), train=False)
    chex.assert_trees_all_equal(variables, {"params": nn.meta.unbox(eager)["params"]})


def test_config_is_frozen_and_hashable():
    model = zoo.create_model("seed_cnn")
    hash(model.config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.mlp_dim = 3


class ApplyEveryModel(chex.TestCase):
    """init + apply with and without jit (chex.variants), shapes and finiteness, for each model."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*MODELS)
    def test_apply_shapes_and_finite(self, name):
        model = zoo.create_model(name)
        variables = zoo.init_variables(model, jax.random.key(0))
        x = zoo.random_input(model.config, jax.random.key(1), 3)
        logits = self.variant(lambda v, x: model.apply(v, x, train=False))(variables, x)
        chex.assert_shape(logits, task_for(model).output_shape(model.config, 3))
        chex.assert_tree_all_finite(logits)
        # both variants compute the same function
        chex.assert_trees_all_close(logits, model.apply(variables, x, train=False), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
class TestEveryModel:
    """init, apply (with and without jit), shapes, finiteness and one training step for each model."""

    def test_train_mode_needs_and_uses_dropout_rng(self, name):
        model = zoo.create_model(name)
        variables = zoo.init_variables(model, jax.random.key(0))
        x = zoo.random_input(model.config, jax.random.key(4), 2)
        mutable = [k for k in variables if k != "params"] or False  # BatchNorm updates its statistics
        out = jax.jit(lambda v, x, key: model.apply(v, x, train=True, rngs={"dropout": key}, mutable=mutable))(
            variables, x, jax.random.key(3))
        out = out[0] if mutable else out
        chex.assert_shape(out, task_for(model).output_shape(model.config, 2))

    def test_one_training_step_changes_params_and_lowers_loss_on_the_batch(self, name):
        model = zoo.create_model(name)
        state = create_train_state(model, optax.adam(1e-3), seed=0)
        batch = jax.device_get(task_for(model).example_batch(model.config, jax.random.key(2), 8))
        step = jax.jit(train_step)
        new_state, metrics = step(state, batch)
        assert int(new_state.step) == 1
        chex.assert_tree_all_finite(metrics)
        changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params, new_state.params)
        assert all(jax.tree.leaves(changed)), changed
        for _ in range(5):
            new_state, later = step(new_state, batch)
        assert float(later["loss"]) < float(metrics["loss"])

    def test_wrong_input_shape_is_a_clear_error(self, name):
        model = zoo.create_model(name)
        variables = zoo.init_variables(model, jax.random.key(0))
        shape = model.config.input_shape
        # (image models that take any size, such as ResNet, say "images of rank 4 [B, H, W, C] ...")
        with pytest.raises(ValueError, match=rf"{name} expects (input|images) of rank {len(shape) + 1}"):
            model.apply(variables, jnp.ones(shape), train=False)  # batch dim missing
        bad = (2, *shape[:-1], shape[-1] + 1)
        with pytest.raises(ValueError, match=rf"{name} expects .* got shape \(2,"):
            model.apply(variables, jnp.ones(bad), train=False)

    def test_bfloat16_compute_keeps_float32_params(self, name):
        model = zoo.create_model(name, dtype="bfloat16")
        variables = zoo.init_variables(model, jax.random.key(0))
        assert {x.dtype for x in jax.tree.leaves(variables["params"])} == {jnp.dtype("float32")}
        x = zoo.random_input(model.config, jax.random.key(4), 2)
        logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
        assert logits.dtype == jnp.bfloat16
        float32 = zoo.create_model(name)
        reference = jax.jit(lambda v, x: float32.apply(v, x, train=False))(variables, x)
        np.testing.assert_allclose(np.asarray(logits, np.float32), reference, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("name", MODELS)
def test_pre_logits_are_available_for_probing(name):
    model = zoo.create_model(name)
    variables = zoo.init_variables(model, jax.random.key(0))
    assert "params" in variables and "intermediates" not in variables  # (+ e.g. batch_stats)
    x = zoo.random_input(model.config, jax.random.key(4), 2)
    logits, state = jax.jit(lambda v, x: model.apply(v, x, mutable=["intermediates"]))(variables, x)
    (features,) = state["intermediates"]["pre_logits"]
    chex.assert_rank(features, logits.ndim)  # [B, D] for [B, K] logits, [B, T, D] for per-token logits
    # the head is a linear map of the probed features
    kernel, bias = zoo.registry.head_linear(model, variables["params"])
    chex.assert_trees_all_close(features @ kernel + bias, logits, atol=1e-5)
