"""Two processes on localhost train like one, write one checkpoint jointly, resume together;
checkpoints restore under other meshes.

Each process has 4 simulated CPU devices and talks to the other through gloo;
``--parallel fsdp`` splits every parameter over all 8 devices, so each process
holds (and writes) half of each array and loads only its half of each batch.
"""

import glob
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

from zoo.parallel import ParallelConfig
from zoo.train import OptimizerConfig, TrainConfig, load_run, train_and_evaluate
from zoo.train.metrics import read_metrics

STEPS = 4
COMMON = dict(model="mlp", data="digits", batch_size=16, log_every=1, checkpoint_every=2,
              optimizer=OptimizerConfig(name="sgd", learning_rate=0.05))
CLI = ["train", "mlp", "--data", "digits", "--batch-size", "16", "--log-every", "1", "--checkpoint-every", "2",
       "--optimizer", "sgd", "--lr", "0.05", "--no-progress", "--parallel", "fsdp"]
# each process: train to step 2 (a joint checkpoint), then a second run resumes from it to step 4
DRIVER = ("import sys; from zoo.cli import main; a = sys.argv[1:]; "
          "assert main(a + ['--steps', '2']) == 0; assert main(a + ['--steps', '4']) == 0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    # a compilation cache lets each process's later (resuming) runs skip recompiling
    return {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
            "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def _start_two(driver, args, env):
    port = _free_port()
    return [subprocess.Popen([sys.executable, "-c", driver, *args, "--coordinator", f"localhost:{port}",
                              "--num-processes", "2", "--process-id", str(i)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for i in range(2)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, env):
    two = str(tmp_path_factory.mktemp("two_processes"))
    one = str(tmp_path_factory.mktemp("one_device"))
    procs = _start_two(DRIVER, [*CLI, "--workdir", two], env)
    # the one-process reference (one device) runs meanwhile
    train_and_evaluate(TrainConfig(steps=STEPS, **COMMON), one, progress=False)
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:]
    return two, one


def test_two_processes_train_the_losses_of_one(runs):
    two, one = runs
    rows = read_metrics(os.path.join(two, "metrics.jsonl"))
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # written once (process 0), across the resume
    ref = read_metrics(os.path.join(one, "metrics.jsonl"))
    np.testing.assert_allclose([r["train_loss"] for r in rows], [r["train_loss"] for r in ref], rtol=1e-5)
    np.testing.assert_allclose(rows[-1]["test_loss"], ref[-1]["test_loss"], rtol=1e-5)
    assert sorted(int(d) for d in os.listdir(os.path.join(two, "checkpoints")) if d.isdigit()) == [2, 4]


def test_fsdp_checkpoint_restores_on_one_device_identically(runs):
    two, one = runs
    _, on_one, meta = load_run(two)
    assert meta["train_config"]["parallel"]["strategy"] == "fsdp" and int(on_one.step) == STEPS
    _, on_eight, _ = load_run(two, parallel=ParallelConfig(strategy="fsdp"))
    assert on_eight.params["hidden_0"]["kernel"].sharding.spec[0] == "fsdp"
    chex.assert_trees_all_equal(jax.device_get(on_one.params), jax.device_get(on_eight.params))
    chex.assert_trees_all_equal(jax.device_get(on_one.opt_state), jax.device_get(on_eight.opt_state))
    _, ref, _ = load_run(one)
    chex.assert_trees_all_close(jax.device_get(on_one.params), jax.device_get(ref.params), rtol=1e-5, atol=1e-6)


def test_single_device_checkpoint_restores_under_four_way_tensor_parallelism(runs):
    _, one = runs
    _, ref, _ = load_run(one)
    _, tp, _ = load_run(one, parallel=ParallelConfig(strategy="tp", tensor=4))
    kernel = tp.params["hidden_0"]["kernel"]  # [embed, mlp]: the 256 hidden units split 4 ways
    assert tuple(kernel.sharding.spec) == (None, "tensor")
    assert len(kernel.sharding.device_set) == 4 and kernel.addressable_shards[0].data.shape == (64, 64)
    chex.assert_trees_all_equal(jax.device_get(tp.params), jax.device_get(ref.params))
    chex.assert_trees_all_equal(jax.device_get(tp.opt_state), jax.device_get(ref.opt_state))


def test_two_processes_resume_past_a_corrupt_newest_step_moving_it_aside_once(runs, env, tmp_path):
    """Issue 19.8: both processes skip the corrupt step 4 and resume from 2; process 0 alone moves
    4 aside (after a barrier), and step 4 is trained and saved again, with the same losses."""
    two, _ = runs
    workdir = str(tmp_path / "run")
    shutil.copytree(two, workdir)
    step4 = os.path.join(workdir, "checkpoints", "4")
    array_file = max(glob.glob(os.path.join(step4, "state", "**", "d", "*"), recursive=True), key=os.path.getsize)
    data = bytearray(pathlib.Path(array_file).read_bytes())
    data[len(data) // 3] ^= 0x04  # a flipped bit: orbax restores it silently, the checksums do not match
    pathlib.Path(array_file).write_bytes(data)
    driver = "import sys; from zoo.cli import main; sys.exit(main(sys.argv[1:]))"
    procs = _start_two(driver, [*CLI, "--workdir", workdir, "--steps", "4"], env)
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
        assert "skipping checkpoint" in out and "is corrupt" in out, out[-3000:]
    assert len(glob.glob(os.path.join(workdir, "checkpoints", "4.corrupt-*"))) == 1
    assert sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()) == [2, 4]
    rows, ref = read_metrics(os.path.join(workdir, "metrics.jsonl")), read_metrics(os.path.join(two, "metrics.jsonl"))
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    np.testing.assert_allclose([r["train_loss"] for r in rows], [r["train_loss"] for r in ref], rtol=1e-6)
