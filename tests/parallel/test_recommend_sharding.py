"""DLRM's embedding tables split over the tensor axis (8 simulated devices), training as on one device."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

import zoo
from zoo.parallel import ParallelConfig
from zoo.tasks import get_task
from zoo.train import make_run_strategy

BATCH, STEPS = 16, 3


def _batch(model):
    batch = jax.device_get(get_task("ranking").example_batch(model.config, jax.random.key(0), BATCH))
    batch["dense"] = np.asarray(jax.random.normal(jax.random.key(1), (BATCH, model.config.num_dense)))
    return batch


def test_dlrm_tables_shard_over_tensor_and_tp_matches_one_device():
    model = zoo.create_model("dlrm_tiny", num_dense=4)  # 64 users, 96 items, 8-wide tables, bottom MLP over 4
    tx = optax.adam(1e-2)
    single = make_run_strategy(ParallelConfig(), model, tx, seed=0, batch_size=BATCH)
    initial = jax.device_get(single.create_state())
    tp = make_run_strategy(ParallelConfig(strategy="tp"), model, tx, seed=0, batch_size=BATCH)
    assert tp.mesh.shape["tensor"] == 8
    state_1, state_tp = single.place(initial), tp.place(initial)
    for name, rows in (("user_embedding", 64), ("item_embedding", 96)):
        table = state_tp.params[name]
        assert table.sharding.spec == P("tensor", None)  # rows split: (vocab, embed) -> (tensor, -)
        assert {s.data.shape for s in table.addressable_shards} == {(rows // 8, 8)}
    losses_1, losses_tp = [], []
    batch = _batch(model)
    for _ in range(STEPS):  # the same batch: its loss must fall
        state_1, m1 = single.train_step(state_1, batch)
        state_tp, mtp = tp.train_step(state_tp, batch)
        losses_1.append(float(m1["loss"]))
        losses_tp.append(float(mtp["loss"]))
    np.testing.assert_allclose(losses_tp, losses_1, rtol=1e-5)
    assert losses_1[-1] < losses_1[0]
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(jax.device_get(state_tp.params))[0],
                            jax.tree.leaves(jax.device_get(state_1.params))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=jax.tree_util.keystr(path))


def test_out_of_table_ids_are_refused_with_the_id_and_table_size():
    import pytest

    model = zoo.create_model("dlrm_tiny")
    variables = zoo.init_variables(model, jax.random.key(0))
    with pytest.raises(ValueError, match=r"dlrm_tiny: item id 96 is outside the item table of num_items=96 rows"):
        model.apply(variables, jnp.array([[0, 5], [1, 96]], jnp.int32))
    with pytest.raises(ValueError, match=r"user id -1 is outside the user table of num_users=64"):
        model.apply(variables, jnp.array([[-1, 5]], jnp.int32))
    with pytest.raises(ValueError, match=r"dlrm_tiny has num_dense=0 and takes no dense features"):
        model.apply(variables, jnp.array([[0, 5]], jnp.int32), dense=jnp.ones((1, 3)))
