"""Meshes, and the shardings that the logical-axis rules give each array.

``make_mesh`` builds the ``(data, fsdp, tensor)`` mesh of a ``ParallelConfig``;
``state_shardings`` resolves the model's logical partition specs (from
``jax.eval_shape`` of ``model.init``, nothing allocated) into a
``NamedSharding`` for every leaf of the train state and reports the
parameters that end up replicated although the mesh could split them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from zoo.parallel.config import MESH_AXES, ParallelConfig


def make_mesh(config: ParallelConfig, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The ``(data, fsdp, tensor)`` mesh of ``config`` over the first devices it needs.

    Args:
      config: strategy and axis sizes.
      devices: devices to use (default ``jax.devices()``, every process's).

    Raises:
      ValueError: the mesh needs more devices than there are, or (several
        processes) does not use all of them.
    """
    devices = list(jax.devices() if devices is None else devices)
    sizes = config.mesh_shape(len(devices))
    n = math.prod(sizes.values())
    if jax.process_count() > 1 and n != len(devices):
        raise ValueError(f"with {jax.process_count()} processes the mesh must use all {len(devices)} devices, "
                         f"got {' x '.join(f'{a}={s}' for a, s in sizes.items())} = {n}")
    # Auto axes: Linen's logical partitioning works with them (Explicit axes assert).
    return jax.make_mesh(tuple(sizes[a] for a in MESH_AXES), MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                         devices=devices[:n])


def effective_rules(rules, mesh: Mesh) -> tuple:
    """``rules`` without mesh axes of size 1 (they split nothing), in Flax's ``(name, axes)`` form.

    A rule left with no axis is dropped, so a later rule for the same logical
    name can apply (e.g. ``mlp -> fsdp`` when the tensor axis has size 1).
    Rules that map to None on purpose are kept.
    """
    out = []
    for name, value in rules:
        if value is None:
            out.append((name, None))
            continue
        kept = tuple(a for a in ((value,) if isinstance(value, str) else value) if mesh.shape[a] > 1)
        if kept:
            out.append((name, kept[0] if len(kept) == 1 else kept))
    return tuple(out)


def _axes_tuple(value) -> tuple[str, ...]:
    return () if value is None else ((value,) if isinstance(value, str) else tuple(value))


@dataclasses.dataclass(frozen=True)
class Replicated:
    """A parameter stored whole on every device although the mesh could split it."""

    path: str
    shape: tuple[int, ...]
    logical: tuple
    reason: str


def resolve_spec(path: str, shape: tuple[int, ...], logical: tuple, rules: tuple, mesh: Mesh) -> PartitionSpec:
    """The mesh ``PartitionSpec`` of one parameter of ``shape`` with logical axis names ``logical``.

    Flax's precedence (first applicable rule, each mesh axis used once per
    array), plus: a rule whose axes do not divide the dimension is skipped,
    except for the tensor axis, where that is an error (tensor parallelism
    splits the computation, so every device must get an equal part).
    """
    result: list[Any] = [None] * len(shape)
    assigned = [False] * len(shape)
    used: set[str] = set()
    for name, value in rules:
        if name not in logical:
            continue
        pos = logical.index(name)
        mesh_axes = _axes_tuple(value)
        if assigned[pos] or used & set(mesh_axes):
            continue
        size = math.prod(mesh.shape[a] for a in mesh_axes)
        if shape[pos] % size:
            if "tensor" in mesh_axes:
                raise ValueError(
                    f"tensor parallelism: {path} has dimension {pos} ({name!r}) of size {shape[pos]}, which the "
                    f"tensor axis of size {mesh.shape['tensor']} does not divide; pick a tensor size that divides "
                    f"{shape[pos]} or change the model's width"
                )
            continue
        result[pos], assigned[pos] = value, True
        used |= set(mesh_axes)
    return PartitionSpec(*result)


