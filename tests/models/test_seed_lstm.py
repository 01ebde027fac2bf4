"""The seed LSTM: parameter count arithmetic, parity with Keras and with torch.nn.LSTM."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.layers import LSTM
from zoo.models.seed.keras import params_from_keras


def test_parameter_count_matches_keras_arithmetic():
    lstm_0 = 4 * (128 * (10 + 128) + 128)  # 71,168
    lstm_1 = 4 * (128 * (128 + 128) + 128)  # 131,584
    head = 128 * 10 + 10  # 1,290
    assert lstm_0 + lstm_1 + head == 204_042
    assert zoo.param_count("seed_lstm") == 204_042
    params = zoo.init_variables(zoo.create_model("seed_lstm"), jax.random.key(0))["params"]
    chex.assert_shape([params["lstm_0"]["kernel"], params["lstm_0"]["recurrent_kernel"], params["lstm_0"]["bias"]],
                      [(10, 512), (128, 512), (512,)])
    # Keras's unit_forget_bias: forget-gate bias starts at one.
    np.testing.assert_array_equal(params["lstm_1"]["bias"][128:256], 1.0)
    np.testing.assert_array_equal(params["lstm_1"]["bias"][:128], 0.0)


@pytest.fixture(scope="module")
def keras_seed_lstm():
    import keras
    from keras.layers import LSTM as KerasLSTM, Dense

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((10, 10)),
        KerasLSTM(128, return_sequences=True),
        KerasLSTM(128),
        Dense(10, activation="softmax"),
    ])


def test_keras_reports_the_same_parameter_count(keras_seed_lstm):
    assert keras_seed_lstm.count_params() == 204_042


def test_forward_parity_with_keras_on_the_same_weights(keras_seed_lstm):
    model = zoo.create_model("seed_lstm")
    template = zoo.init_variables(model, jax.random.key(0))["params"]
    params = params_from_keras(template, keras_seed_lstm.get_weights())
    x = np.random.default_rng(0).standard_normal((16, 10, 10)).astype(np.float32)
    expected = np.asarray(keras_seed_lstm.predict(x, verbose=0))
    probs = jax.nn.softmax(model.apply({"params": params}, x, train=False))
    chex.assert_trees_all_close(np.asarray(probs), expected, atol=1e-5, rtol=1e-4)


def test_lstm_layer_parity_with_torch_nn_lstm():
    import torch
    torch.manual_seed(0)
    ref = torch.nn.LSTM(10, 32, batch_first=True)
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    # torch: weight_ih [4H, D], weight_hh [4H, H], two biases; gate order i, f, g, o == Keras's i, f, c, o
    params = {"kernel": sd["weight_ih_l0"].T, "recurrent_kernel": sd["weight_hh_l0"].T,
              "bias": sd["bias_ih_l0"] + sd["bias_hh_l0"]}
    x = np.random.default_rng(1).standard_normal((5, 7, 10)).astype(np.float32)
    expected, _ = ref(torch.from_numpy(x))
    ours = LSTM(32, return_sequences=True).apply({"params": params}, x)
    chex.assert_trees_all_close(np.asarray(ours), expected.detach().numpy(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("unroll", [True, 2], ids=["unrolled", "scan"])
def test_lstm_gradients_match_a_plain_reference(unroll):
    """The layer's gradients equal autodiff of a straightforward Python-loop LSTM, on both code paths."""
    layer = LSTM(16, return_sequences=True, unroll=unroll)
    x = jax.random.normal(jax.random.key(0), (3, 6, 5))
    params = jax.tree.map(lambda a: a + 0.1, nn.meta.unbox(layer.init(jax.random.key(1), x)["params"]))

    def reference(p, x):
        h = c = jnp.zeros((x.shape[0], 16))
        outs = []
        for t in range(x.shape[1]):
            z = x[:, t] @ p["kernel"] + h @ p["recurrent_kernel"] + p["bias"]
            i, f, g, o = jnp.split(z, 4, -1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            outs.append(h)
        return jnp.stack(outs, 1)

    weights = jax.random.normal(jax.random.key(2), (3, 6, 16))
    ours = jax.grad(lambda p, x: jnp.sum(layer.apply({"params": p}, x) * weights), argnums=(0, 1))(params, x)
    theirs = jax.grad(lambda p, x: jnp.sum(reference(p, x) * weights), argnums=(0, 1))(params, x)
    chex.assert_trees_all_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_wrong_sequence_shape_is_a_clear_error():
    model = zoo.create_model("seed_lstm")
    variables = zoo.init_variables(model, jax.random.key(0))
    with pytest.raises(ValueError, match=r"seed_lstm expects input \[B, T, D\] = \[B, 10, 10\], got shape \(4, 12, 10\)"):
        model.apply(variables, jnp.ones((4, 12, 10)), train=False)
