"""Parallel settings: strategies, mesh sizes and the logical-axis -> mesh-axis rules.

Every jit strategy runs on one 3-axis mesh ``(data, fsdp, tensor)``; a
strategy only decides the axis sizes (``dp`` = data, ``fsdp`` = fsdp,
``tp`` = tensor; ``dp+tp`` etc. combine them), so one table of rules serves
them all.  Models name logical axes only (``zoo.layers.axes``); the rules
below are the single place that maps them to mesh axes.
"""

from __future__ import annotations

import dataclasses
import math

from zoo.layers import axes

MESH_AXES = ("data", "fsdp", "tensor")
# strategy part -> mesh axis it sizes
_PARTS = {"dp": "data", "fsdp": "fsdp", "tp": "tensor"}
STRATEGIES = ("single", "pmap", "dp", "fsdp", "tp", "dp+fsdp", "dp+tp", "fsdp+tp", "dp+fsdp+tp")

# Rules in order of precedence (Flax's semantics): for each array dimension the first
# rule naming its logical axis whose mesh axes are larger than 1, not yet used by
# another dimension of the same array and (for parameters) divide the dimension wins.
# A dimension no rule gives an axis is replicated.
DEFAULT_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    # activations: the batch is split over every data-parallel axis
    (axes.BATCH, ("data", "fsdp")),
    # tensor parallelism: the output / hidden side of each layer (a Megatron column split)
    (axes.MLP, "tensor"), (axes.GATES, "tensor"), (axes.CONV_OUT, "tensor"), (axes.HEADS, "tensor"),
    (axes.VOCAB, "tensor"),
    # fsdp: parameters are stored split along their input side ...
    (axes.EMBED, "fsdp"), (axes.CONV_IN, "fsdp"),
    # ... or, failing that, along any other dimension the fsdp size divides
    (axes.MLP, "fsdp"), (axes.GATES, "fsdp"), (axes.CONV_OUT, "fsdp"), (axes.VOCAB, "fsdp"), (axes.HEADS, "fsdp"),
    (axes.KV, "fsdp"), (axes.POSITIONS, "fsdp"), (axes.CLASSES, "fsdp"),
    # never split
    (axes.LENGTH, None), (axes.HEIGHT, None), (axes.WIDTH, None), (axes.CONV_WINDOW, None),
)


def _mesh_axes_of(value) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def check_rules(rules) -> tuple:
    """Validates rules ``((logical_name, mesh_axes), ...)``; returns them as a tuple of tuples.

    ValueError for a malformed rule or a mesh axis other than ``MESH_AXES``.
    """
    out = []
    for i, rule in enumerate(rules):
        if not (isinstance(rule, (tuple, list)) and len(rule) == 2 and isinstance(rule[0], str)):
            raise ValueError(f"rule {i} must be a pair (logical_axis_name, mesh_axes), got {rule!r}")
        name, value = rule
        if not (value is None or isinstance(value, str)
                or (isinstance(value, (tuple, list)) and all(isinstance(a, str) for a in value))):
            raise ValueError(f"rule {i} ({name!r}) must map to a mesh axis name, a tuple of them or None, "
                             f"got {value!r}")
        unknown = [a for a in _mesh_axes_of(value) if a not in MESH_AXES]
        if unknown:
            raise ValueError(f"rule {i} maps logical axis {name!r} to unknown mesh axis {unknown[0]!r}; "
                             f"the mesh axes are {MESH_AXES}")
        out.append((name, value if value is None or isinstance(value, str) else tuple(value)))
    return tuple(out)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParallelConfig:
    """How a run is spread over devices.

    Attributes:
      strategy: "single" (one device), "pmap" (replicated state, per-device
        batches, ``lax.pmean`` of gradients; maintenance-mode JAX API), or jit
        strategies over the ``(data, fsdp, tensor)`` mesh: "dp" (replicated
        parameters, batch split), "fsdp" (parameters, gradients and optimizer
        state split too), "tp" (layers split over devices) and their
        combinations "dp+tp", "fsdp+tp", "dp+fsdp", "dp+fsdp+tp".
      data / fsdp / tensor: mesh axis sizes.  None: 1 for an axis the strategy
        does not use; for the one unsized axis it uses, all remaining devices.
      rules: logical -> mesh axis rules (see ``DEFAULT_RULES``).
    """

    strategy: str = "single"
    data: int | None = None
    fsdp: int | None = None
    tensor: int | None = None
    rules: tuple = DEFAULT_RULES

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"parallel strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        for axis in MESH_AXES:
            size = getattr(self, axis)
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
                raise ValueError(f"mesh size {axis} must be a positive int or None, got {size!r}")
            if size is not None and size > 1 and axis not in self.used_axes:
                raise ValueError(f"strategy {self.strategy!r} does not use the {axis!r} mesh axis, but {axis}={size} "
                                 f"was given; use a strategy with {_part_of(axis)!r} (e.g. "
                                 f"'{self.strategy}+{_part_of(axis)}') or drop the size")
        object.__setattr__(self, "rules", check_rules(self.rules))

    @property
    def used_axes(self) -> tuple[str, ...]:
        """Mesh axes this strategy sizes ("pmap" uses "data")."""
        if self.strategy == "single":
            return ()
        if self.strategy == "pmap":
            return ("data",)
        return tuple(_PARTS[p] for p in self.strategy.split("+"))

    def mesh_shape(self, num_devices: int) -> dict[str, int]:
        """Axis sizes ``{"data", "fsdp", "tensor"}`` on ``num_devices`` devices.

        Raises:
          ValueError: the sizes need more devices than there are, or cannot be inferred.
        """
        sizes = {a: (getattr(self, a) or 1) if a not in self.used_axes else getattr(self, a) for a in MESH_AXES}
        unsized = [a for a in MESH_AXES if sizes[a] is None]
        known = math.prod(s for s in sizes.values() if s is not None)
        if known > num_devices:
            raise ValueError(f"the mesh {_fmt(sizes)} needs {known} devices, but only {num_devices} are available")
        if len(unsized) > 1:
            raise ValueError(f"strategy {self.strategy!r} needs the sizes of {unsized} (all but one); "
                             f"e.g. --mesh-{unsized[-1]} N")
        if unsized:
            if num_devices % known:
                raise ValueError(f"{num_devices} devices do not split evenly into {_fmt(sizes)}")
            sizes[unsized[0]] = num_devices // known
        return sizes


def _part_of(axis: str) -> str:
    return {v: k for k, v in _PARTS.items()}[axis]


def _fmt(sizes: dict) -> str:
    return " x ".join(f"{a}={'?' if s is None else s}" for a, s in sizes.items())


__all__ = ["MESH_AXES", "STRATEGIES", "DEFAULT_RULES", "ParallelConfig", "check_rules"]
