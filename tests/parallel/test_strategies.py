"""Every strategy trains like one device: same losses and parameters (8 simulated CPU devices).

Every architecture, as its smallest registry variant (``CONFORMANCE_MAX_PARAMS``), runs under pmap, dp, fsdp and tp, the
BatchNorm models included, against one cached single-device run per model; three models (``FULL_MATRIX``)
also run the combinations dp+tp, fsdp+tp, dp+fsdp and dp+fsdp+tp (2 x 2 x 2: all three mesh axes at once).
A model whose widths the tensor axis does not divide gets the clear error instead.  Known
families get narrower widths / fewer layers (compile time) and the seed CNN ``lax.conv``
(its GEMM convolution's gradient is sensitive to 1e-8 input changes, which grow to ~1e-3
in two SGD steps on one device as well), so the comparison measures the strategy, not
that noise.

Dropout stays on for the jit strategies (their masks are the single-device masks); under pmap each device draws
its own masks, so dropout is off there.
"""

import dataclasses
import functools

import jax
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

import zoo
from zoo.tasks import task_for
from zoo.parallel import ParallelConfig
from zoo.train import make_run_strategy

MODELS = zoo.registry.conformance_models()
TINY = {"seed_cnn": {"conv_impl": "xla", "features": (8, 16), "mlp_dim": 32},
        "vit_micro": {"num_layers": 1},
        "seed_lstm": {"unroll": 1, "hidden_sizes": (16, 16)},
        "bert_nano": {"num_layers": 1, "input_shape": (16,)},
        "gpt2_tiny": {"num_layers": 1, "input_shape": (32,)},
        # lax.conv: the CPU GEMM conv's float sums differ with the batch split (see the issue-4 note)
        "resnet_tiny": {"conv_impl": "xla"},
        # its augmentation draws from the dropout key: off, as dropout is under pmap
        "kws_tiny": {"conv_impl": "xla", "max_shift": 0, "noise_snr_db": None, "time_masks": 0, "freq_masks": 0},
        "tts_fsdd": {"hidden_size": 8, "num_upsample": 2, "frames": 16, "num_mels": 8},
        "lstm_seq2seq_tiny": {"unroll": 1}}
# per-device random draws besides dropout, turned off with dropout under pmap (each device draws its own)
NOISE_FIELDS = ("latent_noise",)
BATCH, STEPS = 16, 2

JIT = {"dp": ParallelConfig(strategy="dp"), "fsdp": ParallelConfig(strategy="fsdp"),
       "tp": ParallelConfig(strategy="tp"), "dp+tp": ParallelConfig(strategy="dp+tp", tensor=2),
       "fsdp+tp": ParallelConfig(strategy="fsdp+tp", tensor=4),
       "dp+fsdp": ParallelConfig(strategy="dp+fsdp", data=2),
       "dp+fsdp+tp": ParallelConfig(strategy="dp+fsdp+tp", data=2, fsdp=2, tensor=2)}


# Every model under the strategies that place its own parameters differently (dp, fsdp, tp, pmap); the
# combinations of mesh axes exercise the strategy code, not the model, so they run on three models that
# cover its paths: the MLP (Megatron layout, checked below), a transformer with dropout, and BatchNorm.
PER_MODEL = ("dp", "fsdp", "tp", "pmap")
FULL_MATRIX = ("mlp", "bert_nano", "resnet_tiny")
CASES = [(m, s) for m in MODELS for s in ([*JIT, "pmap"] if m in FULL_MATRIX else PER_MODEL)]


def _model(name, no_dropout=False):
    overrides = dict(TINY.get(name, {}))
    if no_dropout:
        config = zoo.get_config(name)
        overrides.update({f.name: 0.0 for f in dataclasses.fields(config)
                          if "dropout" in f.name or f.name in NOISE_FIELDS})
    return zoo.create_model(name, **overrides)


