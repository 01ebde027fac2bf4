"""Zoo models from Flax NNX: ``nnx.bridge.ToNNX`` + ``nnx.Optimizer``, NNX's defaults unchanged (README recipe)."""

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx

import zoo
from zoo.tasks import task_for


@pytest.mark.parametrize("name", ["bert_nano", "resnet_tiny"])
def test_to_nnx_trains_with_nnx_optimizer(name):
    assert nnx.using_eager_sharding()  # NNX's default: zoo must not need it switched off
    linen_model = zoo.create_model(name)
    batch = task_for(linen_model).example_batch(linen_model.config, jax.random.key(1), 8)
    x, y = batch["inputs"], batch["label"]

    model = nnx.bridge.ToNNX(linen_model, rngs=nnx.Rngs(params=0, dropout=1)).lazy_init(x, train=False)
    mutable = ["batch_stats"] if nnx.state(model, nnx.BatchStat) else False  # BatchNorm models
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            logits = model(x, train=True, mutable=mutable)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    stats_before = jax.tree.map(jnp.copy, nnx.state(model, nnx.BatchStat))
    losses = [float(train_step(model, optimizer, x, y)) for _ in range(4)]
    assert losses[-1] < losses[0] - 0.02, losses
    if mutable:  # training moved the running statistics, as zoo.train.train_step does
        moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), nnx.state(model, nnx.BatchStat), stats_before)
        assert min(jax.tree.leaves(moved)) > 0
    logits = model(x, train=False)
    assert logits.shape == task_for(linen_model).output_shape(linen_model.config, 8) and bool(jnp.isfinite(logits).all())
