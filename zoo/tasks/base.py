"""The ``Task`` object: what a model is trained for, independent of any particular model.

A task owns

* the **batch schema**: named arrays with a dtype and a per-example shape
  (:class:`ArraySpec`), derived from a model config (``schema(config)``);
* how the model is **called** on a batch (``apply``: which entries are model
  inputs, such as an attention mask);
* the training **loss** and per-batch training metrics;
* evaluation metrics as **sums** (``eval_sums``) that add up exactly across
  batches, padding and devices, and turn into metrics with ``metrics(sums)``;
* the metric that selects the **best checkpoint** and drives early stopping,
  with its direction (``best_metric``, ``best_mode``);
* a valid random **example batch** for registry-wide tests and benchmarks;
* for generative tasks, ``predict`` (what evaluation decodes with).

Evaluation batches carry one more entry, ``"mask"`` ``[B]`` float32: 1 for a
real example, 0 for a row that pads the last batch.  Tasks are registered by
name (``register_task`` / ``get_task``), as models are.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

EVAL_MASK = "mask"  # eval batches: [B] float32, 1 = real example, 0 = padding row


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """One named array of a batch: per-example ``shape`` (no batch dim) and numpy ``dtype`` name."""

    shape: tuple[int, ...]
    dtype: str

    def abstract(self, batch_size: int) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((batch_size, *self.shape), np.dtype(self.dtype))


@dataclasses.dataclass(frozen=True)
class Task:
    """Base class of every task (frozen dataclasses: hashable, so a train state can hold one statically).

    Subclasses set ``name``, ``best_metric`` and ``best_mode`` and implement
    ``schema``, ``apply``, ``loss``, ``train_metrics``, ``eval_sums``, ``metrics`` and
    ``example_batch``.  ``model_input_keys`` are optional batch entries passed to the
    model as keyword arguments when present.
    """

    name: ClassVar[str] = ""
    best_metric: ClassVar[str] = "accuracy"
    best_mode: ClassVar[str] = "max"  # "max": higher is better; "min": lower is better
    model_input_keys: ClassVar[tuple[str, ...]] = ()
    # the loss couples the rows of a batch (in-batch negatives): pmap, which splits it per device, refuses the task
    batch_coupled: ClassVar[bool] = False

    # -- schema ---------------------------------------------------------------------------------
    def check_model(self, config: Any) -> None:
        """ValueError unless a model config can serve this task (e.g. has ``num_classes``)."""

    def schema(self, config: Any) -> dict[str, ArraySpec]:
        """The required batch entries for a model with ``config``."""
        raise NotImplementedError

    def check_batch(self, batch: dict, config: Any) -> None:
        """ValueError naming the entry unless ``batch`` has every schema entry with its shape and dtype kind."""
        for key, spec in self.schema(config).items():
            if key not in batch:
                raise ValueError(f"task {self.name!r} needs batch entry {key!r} {spec.dtype} [B, "
                                 f"{', '.join(map(str, spec.shape))}]; the batch has {sorted(batch)}")
            shape = tuple(np.shape(batch[key]))[1:]
            if shape != spec.shape:
                raise ValueError(f"task {self.name!r}: batch entry {key!r} must be [B, "
                                 f"{', '.join(map(str, spec.shape))}], got shape {tuple(np.shape(batch[key]))}")

    def abstract_batch(self, config: Any, batch_size: int) -> dict:
        """``jax.ShapeDtypeStruct`` of each schema entry for a global batch of ``batch_size``."""
        return {k: spec.abstract(batch_size) for k, spec in self.schema(config).items()}

    def example_batch(self, config: Any, key: jax.Array, batch_size: int = 1) -> dict:
        """A valid random batch of the schema (registry-wide tests, benchmarks, memory planning)."""
        raise NotImplementedError

    def output_shape(self, config: Any, batch_size: int = 1) -> tuple[int, ...]:
        """Shape of the model's output on a batch of ``batch_size`` (what the loss reads)."""
        raise NotImplementedError

    # -- model call, loss, metrics --------------------------------------------------------------
    def model_inputs(self, batch: dict) -> tuple[Any, dict]:
        """``(main input, keyword inputs)`` the model is called with on ``batch``."""
        raise NotImplementedError

    def apply(self, apply_fn: Callable, variables: dict, batch: dict, **kwargs):
        """``apply_fn(variables, main_input, **model keyword inputs, **kwargs)`` (kwargs: train, rngs, mutable)."""
        x, inputs = self.model_inputs(batch)
        return apply_fn(variables, x, **inputs, **kwargs)

    def loss(self, outputs, batch: dict, *, label_smoothing: float = 0.0) -> jax.Array:
        """Scalar training loss of ``outputs`` (the model's) on a training batch."""
        raise NotImplementedError

    def loss_weight(self, outputs, batch: dict) -> jax.Array | None:
        """The denominator of the loss's mean when it is a mean over a varying number of items (target tokens).

        ``None`` (the default): every example weighs the same.  Under ``pmap`` the train step weights each
        device's loss and train metrics by ``loss_weight / mean over devices of loss_weight``, so the step
        averages over the global batch's tokens as one device (and the jit strategies) do.
        """
        return None

    def train_metrics(self, outputs, batch: dict) -> dict:
        """Scalar metrics of a training batch besides the loss (e.g. ``accuracy``)."""
        return {}

    def eval_sums(self, outputs, batch: dict, mask: jax.Array) -> dict:
        """Sums over the real examples (``mask [B]``) of an eval batch; they add across batches and devices."""
        raise NotImplementedError

    def metrics(self, sums: dict) -> dict:
        """Metrics (floats) from the eval sums added over a whole split."""
        raise NotImplementedError

    def better(self, new: float, best: float | None) -> bool:
        """Whether ``new`` improves on ``best`` (None: nothing yet) in ``best_metric``'s direction."""
        if best is None:
            return True
        return new > best if self.best_mode == "max" else new < best

    def predict(self, apply_fn: Callable, variables: dict, batch: dict):
        """What the model predicts on ``batch`` (generative tasks decode here); default: its outputs."""
        return self.apply(apply_fn, variables, batch, train=False)