def _run(model, parallel, initial=None):
    tx = optax.sgd(0.05, momentum=0.9)
    strategy = make_run_strategy(parallel, model, tx, seed=0, batch_size=BATCH)
    # the single-device run's initial state, laid out for this strategy (one compile fewer;
    # creating the state sharded is tested in test_sharding.py)
    state = strategy.create_state() if initial is None else strategy.place(initial)
    losses = []
    for step in range(STEPS):
        batch = jax.device_get(task_for(model).example_batch(model.config, jax.random.key(step), BATCH))
        state, metrics = strategy.train_step(state, batch)
        losses.append(float(metrics["loss"]))
    return strategy, state, np.array(losses)


@functools.lru_cache(maxsize=None)
def _single(name, no_dropout):
    """(initial state on the host, items after training, losses) on one device."""
    model = _model(name, no_dropout)
    initial = jax.device_get(make_run_strategy(ParallelConfig(), model, optax.sgd(0.05, momentum=0.9), seed=0,
                                               batch_size=BATCH).create_state())
    _, state, losses = _run(model, ParallelConfig(), initial)
    return initial, jax.device_get(state.checkpoint_items()), losses


def _assert_same(tree, ref):
    """float32 agreement: every value within 1e-5 relative, or 1e-5 of the tree's largest value.

    The second bound is for values that are sums with heavy cancellation (e.g.
    a zero-initialised bias after two steps): their rounding differs with the
    order of the reduction over the batch, which is what splitting it changes.
    """
    scale = max(float(np.max(np.abs(b))) for b in jax.tree.leaves(ref) if np.size(b))
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(tree)[0], jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale, err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("name, strategy", CASES)
def test_strategy_matches_single_device(name, strategy):
    pmap = strategy == "pmap"
    initial, ref_items, ref_losses = _single(name, pmap)
    parallel = ParallelConfig(strategy="pmap") if pmap else JIT[strategy]
    try:
        runner, state, losses = _run(_model(name, pmap), parallel, initial)
    except ValueError as e:  # a model whose widths the tensor axis does not split evenly: said clearly
        if pmap and task_for(_model(name)).batch_coupled:  # in-batch negatives: pmap refuses the task
            assert "the pmap strategy splits each batch per device" in str(e) and "in-batch negatives" in str(e)
            return
        assert "tensor axis of size" in str(e) and "does not divide" in str(e)
        return
    assert not (pmap and task_for(_model(name)).batch_coupled), "pmap must refuse a batch-coupled task"
    assert runner.data_parallel * (1 if pmap else runner.mesh.shape["tensor"]) > 1
    items = jax.device_get(runner.checkpoint_items(state))
    if pmap and jax.tree.leaves(ref_items["model_state"]):
        # BatchNorm under pmap normalises with each device's own statistics (documented; dp is exact),
        # so only the replicas' agreement below holds.
        assert np.isfinite(losses).all()
    else:
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
        _assert_same({k: items[k] for k in ("params", "model_state")},
                     {k: ref_items[k] for k in ("params", "model_state")})
        np.testing.assert_array_equal(items["step"], STEPS)
    if pmap:  # every device holds the same state
        for leaf in jax.tree.leaves(jax.device_get(state.params)):
            np.testing.assert_array_equal(leaf, np.broadcast_to(leaf[0], leaf.shape))
    else:  # the arrays really are laid out on the mesh, as resolved
        assert {d for leaf in jax.tree.leaves(state.params) for d in leaf.sharding.device_set} == set(
            runner.mesh.devices.flat)
        for leaf, sharding in zip(jax.tree.leaves(state.params), jax.tree.leaves(runner.state_shardings.params)):
            assert leaf.sharding.is_equivalent_to(sharding, leaf.ndim)
    if (name, strategy) == ("mlp", "tp"):  # Megatron-style: the hidden side of each layer is split
        assert state.params["hidden_0"]["kernel"].sharding.spec == P(None, "tensor")  # [embed, mlp]
        assert state.params["head"]["kernel"].sharding.spec == P("tensor", None)  # [mlp, classes]
        assert state.params["head"]["kernel"].addressable_shards[0].data.shape == (16, 10)
