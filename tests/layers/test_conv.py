"""Conv2D / max_pool: the GEMM formulation equals XLA's convolution, values and gradients."""

import chex
import jax
import jax.numpy as jnp
import pytest
from jax import lax

from zoo.layers import Conv2D, conv2d, max_pool


@pytest.mark.parametrize("shape, kernel, padding", [
    ((2, 28, 28, 1), (3, 3, 1, 32), "VALID"),
    ((3, 13, 13, 32), (3, 3, 32, 64), "VALID"),
    ((2, 9, 7, 5), (2, 4, 5, 6), "VALID"),
    ((2, 8, 8, 3), (3, 3, 3, 4), "SAME"),
    ((1, 6, 6, 2), (5, 5, 2, 3), "SAME"),
    ((4, 5, 5, 3), (1, 1, 3, 7), "VALID"),
])
def test_matmul_conv_equals_xla_conv_values_and_gradients(shape, kernel, padding):
    kx, kk, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kk, kernel) * 0.3
    ref = lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out = jax.jit(lambda x, w: conv2d(x, w, padding=padding))(x, w)
    chex.assert_shape(out, ref.shape)
    chex.assert_trees_all_close(out, ref, atol=1e-4, rtol=1e-4)
    cot = jax.random.normal(kg, ref.shape)

    def grads(impl):
        return jax.jit(jax.grad(lambda x, w: jnp.sum(conv2d(x, w, padding=padding, impl=impl) * cot),
                                argnums=(0, 1)))(x, w)

    chex.assert_trees_all_close(grads("matmul"), grads("xla"), atol=1e-3, rtol=1e-4)


def test_conv_bfloat16_compute():
    x = jax.random.normal(jax.random.key(0), (2, 10, 10, 4))
    w = jax.random.normal(jax.random.key(1), (3, 3, 4, 8)) * 0.2
    out = conv2d(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16))
    assert out.dtype == jnp.bfloat16
    chex.assert_trees_all_close(out.astype(jnp.float32), conv2d(x, w, impl="xla"), atol=0.1, rtol=0.05)
    g = jax.grad(lambda w: jnp.sum(conv2d(x.astype(jnp.bfloat16), w).astype(jnp.float32)))(w.astype(jnp.bfloat16))
    assert g.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(g.astype(jnp.float32))))


@pytest.mark.parametrize("x_shape, w_shape, message", [
    ((2, 8, 8), (3, 3, 1, 4), "x \\[B, H, W, C\\] and kernel"),
    ((2, 8, 8, 3), (3, 3, 2, 4), "matching C"),
    ((2, 2, 2, 3), (3, 3, 3, 4), "smaller than the kernel"),
])
def test_conv_bad_shapes(x_shape, w_shape, message):
    with pytest.raises(ValueError, match=message):
        conv2d(jnp.ones(x_shape), jnp.ones(w_shape))


def test_conv_layer_params_are_keras_layout():
    layer = Conv2D(16, (3, 5))
    variables = layer.init(jax.random.key(0), jnp.ones((1, 9, 9, 2)))
    params = jax.tree.map(lambda a: a, variables["params"])
    chex.assert_shape([params["kernel"].value, params["bias"].value], [(3, 5, 2, 16), (16,)])
    assert params["kernel"].names == ("conv_window", "conv_window", "conv_in", "conv_out")


@pytest.mark.parametrize("shape, window", [((2, 26, 26, 32), 2), ((2, 11, 11, 64), 2), ((1, 9, 7, 3), 3)])
def test_max_pool_equals_reduce_window_floor_mode(shape, window):
    x = jax.random.normal(jax.random.key(0), shape)
    ref = lax.reduce_window(x, -jnp.inf, lax.max, (1, window, window, 1), (1, window, window, 1), "VALID")
    out = max_pool(x, window)
    chex.assert_trees_all_equal(out, ref)
    cot = jax.random.normal(jax.random.key(1), ref.shape)
    g_ref = jax.grad(lambda x: jnp.sum(lax.reduce_window(x, -jnp.inf, lax.max, (1, window, window, 1),
                                                         (1, window, window, 1), "VALID") * cot))(x)
    g = jax.grad(lambda x: jnp.sum(max_pool(x, window) * cot))(x)
    chex.assert_trees_all_close(g, g_ref)  # random normals have no ties


def test_max_pool_window_too_large():
    with pytest.raises(ValueError, match="larger than the input"):
        max_pool(jnp.ones((1, 2, 2, 1)), 3)


def test_auto_impl_is_the_gemm_path_on_cpu_and_xla_conv_elsewhere():
    x, w = jnp.ones((1, 6, 6, 4)), jnp.ones((3, 3, 4, 8))
    auto = str(jax.make_jaxpr(lambda x, w: conv2d(x, w, impl="auto"))(x, w))
    xla = str(jax.make_jaxpr(lambda x, w: conv2d(x, w, impl="xla"))(x, w))
    assert "conv_general_dilated" in xla and "custom_vjp" not in xla
    if jax.default_backend() == "cpu":
        assert "custom_vjp" in auto
    else:
        assert auto == xla
    with pytest.raises(ValueError, match="conv impl must be one of"):
        conv2d(x, w, impl="winograd")


def test_jitted_conv_then_pool_gradient_matches_the_lax_reference():
    """Regression: the pool's argmax was `x == max(x)`; with the conv fused into both sides
    XLA rounded them differently and sent the gradient to wrong window positions."""
    import flax.linen as nn

    x = jax.random.normal(jax.random.key(0), (3, 28, 28, 1))
    k = jax.random.normal(jax.random.key(1), (3, 3, 1, 32))

    def ours(k, x):
        return (max_pool(conv2d(x, k, impl="matmul"), 2) ** 2).sum()

    def reference(k, x):
        y = jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return (nn.max_pool(y, (2, 2), (2, 2)) ** 2).sum()

    expected = jax.grad(reference)(k, x)
    chex.assert_trees_all_close(jax.jit(jax.grad(ours))(k, x), expected, rtol=1e-5, atol=1e-2)
