"""The seed CNN: parameter count arithmetic, parity with the seed's Keras model, bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.models.seed.keras import params_from_keras, params_to_keras


def test_parameter_count_matches_keras_arithmetic():
    conv_0 = 3 * 3 * 1 * 32 + 32  # 320
    conv_1 = 3 * 3 * 32 * 64 + 64  # 18,496
    flat = 5 * 5 * 64  # 28 -> 26 -> 13 -> 11 -> 5
    dense_0 = flat * 128 + 128  # 204,928
    head = 128 * 10 + 10  # 1,290
    assert conv_0 + conv_1 + dense_0 + head == 225_034
    assert zoo.param_count("seed_cnn") == 225_034
    params = zoo.init_variables(zoo.create_model("seed_cnn"), jax.random.key(0))["params"]
    chex.assert_shape(params["conv_0"]["kernel"], (3, 3, 1, 32))
    chex.assert_shape(params["conv_1"]["kernel"], (3, 3, 32, 64))
    chex.assert_shape(params["dense_0"]["kernel"], (1600, 128))
    chex.assert_shape(params["head"]["kernel"], (128, 10))


@pytest.fixture(scope="module")
def keras_seed_cnn():
    import keras
    from keras.layers import Conv2D, Dense, Flatten, MaxPooling2D

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),  # the seed passes input_shape= to the first layer
        Conv2D(32, (3, 3), activation="relu"),
        MaxPooling2D((2, 2)),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D((2, 2)),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ])
    return model


def test_keras_reports_the_same_parameter_count(keras_seed_cnn):
    assert keras_seed_cnn.count_params() == zoo.param_count("seed_cnn")


@pytest.mark.parametrize("conv_impl", ["matmul", "xla"])
def test_forward_parity_with_keras_on_the_same_weights(keras_seed_cnn, conv_impl):
    model = zoo.create_model("seed_cnn", conv_impl=conv_impl)
    template = zoo.init_variables(model, jax.random.key(0))["params"]
    params = params_from_keras(template, keras_seed_cnn.get_weights())
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    expected = np.asarray(keras_seed_cnn.predict(x, verbose=0))  # softmax probabilities
    logits = model.apply({"params": params}, x, train=False)
    chex.assert_trees_all_close(np.asarray(jax.nn.softmax(logits)), expected, atol=1e-5, rtol=1e-4)


def test_weights_round_trip_to_keras(keras_seed_cnn):
    params = zoo.init_variables(zoo.create_model("seed_cnn"), jax.random.key(1))["params"]
    weights = params_to_keras(params)
    chex.assert_trees_all_equal(params_from_keras(params, weights), params)
    assert [w.shape for w in weights] == [tuple(w.shape) for w in keras_seed_cnn.get_weights()]


def test_keras_weights_of_another_model_are_rejected():
    template = zoo.init_variables(zoo.create_model("seed_cnn"), jax.random.key(0))["params"]
    with pytest.raises(ValueError, match="the Keras model has 2 weight arrays, this zoo model expects 8"):
        params_from_keras(template, [np.zeros((3, 3)), np.zeros(3)])
    weights = params_to_keras(template)
    weights[2] = np.zeros((3, 3, 32, 16), np.float32)
    with pytest.raises(ValueError, match=r"conv_1/kernel has shape \(3, 3, 32, 16\), expected \(3, 3, 32, 64\)"):
        params_from_keras(template, weights)


def test_conv_implementations_agree_on_outputs_and_gradients():
    x = jax.random.uniform(jax.random.key(5), (4, 28, 28, 1))
    y = jnp.arange(4) % 10
    fast, ref = zoo.create_model("seed_cnn"), zoo.create_model("seed_cnn", conv_impl="xla")
    params = zoo.init_variables(fast, jax.random.key(0))["params"]

    def loss(model):
        def f(p):
            logits = model.apply({"params": p}, x, train=False)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], -1))
        return jax.jit(jax.value_and_grad(f))(params)

    chex.assert_trees_all_close(loss(fast), loss(ref), atol=1e-5, rtol=1e-4)


def test_wrong_channel_count_names_the_expected_layout():
    model = zoo.create_model("seed_cnn")
    variables = zoo.init_variables(model, jax.random.key(0))
    with pytest.raises(ValueError, match=r"seed_cnn expects input \[B, H, W, C\] = \[B, 28, 28, 1\], got shape \(2, 28, 28, 3\)"):
        model.apply(variables, jnp.ones((2, 28, 28, 3)), train=False)
    with pytest.raises(ValueError, match="real-valued numeric input"):
        model.apply(variables, jnp.ones((2, 28, 28, 1), jnp.complex64), train=False)
