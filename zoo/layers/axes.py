"""Logical axis names used by every zoo model.

Models annotate parameters (:func:`with_logical_partitioning`) and activations
(``zoo.layers.with_logical_constraint``) with these names only; the mapping from
logical names to mesh axes lives in the parallel code, so every model also runs
with no mesh.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn

BATCH = "batch"
LENGTH = "length"  # time / sequence positions
HEIGHT = "height"
WIDTH = "width"
EMBED = "embed"  # model width / features of a dense layer's input
MLP = "mlp"  # hidden width of a dense layer's output
CLASSES = "classes"
CONV_WINDOW = "conv_window"  # kernel height / width
CONV_IN = "conv_in"
CONV_OUT = "conv_out"
GATES = "gates"  # fused LSTM gate dimension (4 * hidden)
HEADS = "heads"  # attention heads
KV = "kv"  # per-head query / key / value features
VOCAB = "vocab"  # rows of a token embedding table (and the LM output)
POSITIONS = "positions"  # rows of a learned position / token-type embedding table



class LogicallyPartitioned(nn.LogicallyPartitioned):
    """``flax.linen.LogicallyPartitioned`` whose NNX Variables are not sharded on creation.

    ``flax.nnx.bridge.ToNNX`` turns each box into an ``nnx.Variable`` with the logical
    names as ``out_sharding``; under NNX's default eager sharding that Variable would
    shard itself at once, which fails with no mesh and, with one, maps the names by
    Flax's plain table instead of zoo's rules (first rule whose mesh axes fit the
    dimension, see ``zoo.parallel``).  So the names stay metadata (``eager_sharding=False``),
    as in the Linen model; shardings come from ``zoo.parallel`` or
    ``nnx.get_partition_spec``.
    """

    def to_nnx_metadata(self) -> dict[str, Any]:
        metadata = dict(vars(self))  # a copy: Flax's version renames the box's own fields
        metadata["out_sharding"] = metadata.pop("names")
        metadata["sharding_rules"] = metadata.pop("rules")
        metadata["eager_sharding"] = False
        return metadata


def with_logical_partitioning(fn: Callable[..., Any], names: tuple) -> Callable[..., LogicallyPartitioned]:
    """``nn.with_logical_partitioning(fn, names)``, boxing in :class:`LogicallyPartitioned`."""

    @functools.wraps(fn)
    def init(*args, **kwargs):
        return LogicallyPartitioned(fn(*args, **kwargs), names)

    return init


__all__ = [
    "LogicallyPartitioned", "with_logical_partitioning",
    "BATCH", "LENGTH", "HEIGHT", "WIDTH", "EMBED", "MLP", "CLASSES",
    "CONV_WINDOW", "CONV_IN", "CONV_OUT", "GATES", "HEADS", "KV", "VOCAB", "POSITIONS",
]
