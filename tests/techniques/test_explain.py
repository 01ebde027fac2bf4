"""Explanations: saliency zero where the model looks away, integrated-gradient completeness, Grad-CAM."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.techniques.explain import explain_run, feature_map_layers, grad_cam, integrated_gradients, saliency


def test_saliency_is_exactly_zero_where_the_model_ignores_the_input(key):
    model = zoo.create_model("mlp", dropout_rate=0.0)
    variables = zoo.init_variables(model, key)
    # the first layer no longer reads pixels 0..23 (the top three rows of the 8x8 digit)
    kernel = variables["params"]["hidden_0"]["kernel"].at[:24].set(0.0)
    variables = {"params": {**variables["params"], "hidden_0": {**variables["params"]["hidden_0"],
                                                                 "kernel": kernel}}}
    x = zoo.random_input(model.config, jax.random.key(1), 5)
    s = np.asarray(jax.jit(lambda v, x: saliency(model, v, x))(variables, x))
    assert s.shape == (5, 64)
    assert np.all(s[:, :24] == 0.0)
    assert np.all(np.abs(s[:, 24:]).sum(1) > 0)


@pytest.fixture(scope="module")
def cnn(cnn_trained):
    x = jnp.asarray(cnn_trained.dataset.test["inputs"][:4])
    return cnn_trained.model, {"params": cnn_trained.state.params}, x


def test_integrated_gradients_are_complete(cnn):
    model, variables, x = cnn
    target = jnp.argmax(model.apply(variables, x), -1)  # explain the predictions, as `zoo explain` does
    ig = integrated_gradients(model, variables, x, steps=128)
    logits_x = model.apply(variables, x)[jnp.arange(4), target]
    logits_0 = model.apply(variables, jnp.zeros_like(x))[jnp.arange(4), target]
    gap = np.abs(np.asarray(ig.reshape(4, -1).sum(1) - (logits_x - logits_0)))
    assert np.all(gap <= 0.01 * np.abs(np.asarray(logits_x - logits_0))), (gap, logits_x - logits_0)


def test_grad_cam_on_the_last_conv_layer(cnn):
    model, variables, x = cnn
    assert feature_map_layers(model, variables, x) == [("conv_0",), ("conv_1",)]
    cam = np.asarray(grad_cam(model, variables, x))
    assert cam.shape == (4, 28, 28) and cam.min() >= 0 and np.allclose(cam.max(axis=(1, 2)), 1.0)
    with pytest.raises(ValueError, match="has no \\[B, H, W, C\\] output"):
        grad_cam(model, variables, x, layer=("head",))


def test_grad_cam_needs_a_feature_map(key):
    model = zoo.create_model("seed_lstm")
    with pytest.raises(ValueError, match="needs image inputs"):
        grad_cam(model, None, zoo.random_input(model.config, key, 2))


def test_bad_input_spec_is_a_clear_error(cnn_run, tmp_path):
    with pytest.raises(ValueError, match="indices must be in \\[0, 360\\)"):
        explain_run(cnn_run[0], "test:400", out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="holds a 'seed_cnn' run, not 'mlp'"):
        explain_run(cnn_run[0], "test:0", model="mlp")


def test_attention_maps_of_bert_and_gpt2(key, tmp_path):
    from zoo.techniques.explain import attention_maps, plot_attention

    bert = zoo.create_model("bert_nano")
    x = zoo.random_input(bert.config, key, 2).at[1, 5:].set(bert.config.pad_token_id)  # example 1: 5 tokens
    x = x.at[0].set(jnp.where(x[0] == bert.config.pad_token_id, 1, x[0]))  # example 0: no padding
    # jitted: eager flax init / apply of a transformer is slow on a CPU
    maps = jax.jit(lambda x: attention_maps(bert, zoo.init_variables(bert, key), x))(x)
    assert len(maps) == 2 and all(name.endswith("attention") or "attn" in name for name in maps), list(maps)
    for w in maps.values():
        t = x.shape[1]
        assert w.shape == (2, 2, t, t)
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
        assert float(jnp.abs(w[1, :, :, 5:]).max()) == 0.0  # nobody attends to padding
        assert float(w[0].min()) > 0.0
    gpt2 = zoo.create_model("gpt2_tiny")
    tokens = zoo.random_input(gpt2.config, key, 1)
    causal = jax.jit(lambda x: attention_maps(gpt2, zoo.init_variables(gpt2, key), x))(tokens)
    assert len(causal) == 4
    w = next(iter(causal.values()))[0]  # [N, T, T]
    assert float(jnp.triu(w, k=1).max()) == 0.0 and float(w[:, 0, 0].min()) == 1.0  # no peeking ahead
    with open(plot_attention(maps, str(tmp_path / "a.png"), example=1, length=5), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
