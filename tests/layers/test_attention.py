"""Attention and the shared transformer blocks against reference formulas and PyTorch."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from zoo.layers import (Embed, FeedForward, LayerNorm, MultiHeadAttention, TransformerBlock, axes, causal_mask,
                        combine_masks, dot_product_attention, padding_mask)

B, T, N, H = 2, 7, 3, 4


def numpy_attention(q, k, v, mask):
    """softmax(Q Kᵀ / sqrt(H)) V written out in float64 numpy (seed §3.4)."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
    logits = np.where(np.broadcast_to(mask, logits.shape), logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", w, v)


@pytest.fixture(scope="module")
def qkv():
    kq, kk, kv = jax.random.split(jax.random.key(0), 3)
    shape = (B, T, N, H)
    return jax.random.normal(kq, shape), jax.random.normal(kk, shape), jax.random.normal(kv, shape)


LENGTHS = np.array([7, 4])  # the second example has 3 padding positions
PAD = padding_mask(np.arange(T)[None, :] < LENGTHS[:, None])


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("impl", ["explicit", "dot_product"])
def test_attention_matches_the_formula_with_padding_and_causal_masks(qkv, impl, causal):
    q, k, v = qkv
    out = dot_product_attention(q, k, v, PAD, causal=causal, impl=impl)
    full_mask = np.asarray(combine_masks(PAD, causal_mask(T) if causal else None))
    expected = numpy_attention(q, k, v, full_mask)
    np.testing.assert_allclose(out, expected, atol=2e-6)


def test_both_impls_agree_and_masked_keys_have_no_influence(qkv):
    q, k, v = qkv
    a = dot_product_attention(q, k, v, PAD, causal=True, impl="explicit")
    b = dot_product_attention(q, k, v, PAD, causal=True, impl="dot_product")
    np.testing.assert_allclose(a, b, atol=1e-6)
    # changing padded keys / values (example 1, positions >= 4) changes nothing
    k2, v2 = k.at[1, 4:].set(100.0), v.at[1, 4:].set(-100.0)
    np.testing.assert_allclose(dot_product_attention(q, k2, v2, PAD, impl="explicit"),
                               dot_product_attention(q, k, v, PAD, impl="explicit"), atol=1e-6)


def test_causal_attention_with_fewer_queries_than_keys_uses_the_last_positions(qkv):
    q, k, v = qkv
    full = dot_product_attention(q, k, v, causal=True)
    for impl in ("explicit", "dot_product"):
        tail = dot_product_attention(q[:, -2:], k, v, causal=True, impl=impl)
        np.testing.assert_allclose(tail, full[:, -2:], atol=1e-6)


def test_attention_dropout_is_on_the_weights_and_reproducible(qkv):
    q, k, v = qkv
    kw = dict(dropout_rate=0.5, deterministic=False, dropout_rng=jax.random.key(1))
    a, b = dot_product_attention(q, k, v, **kw), dot_product_attention(q, k, v, **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, dot_product_attention(q, k, v))
    # dropout on the weights: with all values 1 the output is (kept weight mass) / (1 - rate), 1 on average
    out = np.asarray(dot_product_attention(q, k, jnp.ones_like(v), **kw))
    assert np.all(out >= 0) and abs(out.mean() - 1.0) < 0.15 and out.std() > 0.1
    np.testing.assert_allclose(dot_product_attention(q, k, jnp.ones_like(v)), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="no dropout on the attention weights"):
        dot_product_attention(q, k, v, impl="dot_product", **kw)


def test_bad_shapes_and_impl_are_clear_errors(qkv):
    q, k, v = qkv
    with pytest.raises(ValueError, match=r"expected query \[B, T, N, H\]"):
        dot_product_attention(q[0], k, v)
    with pytest.raises(ValueError, match="impl must be one of"):
        dot_product_attention(q, k, v, impl="flash")
    with pytest.raises(ValueError, match=r"attention_mask must be \[B, S\]"):
        padding_mask(np.ones((2, 3, 4)))


@pytest.fixture(scope="module")
def mha():
    module = MultiHeadAttention(num_heads=N, causal=True)
    x = jax.random.normal(jax.random.key(2), (B, T, N * H))
    variables = module.init(jax.random.key(3), x)
    return module, variables, x


def test_mha_params_carry_logical_axis_names(mha):
    module, variables, x = mha
    specs = nn.get_partition_spec(variables)["params"]
    assert tuple(specs["query"]["kernel"]) == (axes.EMBED, axes.HEADS, axes.KV)
    assert tuple(specs["out"]["kernel"]) == (axes.HEADS, axes.KV, axes.EMBED)
    block = TransformerBlock(num_heads=N, mlp_dim=16)
    block_vars = jax.eval_shape(block.init, jax.random.key(0), x)
    for path, leaf in jax.tree_util.tree_leaves_with_path(block_vars, is_leaf=lambda x: isinstance(
            x, nn.LogicallyPartitioned)):
        assert isinstance(leaf, nn.LogicallyPartitioned), path
        assert len(leaf.names) == leaf.value.ndim and None not in leaf.names, path


def test_mha_impls_agree_and_match_manual_projections(mha):
    module, variables, x = mha
    params = nn.meta.unbox(variables)["params"]
    out = module.apply(variables, x)
    other = MultiHeadAttention(num_heads=N, causal=True, impl="dot_product").apply(variables, x)
    np.testing.assert_allclose(out, other, atol=1e-5)

    def proj(name):
        return np.einsum("btd,dnh->btnh", x, params[name]["kernel"]) + params[name]["bias"]

    heads = numpy_attention(proj("query"), proj("key"), proj("value"), np.asarray(causal_mask(T)))
    expected = np.einsum("btnh,nhd->btd", heads, params["out"]["kernel"]) + params["out"]["bias"]
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("impl", ["explicit", "dot_product"])
def test_kv_cache_decoding_equals_the_full_causal_pass(mha, impl):
    module, variables, x = mha
    module = module.clone(impl=impl)
    full = module.apply(variables, x)
    cache = module.init(jax.random.key(0), x, decode=True)["cache"]
    chex.assert_shape(cache["cached_key"], (B, T, N, H))
    params = {"params": variables["params"]}
    # a 3-token prefill, then one token at a time
    out, mutated = module.apply({**params, "cache": cache}, x[:, :3], decode=True, mutable=["cache"])
    pieces = [out]
    cache = mutated["cache"]
    for t in range(3, T):
        out, mutated = module.apply({**params, "cache": cache}, x[:, t:t + 1], decode=True, mutable=["cache"])
        pieces.append(out)
        cache = mutated["cache"]
    assert int(cache["cache_index"]) == T
    np.testing.assert_allclose(jnp.concatenate(pieces, 1), full, atol=1e-5)


def test_layer_norm_and_feed_forward_match_pytorch():
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32) * 3 + 1
    ln = LayerNorm(epsilon=1e-12)
    v = nn.meta.unbox(ln.init(jax.random.key(0), x))
    v = jax.tree.map(lambda a: a + np.linspace(0.1, 0.9, a.size, dtype=np.float32).reshape(a.shape), v)
    torch_ln = torch.nn.LayerNorm(8, eps=1e-12)
    with torch.no_grad():
        torch_ln.weight.copy_(torch.tensor(np.asarray(v["params"]["scale"])))
        torch_ln.bias.copy_(torch.tensor(np.asarray(v["params"]["bias"])))
        expected = torch_ln(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ln.apply(v, x), expected, atol=1e-5)

    for act, torch_act in (("gelu", torch.nn.GELU()), ("gelu_tanh", torch.nn.GELU(approximate="tanh"))):
        ffn = FeedForward(hidden_dim=16, activation=act)
        p = nn.meta.unbox(ffn.init(jax.random.key(1), x))["params"]
        h = x @ np.asarray(p["in"]["kernel"]) + np.asarray(p["in"]["bias"])
        expected = torch_act(torch.tensor(h)).numpy() @ np.asarray(p["out"]["kernel"]) + np.asarray(p["out"]["bias"])
        np.testing.assert_allclose(ffn.apply({"params": p}, x), expected, atol=1e-5)
    with pytest.raises(ValueError, match="activation must be one of"):
        FeedForward(hidden_dim=4, activation="swishy").init(jax.random.key(0), x)


