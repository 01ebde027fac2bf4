"""Training strategies: one ``train_step`` underneath, placed on devices by jit or pmap.

``make_strategy(config, model, create_state, train_step=..., eval_step=...,
batch_size=B)`` returns an object the training loop drives without knowing the
strategy.  The step functions and the state constructor come from the caller
(``zoo.train``, the layer above), so every strategy runs the very same step:

* ``create_state()`` -> the ``TrainState``, created where it lives (jit
  strategies: ``jax.jit`` with ``out_shardings``, so a parameter split over
  devices is never whole on one device); ``place(state)`` lays out an existing one;
* ``local_rows(n)`` -> which rows of a global batch of ``n`` examples this
  process feeds (every process loads only those);
* ``train_step(state, local_batch)`` / ``eval_step(state, global_batch)``;
* ``checkpoint_items(state)`` / ``with_checkpoint_items(state, items)``: the
  arrays a checkpoint stores (one joint, strategy-independent format; orbax
  restores them straight into this strategy's shardings);
* ``memory_report()``: bytes per device, without running a step.

Dropout: the key of step ``s`` is ``fold_in(rng, s)``.  The jit strategies see
the global batch, so their masks are the single-device masks.  Under ``pmap``
each device also folds in its index (``lax.axis_index``): its masks differ from
single-device training, as in any per-device data-parallel code.

BatchNorm: under the jit strategies the batch statistics are those of the
global batch (XLA reduces over the split batch), exactly as on one device.
Under ``pmap`` each device normalises with its own batch's statistics and the
running averages are averaged over devices after each step (``dp`` is exact).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from zoo.parallel.config import ParallelConfig
from zoo.parallel.sharding import (batch_sharding, bytes_per_device, data_parallel_size, effective_rules,
                                   logical_partition_specs, make_mesh, state_shardings)
from zoo.registry import example_input
from zoo.tasks import task_for

TrainState = Any  # zoo.train.TrainState (duck-typed: this layer sits below zoo.train)

PMAP_AXIS = "devices"


def _pad_rows(batch: dict, multiple: int) -> dict:
    """Pads an eval batch with masked rows to a multiple of ``multiple`` examples."""
    n = len(next(iter(batch.values())))
    pad = -n % multiple
    if not pad:
        return batch
    return {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in batch.items()}


def _check_batch(batch_size: int, dp: int, what: str) -> None:
    if batch_size % dp:
        raise ValueError(f"the global batch size {batch_size} is not divisible by the data-parallel size {dp} "
                         f"({what}); use a multiple of {dp}")


class _Strategy:
    config: ParallelConfig
    mesh: Mesh
    batch_size: int
    replicated: list  # parameters kept whole although the mesh could split them (jit strategies)

    def _abstract_batch(self, model_config, batch_size: int) -> dict:
        return task_for(model_config).abstract_batch(model_config, batch_size)


class JitStrategy(_Strategy):
    """single / dp / fsdp / tp and combinations: ``jax.jit`` with in/out shardings on the 3-axis mesh."""

    def __init__(self, config: ParallelConfig, model: nn.Module, create_state: Callable[[], TrainState], *,
                 train_step: Callable, eval_step: Callable, batch_size: int,
                 devices: Sequence[jax.Device] | None = None):
        self.config, self.batch_size, self.model_config = config, batch_size, model.config
        self.mesh = make_mesh(config, devices)
        self.rules = effective_rules(config.rules, self.mesh)
        self.data_parallel = data_parallel_size(self.mesh)
        _check_batch(batch_size, self.data_parallel,
                     f"data={self.mesh.shape['data']} x fsdp={self.mesh.shape['fsdp']}")
        self._create = create_state
        self.abstract_state = jax.eval_shape(self._create)
        logical = logical_partition_specs(model, example_input(model.config))
        self.state_shardings, self.replicated = state_shardings(self.abstract_state, logical, self.rules, self.mesh)
        self.batch_sharding = batch_sharding(self.mesh)
        whole = NamedSharding(self.mesh, PartitionSpec())
        self._train = jax.jit(train_step, in_shardings=(self.state_shardings, self.batch_sharding),
                              out_shardings=(self.state_shardings, whole), donate_argnums=0)
        self._eval = jax.jit(eval_step, in_shardings=(self.state_shardings, self.batch_sharding), out_shardings=whole)

    @contextlib.contextmanager
    def _context(self):
        # Models' nn.with_logical_constraint resolves against these at trace time.
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            yield

    def create_state(self) -> TrainState:
        # Each device creates only its part: a split parameter is never whole on one device (and one
        # compiled init beats initialising op by op).  Outside the mesh context: out_shardings alone
        # place every leaf, and Flax would otherwise constrain each boxed parameter at init
        # (rejecting names used twice, such as a conv kernel's two window axes).
        return jax.jit(self._create, out_shardings=self.state_shardings)()

    def place(self, state: TrainState) -> TrainState:
        """Lays out an existing state's arrays (on the host or one device) as this strategy keeps them."""
        return jax.device_put(_restructure(self.abstract_state, state), self.state_shardings)

    def local_rows(self, n: int) -> np.ndarray:
        """Row indices of a global batch of ``n`` that this process's devices hold (all rows in one process)."""
        rows: set[int] = set()
        for index in self.batch_sharding.addressable_devices_indices_map((n,)).values():
            rows.update(range(*index[0].indices(n)))
        return np.array(sorted(rows), np.int64)

    def _global(self, local: dict, n: int) -> dict:
        return {k: jax.make_array_from_process_local_data(self.batch_sharding, v, (n, *v.shape[1:]))
                for k, v in local.items()}

    def train_step(self, state: TrainState, local_batch: dict) -> tuple[TrainState, dict]:
        """One step on this process's rows (``local_rows(batch_size)``) of the global batch."""
        with self._context():
            return self._train(state, self._global(local_batch, self.batch_size))

    def eval_step(self, state: TrainState, batch: dict) -> dict:
        """The task's sums over a global eval batch (its schema + ``"mask"``; every process passes all of it)."""
        batch = _pad_rows(batch, self.data_parallel)
        n = len(next(iter(batch.values())))
        rows = self.local_rows(n)
        with self._context():
            return self._eval(state, self._global({k: v[rows] for k, v in batch.items()}, n))

    def checkpoint_items(self, state: TrainState) -> dict:
        return state.checkpoint_items()

    def with_checkpoint_items(self, state: TrainState, items: dict) -> TrainState:
        return state.with_checkpoint_items(items)

    def memory_report(self) -> dict:
        """Bytes per device of parameters, optimizer state, model state and the step's temporaries.

        From ``jax.eval_shape`` and the compiled step's ``memory_analysis()``;
        nothing is allocated and no step runs.
        """
        abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                self.abstract_state, self.state_shardings)
        batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=self.batch_sharding)
                 for k, v in self._abstract_batch(self.model_config, self.batch_size).items()}
        with self._context():
            compiled = self._train.lower(abstract, batch).compile()
        sh = self.state_shardings
        return _report(self, bytes_per_device(self.abstract_state.params, sh.params),
                       bytes_per_device(self.abstract_state.opt_state, sh.opt_state),
                       bytes_per_device(self.abstract_state.model_state, sh.model_state), compiled)


