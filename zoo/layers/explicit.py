"""Making the layers run under a mesh whose axes are ``Explicit`` (``jax.make_mesh``'s default).

Under ``jax.set_mesh(mesh)`` with Explicit axes every array's type carries its
sharding, and an op whose output sharding JAX cannot infer (a gather from a
replicated table by batch-sharded ids, a reshape that merges the batch dim with
others, a custom-VJP convolution) raises ``ShardingTypeError``.  The layers call
such ops through :func:`keep_batch_sharding` (the op runs with the mesh's axes
made Auto, and its result gets the input's batch-dim sharding, replicated
elsewhere), :func:`batch_reshape`, :func:`batch_broadcast_to` and
:func:`shard_batch_like`.  With no mesh, or an all-Auto one, they are the plain
ops.  No mesh axis is named here: the shardings come from the inputs.

What does not work under Explicit axes is zoo's logical axis rules (the
sharding strategies of ``zoo.parallel``): :func:`with_logical_constraint` says so
in one line.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

AUTO_AXES_HINT = ("build the mesh with Auto axes instead: "
                  "jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Auto,) * len(shape))")


def explicit_axes() -> tuple[str, ...]:
    """Names of the context mesh's Explicit axes (empty with no mesh or an all-Auto one)."""
    mesh = jax.sharding.get_abstract_mesh()
    return () if mesh.empty else tuple(mesh.explicit_axes)


def with_logical_constraint(x, logical_axes):
    """``flax.linen.with_logical_constraint``, with a one-line error under Explicit mesh axes.

    The logical -> mesh rules (``nn.logical_axis_rules``, as ``zoo.parallel`` sets them) are
    sharding hints for the compiler; under Explicit axes JAX turns each into an assertion on
    the array's type, which the models' activations do not meet.  No rules: a no-op, as Flax.
    """
    if nn.get_logical_axis_rules() and explicit_axes():
        raise ValueError(f"zoo's logical axis rules need a mesh with Auto axes, but axes {explicit_axes()} "
                         f"are Explicit; {AUTO_AXES_HINT}")
    return nn.with_logical_constraint(x, logical_axes)


def _batch_spec(like, ndim: int) -> PartitionSpec:
    """``P(<like's batch-dim sharding>, None, ...)`` of rank ``ndim``."""
    spec = tuple(jax.typeof(like).sharding.spec)
    return PartitionSpec(spec[0] if spec else None, *([None] * (ndim - 1)))


def keep_batch_sharding(fn: Callable, *args, out_ndim: int, like=None):
    """``fn(*args)`` (one array out, of rank ``out_ndim``); under Explicit mesh axes it runs
    with them made Auto and its result is sharded on dim 0 as ``like`` (default ``args[0]``)."""
    if not explicit_axes():
        return fn(*args)
    out_sharding = _batch_spec(args[0] if like is None else like, out_ndim)
    return jax.sharding.auto_axes(fn, out_sharding=out_sharding)(*args)


def sharding_spec(x) -> PartitionSpec | None:
    """x's PartitionSpec under Explicit mesh axes (for an op's ``out_sharding=``), else None."""
    return jax.typeof(x).sharding.spec if explicit_axes() else None


def batch_reshape(x, shape):
    """``x.reshape(shape)`` keeping the leading (batch) dim's sharding under Explicit mesh axes.

    The leading dim of ``shape`` must be x's (a flatten / split of the per-example dims).
    """
    if not explicit_axes():
        return x.reshape(shape)
    return jnp.reshape(x, shape, out_sharding=_batch_spec(x, len(shape)))


def shard_batch_like(x, like):
    """``x`` resharded on dim 0 as ``like`` (replicated elsewhere) under Explicit mesh axes, else ``x``."""
    if not explicit_axes():
        return x
    return jax.sharding.reshard(x, _batch_spec(like, jnp.ndim(x)))


def batch_broadcast_to(x, shape, *, like):
    """``jnp.broadcast_to(x, shape)`` (e.g. a ``[1, ...]`` parameter to ``[B, ...]``) sharded on
    dim 0 as ``like`` under Explicit mesh axes."""
    if not explicit_axes():
        return jnp.broadcast_to(x, shape)
    return jnp.broadcast_to(x, shape, out_sharding=_batch_spec(like, len(shape)))


__all__ = ["AUTO_AXES_HINT", "batch_broadcast_to", "batch_reshape", "explicit_axes", "keep_batch_sharding",
           "shard_batch_like", "sharding_spec", "with_logical_constraint"]
