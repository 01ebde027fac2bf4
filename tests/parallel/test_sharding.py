"""Meshes, rules, parameter layouts, the memory report and the errors (8 simulated CPU devices)."""

import json

import jax
import optax
import pytest
from jax.sharding import PartitionSpec as P

import zoo
from zoo.cli import main
from zoo.parallel import DEFAULT_RULES, ParallelConfig, bytes_per_device, make_mesh
from zoo.train import make_run_strategy

TX = optax.adam(1e-3)


def _strategy(name="mlp", batch_size=16, **parallel):
    return make_run_strategy(ParallelConfig(**parallel), zoo.create_model(name), TX, 0, batch_size)


def test_mesh_sizes_follow_the_strategy_and_the_device_count():
    assert jax.device_count() == 8
    assert dict(make_mesh(ParallelConfig(strategy="fsdp")).shape) == {"data": 1, "fsdp": 8, "tensor": 1}
    assert dict(make_mesh(ParallelConfig(strategy="dp+tp", tensor=2)).shape) == {"data": 4, "fsdp": 1, "tensor": 2}
    assert dict(make_mesh(ParallelConfig(strategy="single")).shape) == {"data": 1, "fsdp": 1, "tensor": 1}
    assert make_mesh(ParallelConfig(strategy="tp", tensor=4)).devices.size == 4  # a mesh may use fewer devices


def test_fsdp_splits_parameters_and_optimizer_state_eightfold():
    strategy = _strategy(strategy="fsdp")
    state = strategy.create_state()
    total = sum(x.nbytes for x in jax.tree.leaves(jax.device_get(state.params)))
    assert total == 50_826 * 4
    per_device = sum(s.data.nbytes for x in jax.tree.leaves(state.params) for s in x.addressable_shards
                     if s.device == jax.devices()[0])
    assert per_device == bytes_per_device(strategy.abstract_state.params, strategy.state_shardings.params)
    # every parameter but the head's 10 biases (10 does not split 8 ways) is split 8 ways
    assert [r.path for r in strategy.replicated] == ["head/bias"]
    assert per_device == (total - 10 * 4) // 8 + 10 * 4
    assert state.params["hidden_0"]["kernel"].sharding.spec == P("fsdp", None)  # [embed, mlp]
    mu = state.opt_state[0].mu["hidden_0"]["kernel"]  # Adam's moments follow their parameter
    assert mu.sharding == state.params["hidden_0"]["kernel"].sharding
    assert mu.addressable_shards[0].data.shape == (8, 256)


def test_zoo_plan_reports_bytes_per_device_without_training(capsys):
    assert main(["plan", "mlp", "--parallel", "fsdp", "--batch-size", "16"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out.strip().splitlines()[-1])
    assert report["mesh"] == {"data": 1, "fsdp": 8, "tensor": 1}
    assert report["params_total_bytes"] == 50_826 * 4
    assert report["params_bytes_per_device"] == (50_826 * 4 - 40) // 8 + 40  # all but head/bias split 8 ways
    # Adam's mu and nu follow the parameters; its step count and the schedule's are int32 scalars
    assert report["optimizer_bytes_per_device"] == 2 * report["params_bytes_per_device"] + 2 * 4
    assert report["activation_bytes_per_device"] > 0
    assert report["replicated_params"] == ["head/bias"]
    assert "parameters" in out.err and "per device" in out.err and "head/bias" in out.err


def test_parameters_no_rule_splits_are_reported():
    rules = tuple(r for r in DEFAULT_RULES if r[0] != "classes")
    strategy = make_run_strategy(ParallelConfig(strategy="fsdp", fsdp=2, rules=rules), zoo.create_model("mlp"),
                                 TX, 0, 16)
    reasons = {r.path: r.reason for r in strategy.replicated}
    assert reasons == {"head/bias": "no rule for logical axes ['classes']"}


@pytest.mark.parametrize("parallel, batch_size, message", [
    ({"strategy": "dp"}, 12, "global batch size 12 is not divisible by the data-parallel size 8"),
    ({"strategy": "pmap"}, 12, "global batch size 12 is not divisible by the data-parallel size 8"),
    ({"strategy": "dp+tp", "data": 4, "tensor": 4}, 16, "the mesh data=4 x fsdp=1 x tensor=4 needs 16 devices, "
                                                         "but only 8 are available"),
    # a rule splitting the 10 classes: tensor parallelism must refuse it
    ({"strategy": "tp", "tensor": 8, "rules": tuple(r for r in DEFAULT_RULES if r[0] != "classes")
      + (("classes", "tensor"),)}, 16,
     "head/bias has dimension 0 \\('classes'\\) of size 10, which the tensor axis of size 8 does not divide"),
    ({"strategy": "dp+tp"}, 16, r"needs the sizes of \['data', 'tensor'\]"),
])
def test_clear_errors(parallel, batch_size, message):
    with pytest.raises(ValueError, match=message):
        _strategy(batch_size=batch_size, **parallel)


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "fsdp", "rules": (("embed", "model"),)}, "rule 0 maps logical axis 'embed' to unknown mesh axis "
                                                          "'model'; the mesh axes are"),
    ({"strategy": "dp", "tensor": 2}, "strategy 'dp' does not use the 'tensor' mesh axis"),
    ({"strategy": "zero3"}, "parallel strategy must be one of"),
    ({"strategy": "fsdp", "fsdp": 0}, "mesh size fsdp must be a positive int"),
])
def test_bad_parallel_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ParallelConfig(**kwargs)


def test_cli_reports_parallel_errors_in_one_line(capsys):
    assert main(["train", "mlp", "--steps", "1", "--batch-size", "12", "--parallel", "fsdp", "--no-progress",
                 "--workdir", "/nonexistent/never-created"]) == 2
    assert "zoo: error: the global batch size 12 is not divisible by the data-parallel size 8" in capsys.readouterr().err
