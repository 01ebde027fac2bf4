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
    x, w = jnp.ones((1, 6, 6, 32)), jnp.ones((3, 3, 32, 8))
    auto = str(jax.make_jaxpr(lambda x, w: conv2d(x, w, impl="auto"))(x, w))
    xla = str(jax.make_jaxpr(lambda x, w: conv2d(x, w, impl="xla"))(x, w))
    assert "conv_general_dilated" in xla and "custom_vjp" not in xla
    if jax.default_backend() == "cpu":
        assert "custom_vjp" in auto
        # 16 input channels: rows too short for the gather-GEMM path, so lax.conv
        x16, w16 = jnp.ones((1, 6, 6, 16)), jnp.ones((3, 3, 16, 8))
        assert str(jax.make_jaxpr(lambda x, w: conv2d(x, w, impl="auto"))(x16, w16)) == str(
            jax.make_jaxpr(lambda x, w: conv2d(x, w, impl="xla"))(x16, w16))
    else:
        assert auto == xla
    with pytest.raises(ValueError, match="conv impl must be one of"):
        conv2d(x, w, impl="winograd")


# ResNet's convolutions: 7x7 stride 2 pad 3 stem, 3x3 stride 1/2 pad 1, 1x1 stride 2 shortcut; also SAME with stride
@pytest.mark.parametrize("shape, kernel, strides, padding", [
    ((2, 32, 32, 3), (7, 7, 3, 8), 2, 3),
    ((2, 28, 28, 1), (7, 7, 1, 4), 2, 3),
    ((2, 9, 9, 6), (3, 3, 6, 5), 1, 1),
    ((2, 9, 9, 6), (3, 3, 6, 5), 2, 1),
    ((2, 8, 8, 2), (3, 3, 2, 4), 2, 1),  # few channels: the elementwise path with a stride
    ((2, 9, 9, 6), (1, 1, 6, 7), 2, 0),
    ((2, 8, 8, 6), (1, 1, 6, 7), 1, 0),
    ((1, 10, 7, 3), (3, 2, 3, 4), (2, 1), ((1, 0), (0, 2))),
    ((2, 9, 10, 4), (3, 3, 4, 4), 2, "SAME"),
])
def test_strided_padded_conv_equals_xla_values_and_gradients(shape, kernel, strides, padding):
    kx, kk, kg = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kk, kernel) * 0.3
    sw = (strides, strides) if isinstance(strides, int) else strides
    pads = padding if isinstance(padding, str) else (
        ((padding, padding),) * 2 if isinstance(padding, int) else padding)
    ref = lax.conv_general_dilated(x, w, sw, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out = jax.jit(lambda x, w: conv2d(x, w, strides=strides, padding=padding, impl="matmul"))(x, w)
    chex.assert_shape(out, ref.shape)
    chex.assert_trees_all_close(out, ref, atol=1e-4, rtol=1e-4)
    cot = jax.random.normal(kg, ref.shape)

    def grads(impl):
        return jax.jit(jax.grad(lambda x, w: jnp.sum(conv2d(x, w, strides=strides, padding=padding, impl=impl) * cot),
                                argnums=(0, 1)))(x, w)

    ref_grads = jax.grad(lambda x, w: jnp.sum(lax.conv_general_dilated(
        x, w, sw, pads, dimension_numbers=("NHWC", "HWIO", "NHWC")) * cot), argnums=(0, 1))(x, w)
    chex.assert_trees_all_close(grads("matmul"), ref_grads, atol=1e-3, rtol=1e-4)
    chex.assert_trees_all_close(grads("xla"), ref_grads, atol=1e-3, rtol=1e-4)


def test_conv_layer_with_stride_and_torch_padding():
    layer = Conv2D(4, 7, strides=2, padding=3, use_bias=False)
    x = jnp.ones((1, 32, 32, 3))
    variables = layer.init(jax.random.key(0), x)
    assert set(variables["params"]) == {"kernel"}
    chex.assert_shape(layer.apply(variables, x), (1, 16, 16, 4))


@pytest.mark.parametrize("strides, padding, message", [
    (0, 0, "strides must be a positive int"),
    (1, -1, "padding must be"),
    (1, "FULL", "padding must be"),
    (1, ((1, 1),), "padding must be"),
])
def test_conv_bad_strides_or_padding(strides, padding, message):
    with pytest.raises(ValueError, match=message):
        conv2d(jnp.ones((1, 8, 8, 2)), jnp.ones((3, 3, 2, 2)), strides=strides, padding=padding)


@pytest.mark.parametrize("shape, window, strides, padding", [
    ((2, 16, 16, 8), 3, 2, 1),  # ResNet's stem pool
    ((2, 15, 15, 4), 3, 2, 1),
    ((1, 9, 7, 3), 3, 1, 1),
    ((2, 10, 10, 4), 3, 2, 0),
])
def test_overlapping_max_pool_equals_reduce_window(shape, window, strides, padding):
    x = jax.random.normal(jax.random.key(0), shape)

    def reference(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, window, window, 1), (1, strides, strides, 1),
                                 ((0, 0), (padding, padding), (padding, padding), (0, 0)))

    ref = reference(x)
    out = jax.jit(lambda x: max_pool(x, window, strides=strides, padding=padding))(x)
    chex.assert_trees_all_equal(out, ref)
    cot = jax.random.normal(jax.random.key(1), ref.shape)
    g_ref = jax.grad(lambda x: jnp.sum(reference(x) * cot))(x)
    g = jax.jit(jax.grad(lambda x: jnp.sum(max_pool(x, window, strides=strides, padding=padding) * cot)))(x)
    chex.assert_trees_all_close(g, g_ref, atol=1e-6)


def test_max_pool_bad_arguments():
    with pytest.raises(ValueError, match="padding must be less than half the window"):
        max_pool(jnp.ones((1, 8, 8, 1)), 3, strides=2, padding=2)
    with pytest.raises(ValueError, match="strides must be an int >= 1"):
        max_pool(jnp.ones((1, 8, 8, 1)), 3, strides=0)

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