class PmapStrategy(_Strategy):
    """Classic data parallelism with ``jax.pmap``: state replicated per device, ``lax.pmean`` of gradients.

    ``jax.pmap`` is in maintenance mode (built on jit + shard_map); ``dp`` is
    the recommended way to the same result.  One process only.
    """

    def __init__(self, config: ParallelConfig, model: nn.Module, create_state: Callable[[], TrainState], *,
                 train_step: Callable, eval_step: Callable, batch_size: int,
                 devices: Sequence[jax.Device] | None = None):
        if jax.process_count() > 1:
            raise ValueError("the pmap strategy runs in one process; use --parallel dp across hosts "
                             "(the same data parallelism through jax.jit)")
        task = task_for(model)
        if task.batch_coupled:
            raise ValueError(f"the pmap strategy splits each batch per device, but task {task.name!r} scores every "
                             f"example against the whole batch (in-batch negatives); use --parallel dp (the same "
                             f"data parallelism through jax.jit, over the global batch)")
        devices = list(jax.local_devices() if devices is None else devices)
        n = config.mesh_shape(len(devices))["data"]
        self.config, self.batch_size, self.model_config = config, batch_size, model.config
        self.devices = devices[:n]
        self.mesh = Mesh(np.array(self.devices), (PMAP_AXIS,))
        self.data_parallel, self.replicated = n, []
        _check_batch(batch_size, n, f"pmap over {n} devices")
        self._create = create_state
        self.abstract_state = jax.eval_shape(self._create)
        self._stacked = NamedSharding(self.mesh, PartitionSpec(PMAP_AXIS))
        self._whole = NamedSharding(self.mesh, PartitionSpec())
        self._train = jax.pmap(functools.partial(train_step, axis_name=PMAP_AXIS), axis_name=PMAP_AXIS,
                               devices=self.devices, donate_argnums=0)
        self._eval = jax.pmap(eval_step, axis_name=PMAP_AXIS, devices=self.devices)

    def _replicate(self, tree):
        n = len(self.devices)
        return jax.tree.map(
            lambda x: jax.device_put(np.broadcast_to(np.asarray(x), (n, *np.shape(x))), self._stacked), tree)

    def _split(self, batch: dict) -> dict:
        n = len(self.devices)
        return {k: v.reshape(n, v.shape[0] // n, *v.shape[1:]) for k, v in batch.items()}

    def create_state(self) -> TrainState:
        with jax.default_device(self.devices[0]):
            return self._replicate(jax.jit(self._create)())

    def place(self, state: TrainState) -> TrainState:
        """Copies an existing state's arrays (on the host or one device) to every device."""
        return self._replicate(_restructure(self.abstract_state, state))

    def local_rows(self, n: int) -> np.ndarray:
        return np.arange(n)

    def train_step(self, state: TrainState, local_batch: dict) -> tuple[TrainState, dict]:
        state, metrics = self._train(state, self._split(local_batch))
        return state, jax.tree.map(lambda m: m[0], metrics)  # pmean'd: equal on every device

    def eval_step(self, state: TrainState, batch: dict) -> dict:
        out = self._eval(state, self._split(_pad_rows(batch, len(self.devices))))
        return jax.tree.map(lambda v: v.sum(0), out)

    def checkpoint_items(self, state: TrainState) -> dict:
        # every device holds the same state: the checkpoint stores one copy, as single-device training does
        return jax.tree.map(lambda x: jax.device_put(x[0], self._whole), state.checkpoint_items())

    def with_checkpoint_items(self, state: TrainState, items: dict) -> TrainState:
        return state.with_checkpoint_items(self._replicate(items))

    def memory_report(self) -> dict:
        n = len(self.devices)
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct((n, *a.shape), a.dtype), self.abstract_state)
        batch = {k: jax.ShapeDtypeStruct((n, v.shape[0] // n, *v.shape[1:]), v.dtype)
                 for k, v in self._abstract_batch(self.model_config, self.batch_size).items()}
        compiled = self._train.lower(abstract, batch).compile()
        a = self.abstract_state
        return _report(self, _nbytes(a.params), _nbytes(a.opt_state), _nbytes(a.model_state), compiled)


def _restructure(abstract: TrainState, state: TrainState) -> TrainState:
    """``state``'s arrays in ``abstract``'s tree (its model's apply_fn and its optimizer)."""
    leaves, treedef = jax.tree.leaves(state), jax.tree.structure(abstract)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"the state has {len(leaves)} arrays, this strategy's state {treedef.num_leaves}")
    return jax.tree.unflatten(treedef, leaves)


def _nbytes(tree) -> int:
    return sum(int(np.prod(x.shape, dtype=np.int64)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _report(strategy: _Strategy, params: int, opt: int, model_state: int, compiled) -> dict:
    stats = compiled.memory_analysis()
    temp = None if stats is None else int(stats.temp_size_in_bytes)
    return {
        "strategy": strategy.config.strategy,
        "mesh": dict(strategy.mesh.shape),
        "batch_size": strategy.batch_size,
        "params_total_bytes": _nbytes(strategy.abstract_state.params),
        "params_bytes_per_device": params,
        "optimizer_bytes_per_device": opt,
        "model_state_bytes_per_device": model_state,
        # activations, gradients and other temporaries of one step, as XLA compiled it
        "activation_bytes_per_device": temp,
        "total_bytes_per_device": params + opt + model_state + (temp or 0),
        "replicated_params": [r.path for r in strategy.replicated],
    }


def format_memory_report(report: dict) -> str:
    """The report as a small human-readable table."""
    def mib(b):
        return "n/a" if b is None else f"{b / 2**20:10.3f} MiB"

    mesh = " x ".join(f"{k}={v}" for k, v in report["mesh"].items())
    lines = [f"strategy {report['strategy']} on mesh {mesh}, global batch {report['batch_size']}",
             f"  parameters        {mib(report['params_bytes_per_device'])} per device "
             f"(of {mib(report['params_total_bytes']).strip()} in total)",
             f"  optimizer state   {mib(report['optimizer_bytes_per_device'])} per device",
             f"  model state       {mib(report['model_state_bytes_per_device'])} per device",
             f"  activations+temp  {mib(report['activation_bytes_per_device'])} per device (compiled step)",
             f"  total             {mib(report['total_bytes_per_device'])} per device"]
    return "\n".join(lines)


def make_strategy(config: ParallelConfig, model: nn.Module, create_state: Callable[[], TrainState], *,
                  train_step: Callable, eval_step: Callable, batch_size: int,
                  devices: Sequence[jax.Device] | None = None) -> JitStrategy | PmapStrategy:
    """The strategy object for ``config`` (see the module docstring for its interface).

    Args:
      config: strategy, mesh sizes and rules.
      model: a registry model (its logical axis names give the shardings).
      create_state: ``() -> TrainState`` (e.g. ``partial(create_train_state, model, tx, seed)``); the jit
        strategies run it under ``jax.jit`` with ``out_shardings``.
      train_step: ``(state, batch, axis_name=None) -> (state, metrics)`` with global-mean metrics;
        ``axis_name`` is given under pmap only.
      eval_step: ``(state, batch of the task's schema + "mask") -> sums``.
      batch_size: the global training batch (checked against the data-parallel size).
      devices: devices to use (default: all).

    Raises:
      ValueError: the mesh does not fit the devices, the batch does not split
        evenly, or the tensor axis does not divide a model dimension it splits.
    """
    cls = PmapStrategy if config.strategy == "pmap" else JitStrategy
    return cls(config, model, create_state, train_step=train_step, eval_step=eval_step, batch_size=batch_size,
               devices=devices)


def format_replicated(strategy) -> str:
    """One line per parameter the mesh could split but that stays whole on every device ('' if none)."""
    if not strategy.replicated:
        return ""
    lines = [f"note: {len(strategy.replicated)} parameter(s) stay whole on every device under "
             f"{strategy.config.strategy!r}:"]
    lines += [f"  {r.path} {r.shape} axes {r.logical}: {r.reason}" for r in strategy.replicated]
    return "\n".join(lines)


__all__ = ["JitStrategy", "PmapStrategy", "make_strategy", "format_memory_report", "format_replicated"]