def test_block_norm_placement_pre_and_post():
    x = jax.random.normal(jax.random.key(5), (B, T, 12))
    pre, post = TransformerBlock(num_heads=N, mlp_dim=24, norm="pre"), TransformerBlock(num_heads=N, mlp_dim=24,
                                                                                       norm="post")
    p = pre.init(jax.random.key(6), x)
    bound = {"params": nn.meta.unbox(p)["params"]}

    def sub(name, method_input):  # apply one submodule of the block with its params
        module = {"attention": MultiHeadAttention(num_heads=N), "mlp": FeedForward(hidden_dim=24),
                  "attention_norm": LayerNorm(), "mlp_norm": LayerNorm()}[name]
        return module.apply({"params": bound["params"][name]}, method_input)

    h = x + sub("attention", sub("attention_norm", x))
    np.testing.assert_allclose(pre.apply(bound, x), h + sub("mlp", sub("mlp_norm", h)), atol=1e-5)
    h = sub("attention_norm", x + sub("attention", x))
    np.testing.assert_allclose(post.apply(bound, x), sub("mlp_norm", h + sub("mlp", h)), atol=1e-5)
    with pytest.raises(ValueError, match="norm must be one of"):
        TransformerBlock(num_heads=N, mlp_dim=24, norm="sandwich").init(jax.random.key(0), x)


def test_embed_lookup_and_tied_attend():
    emb = Embed(num_embeddings=11, features=6)
    v = nn.meta.unbox(emb.init(jax.random.key(0), jnp.zeros((2, 3), jnp.int32)))
    table = np.asarray(v["params"]["embedding"])
    ids = np.array([[1, 5, 10], [0, 0, 3]], np.int32)
    np.testing.assert_array_equal(emb.apply(v, ids), table[ids])
    feats = np.ones((2, 6), np.float32)
    np.testing.assert_allclose(emb.apply(v, feats, method=Embed.attend), feats @ table.T, rtol=1e-6)
    with pytest.raises(ValueError, match="integer ids"):
        emb.apply(v, feats)