def _path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def variable_shardings(logical_specs: Any, abstract: Any, rules: tuple, mesh: Mesh,
                       report: list[Replicated] | None = None) -> Any:
    """``NamedSharding`` for each leaf of ``abstract`` (shapes) from ``logical_specs`` (same tree).

    Leaves that stay whole although the mesh has an fsdp or tensor axis are
    appended to ``report``.
    """
    splits = mesh.shape["fsdp"] > 1 or mesh.shape["tensor"] > 1
    known = {name for name, _ in rules}
    flat, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    specs = treedef.flatten_up_to(logical_specs)
    out = []
    for (path, leaf), logical in zip(flat, specs):
        logical = tuple(logical) if logical is not None else (None,) * len(leaf.shape)
        name = _path_str(path)
        spec = resolve_spec(name, tuple(leaf.shape), logical, rules, mesh)
        if splits and report is not None and leaf.ndim and all(s is None for s in spec):
            missing = [n for n in logical if n is not None and n not in known]
            if not any(n is not None for n in logical):
                reason = "no logical axis names"
            elif missing:
                reason = f"no rule for logical axes {missing}"
            else:
                reason = f"no rule's mesh axes divide its shape {tuple(leaf.shape)}"
            report.append(Replicated(name, tuple(leaf.shape), logical, reason))
        out.append(NamedSharding(mesh, spec))
    return jax.tree_util.tree_unflatten(treedef, out)


def logical_partition_specs(model: nn.Module, example) -> dict:
    """Logical ``PartitionSpec`` of every variable of ``model`` (abstract init, nothing allocated)."""
    boxed = jax.eval_shape(
        lambda: model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, example, train=False)
    )
    return nn.get_partition_spec(boxed)


def state_shardings(abstract_state, logical_specs: dict, rules: tuple, mesh: Mesh) -> tuple[Any, list[Replicated]]:
    """Shardings of a whole ``TrainState`` (same tree) and the report of replicated parameters.

    The optimizer state's parameter-shaped leaves (Adam moments, momentum)
    share their parameter's sharding; its counters are replicated.
    """
    replicated = NamedSharding(mesh, PartitionSpec())
    report: list[Replicated] = []
    params = variable_shardings(logical_specs["params"], abstract_state.params, rules, mesh, report)
    model_state = {
        name: variable_shardings(logical_specs.get(name) or jax.tree.map(lambda _: PartitionSpec(), tree), tree, rules,
                                 mesh)
        for name, tree in abstract_state.model_state.items()
    }
    try:
        opt_state = optax.tree_map_params(
            abstract_state.tx, lambda _, sharding: sharding, abstract_state.opt_state, params,
            transform_non_params=lambda _: replicated,
        )
    except (ValueError, TypeError):  # a transformation whose state tree optax cannot map (e.g. pruning masks)
        opt_state = _by_path_suffix(abstract_state.opt_state, abstract_state.params, params, replicated)
    return abstract_state.replace(step=replicated, params=params, opt_state=opt_state, model_state=model_state,
                                  rng=replicated), report


def _by_path_suffix(opt_state, abstract_params, param_shardings, replicated):
    """Optimizer-state leaves whose path ends with a parameter's path and shape take its sharding."""
    by_path = {}
    for (path, leaf), sharding in zip(jax.tree_util.tree_flatten_with_path(abstract_params)[0],
                                      jax.tree.leaves(param_shardings)):
        by_path[_path_str(path)] = (tuple(leaf.shape), sharding)

    def pick(path, leaf):
        name = _path_str(path)
        for param, (shape, sharding) in by_path.items():
            if (name == param or name.endswith("/" + param)) and tuple(leaf.shape) == shape:
                return sharding
        return replicated

    return jax.tree_util.tree_map_with_path(pick, opt_state)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Batches are split along their first dimension over every data-parallel axis (data, fsdp)."""
    data_axes = tuple(a for a in ("data", "fsdp") if mesh.shape[a] > 1)
    return NamedSharding(mesh, PartitionSpec(data_axes or None))


def data_parallel_size(mesh: Mesh) -> int:
    return mesh.shape["data"] * mesh.shape["fsdp"]


def bytes_per_device(abstract: Any, shardings: Any) -> int:
    """Bytes one device holds of ``abstract`` (shapes) laid out by ``shardings`` (same tree)."""
    total = 0
    for leaf, sharding in zip(jax.tree.leaves(abstract), jax.tree.leaves(shardings)):
        shard = sharding.shard_shape(tuple(leaf.shape)) if leaf.ndim else ()
        total += int(np.prod(shard, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize
    return total


__all__ = ["make_mesh", "effective_rules", "resolve_spec", "variable_shardings", "logical_partition_specs",
           "state_shardings", "batch_sharding", "data_parallel_size", "bytes_per_device", "Replicated"]
