"""Training extensions: techniques the loop composes without knowing them.

A technique that changes how a model trains (DP-SGD, gradual pruning, ...)
subclasses :class:`Extension`, a frozen dataclass whose fields are its
settings, and overrides the hooks it needs.  ``TrainConfig.extensions`` lists
them; the loop wraps the optimizer and the train step with them, stores
``to_dict()`` in every checkpoint (a resume with other settings is refused)
and adds ``report(...)`` to the run's summary.  ``load_run`` rebuilds them from
the checkpoint by name, so the restored optimizer state has the same structure.

The implementations live above this package (``zoo.techniques``) and register
themselves with :func:`register_extension`; the loop only sees this interface.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, ClassVar

import optax

_EXTENSIONS: dict[str, type["Extension"]] = {}


class Extension:
    """Base of training extensions (subclasses are frozen, keyword-only dataclasses)."""

    name: ClassVar[str] = ""

    def to_dict(self) -> dict:
        """JSON form stored in checkpoints: ``{"name": ..., **fields}``."""
        return json.loads(json.dumps({"name": self.name, **dataclasses.asdict(self)}))

    def wrap_optimizer(self, tx: optax.GradientTransformation, total_steps: int) -> optax.GradientTransformation:
        """The optimizer to train with, given the one built so far."""
        return tx

    def train_step(self, default_step: Callable, *, label_smoothing: float) -> Callable:
        """The step function ``(state, batch, axis_name=None) -> (state, metrics)`` to use instead of ``default_step``.

        ``default_step`` takes ``axis_name`` too; the pmap strategy passes its device axis, over
        which the step must combine the devices' gradients and metrics (as ``zoo.train.train_step``
        does); the jit strategies pass none.
        """
        return default_step

    def report(self, state: Any, *, steps: int, num_examples: int, batch_size: int) -> dict:
        """Entries added to the run's summary (e.g. the privacy spent)."""
        return {}


def register_extension(cls: type[Extension]) -> type[Extension]:
    """Class decorator: makes ``cls`` rebuildable from checkpoints by its ``name``."""
    if not cls.name or cls.name in _EXTENSIONS:
        raise ValueError(f"extension name must be unique and non-empty, got {cls.name!r}")
    _EXTENSIONS[cls.name] = cls
    return cls


def extension_from_dict(data: dict) -> Extension:
    """Rebuilds an extension from its ``to_dict()`` form."""
    import zoo.techniques  # noqa: F401  (registers the implementations, as the registry loads zoo.models)

    fields = dict(data)
    name = fields.pop("name", None)
    if name not in _EXTENSIONS:
        raise ValueError(f"unknown training extension {name!r}; known: {sorted(_EXTENSIONS)}")
    cls = _EXTENSIONS[name]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


__all__ = ["Extension", "register_extension", "extension_from_dict"]
