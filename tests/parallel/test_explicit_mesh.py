"""Models under a plain ``jax.make_mesh`` (Explicit axes, JAX's default) on the 8 simulated devices.

A user who writes ``with jax.set_mesh(jax.make_mesh((8,), ("data",)))`` and shards the
batch gets the same numbers as with no mesh, outputs sharded on the batch; zoo's logical
axis rules (the ``zoo.parallel`` strategies) need Auto axes and say so in one line.
"""

import chex
import flax.linen as nn
import jax
import optax
import pytest
from jax.sharding import AxisType, PartitionSpec as P

from zoo import registry
from zoo.models import gpt2
from zoo.tasks import task_for

BATCH = 8


def _loss_fn(model):
    def loss(params, rest, x, y):
        out, updates = model.apply({"params": params, **rest}, x, train=True, rngs={"dropout": jax.random.key(3)},
                                   mutable=["batch_stats"])
        out = out.reshape(-1, out.shape[-1])
        return optax.softmax_cross_entropy_with_integer_labels(out, y.reshape(-1)).mean(), (out, updates)
    return jax.jit(jax.value_and_grad(loss, has_aux=True))


def _forward_and_grad(name, mesh):
    model = registry.create_model(name)
    variables = registry.init_variables(model, jax.random.key(0))
    params, rest = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    task = task_for(model)
    batch = task.example_batch(model.config, jax.random.key(1), BATCH)
    x, _ = task.model_inputs(batch)
    y = batch["label"] if "label" in batch else batch["tokens"][:, 1:]  # causal LM: the next tokens
    step = _loss_fn(model)
    evaluate = jax.jit(lambda v, x: model.apply(v, x, train=False))
    if mesh is None:
        return evaluate(variables, x), step(params, rest, x, y)
    with jax.set_mesh(mesh):
        x, y = jax.device_put((x, y), P("data"))
        return evaluate(variables, x), step(params, rest, x, y)


@pytest.mark.parametrize("name, shape", [("bert_nano", (8,)), ("gpt2_tiny", (2, 4)), ("seed_cnn", (8,)),
                                         ("resnet_tiny", (2, 4))])
def test_forward_and_grad_match_no_mesh(name, shape):
    mesh = jax.make_mesh(shape, ("data", "model")[:len(shape)])
    assert set(mesh.axis_types) == {AxisType.Explicit}  # what a plain make_mesh gives today
    logits, ((loss, (_, updates)), grads) = _forward_and_grad(name, mesh)
    ref_logits, ((ref_loss, (_, ref_updates)), ref_grads) = _forward_and_grad(name, None)
    assert logits.sharding.spec[0] == "data"  # the batch stays where the input put it
    chex.assert_trees_all_close(logits, ref_logits, rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_close(loss, ref_loss, rtol=1e-5)
    chex.assert_trees_all_close(grads, ref_grads, rtol=1e-3, atol=1e-5)
    chex.assert_trees_all_close(updates, ref_updates, rtol=1e-4, atol=1e-6)  # BatchNorm's running statistics


def test_generate_with_a_sharded_prompt():
    model = registry.create_model("gpt2_tiny")
    variables = registry.init_variables(model, jax.random.key(0))
    prompt = jax.random.randint(jax.random.key(1), (BATCH, 4), 0, model.config.vocab_size)
    ref = gpt2.generate(model, variables, prompt, 3, temperature=0.0)
    with jax.set_mesh(jax.make_mesh((8,), ("data",))):
        ids = gpt2.generate(model, variables, jax.device_put(prompt, P("data")), 3, temperature=0.0)
    chex.assert_trees_all_equal(ids, ref)


def test_logical_rules_under_explicit_axes_say_to_use_auto_axes():
    model = registry.create_model("seed_cnn")
    x = registry.example_input(model.config, BATCH)
    with jax.set_mesh(jax.make_mesh((8,), ("data",))), nn.logical_axis_rules([("batch", "data")]):
        with pytest.raises(ValueError, match=r"axis_types=\(jax.sharding.AxisType.Auto,\) \* len\(shape\)"):
            model.init(jax.random.key(0), x)