class ItemMeanTask(Task):
    """A task whose loss and train accuracy are means over weighted items (tokens, or examples).

    Subclasses give ``items(outputs, batch) -> (losses, correct, weights)``, arrays of one shape (weight 0 = takes
    no part); the loss, the train accuracy and ``loss_weight`` (the pmap weighting) follow from them.
    """

    def items(self, outputs, batch: dict):
        raise NotImplementedError

    def loss(self, outputs, batch: dict, *, label_smoothing: float = 0.0):
        if label_smoothing:
            raise ValueError(f"label_smoothing is implemented for classification, not task {self.name!r}")
        losses, _, weights = self.items(outputs, batch)
        return weighted_mean(losses, weights)

    def train_metrics(self, outputs, batch: dict) -> dict:
        _, correct, weights = self.items(outputs, batch)
        return {"accuracy": weighted_mean(correct, weights)}

    def loss_weight(self, outputs, batch: dict):
        return self.items(outputs, batch)[2].sum()


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Registers a task instance under ``task.name``; returns it."""
    if not task.name:
        raise ValueError(f"{type(task).__name__} has no name")
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    if task.best_mode not in ("max", "min"):
        raise ValueError(f"task {task.name!r}: best_mode must be 'max' or 'min', got {task.best_mode!r}")
    _TASKS[task.name] = task
    return task


def get_task(name: str | Task) -> Task:
    """The registered task ``name`` (a ``Task`` is returned as is); ValueError listing known names."""
    if isinstance(name, Task):
        return name
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_TASKS))}") from None


def list_tasks() -> list[str]:
    return sorted(_TASKS)


def sums_to_host(sums: dict) -> dict:
    """Device sums as Python floats, or float64 arrays for array sums (a histogram), added on the host across batches."""
    return {k: float(v) if np.ndim(v) == 0 else np.asarray(v, np.float64) for k, v in jax.device_get(sums).items()}


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """``sum(values * weights) / sum(weights)`` (0 when no weight)."""
    return (values * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def padded_mask(mask: jax.Array, like: jax.Array) -> jax.Array:
    """``mask [B]`` broadcast to ``like``'s rank (``[B, 1, ...]``)."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1)).astype(jnp.float32)


__all__ = ["ArraySpec", "EVAL_MASK", "ItemMeanTask", "Task", "get_task", "list_tasks", "padded_mask", "register_task", "sums_to_host",
           "weighted_mean"]
