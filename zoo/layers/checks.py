"""Input checks shared by the models: clear errors instead of silent broadcasting."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def check_input(x, expected: Sequence[int], *, model: str, dims: str) -> None:
    """Raises ValueError unless ``x`` is ``[B, *expected]`` with a numeric dtype.

    Args:
      x: the array handed to a model.
      expected: the per-example shape the model's config declares.
      model: the model's name, for the message.
      dims: the named dims of the expected input, e.g. ``"[B, H, W, C]"``.
    """
    expected = tuple(int(d) for d in expected)
    shape = tuple(np.shape(x))
    if len(shape) != len(expected) + 1:
        raise ValueError(
            f"{model} expects input of rank {len(expected) + 1} {dims} = "
            f"[B, {', '.join(map(str, expected))}], got rank {len(shape)} with shape {shape}"
        )
    if shape[1:] != expected:
        raise ValueError(
            f"{model} expects input {dims} = [B, {', '.join(map(str, expected))}], "
            f"got shape {shape}"
        )
    dtype = jnp.result_type(x)
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise ValueError(f"{model} expects a real-valued numeric input, got dtype {dtype}")


def canonical_dtype(value, *, field: str):
    """Returns ``jnp.dtype(value)`` for a floating dtype, else a ValueError naming ``field``."""
    try:
        dtype = jnp.dtype(value)
    except TypeError as e:
        raise ValueError(f"{field} must be a floating dtype such as 'float32' or 'bfloat16', got {value!r}") from e
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{field} must be a floating dtype such as 'float32' or 'bfloat16', got {value!r}")
    return dtype


def check_univariate_forecaster(config) -> None:
    """ValueError unless a forecaster's config reads a univariate context ``(L, 1)`` for task ``forecasting``."""
    name = type(config).__name__
    if len(config.input_shape) != 2 or config.input_shape[1] != 1:
        raise ValueError(f"{name}.input_shape must be (L, 1) (a univariate context), got {config.input_shape!r}")
    if config.task != "forecasting" or config.layout != "sequence":
        raise ValueError(f"{name} serves task 'forecasting' on layout 'sequence', got task={config.task!r}, "
                         f"layout={config.layout!r}")


def check_positive_ints(config, *names: str) -> None:
    """ValueError unless each named field of ``config`` is a positive int (or tuple of them)."""
    for name in names:
        value = getattr(config, name)
        values = value if isinstance(value, tuple) else (value,)
        if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0 for v in values):
            raise ValueError(f"{type(config).__name__}.{name} must be positive integer(s), got {value!r}")


def check_rate(config, name: str) -> None:
    """ValueError unless the named field is a probability in [0, 1)."""
    value = getattr(config, name)
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{type(config).__name__}.{name} must be in [0, 1), got {value!r}")


def normalize_config(config, *, tuple_fields: Sequence[str] = ()) -> None:
    """Canonicalises a frozen config in place: dtypes to ``jnp.dtype``, lists to tuples.

    Also checks ``input_shape`` and, where the config has one, ``num_classes``.
    """
    for name in tuple_fields + ("input_shape",):
        value = getattr(config, name)
        if isinstance(value, list):
            object.__setattr__(config, name, tuple(value))
    for name in ("dtype", "param_dtype"):
        object.__setattr__(config, name, canonical_dtype(getattr(config, name), field=f"{type(config).__name__}.{name}"))
    check_positive_ints(config, "input_shape", *(("num_classes",) if hasattr(config, "num_classes") else ()))


def check_ids_in_range(ids, size: int, *, model: str, name: str = "token ids", field: str = "vocab_size") -> None:
    """Raises ValueError if concrete ``ids`` fall outside ``[0, size)``.

    An out-of-range id would gather garbage (NaN logits on CPU) instead of failing.
    Traced ids (under ``jit``) cannot be read, so they are not checked.

    Args:
      ids: integer ids, any shape.
      size: the number of rows of the table they index.
      model: the model's name; name: what the ids are; field: the config field of ``size``.
    """
    if isinstance(ids, jax.core.Tracer) or np.size(ids) == 0:
        return
    values = np.asarray(ids)
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= size:
        raise ValueError(f"{model} expects {name} in [0, {field}={size}), got ids from {low} to {high}")


def check_table_ids(x, table_sizes: Sequence[int], *, model: str, fields: Sequence[str],
                    size_fields: Sequence[str]) -> None:
    """Raises ValueError unless ``x`` is integer ids ``[B, F]`` whose column f is in ``[0, table_sizes[f])``.

    The id check needs concrete ids: traced ids (under ``jit``) cannot be read, so only their shape and dtype
    are checked (an id outside a table would gather a clipped row, silently).

    Args:
      x: ``[B, F]`` ids, column f one field (user, item, ...).
      table_sizes: rows of each field's table; fields: the fields' names (``"user"``); size_fields: the
        config fields of the sizes (``"num_users"``).
    """
    shape, width = tuple(np.shape(x)), len(table_sizes)
    dims = f"[B, {width}] ({', '.join(f + ' id' for f in fields)})"
    if len(shape) != 2:
        raise ValueError(f"{model} expects input of rank 2 {dims}, got rank {len(shape)} with shape {shape}")
    if shape[1] != width:
        raise ValueError(f"{model} expects input {dims}, got shape {shape}")
    if not jnp.issubdtype(jnp.result_type(x), jnp.integer):
        raise ValueError(f"{model} expects integer ids {dims}, got dtype {jnp.result_type(x)}")
    if isinstance(x, jax.core.Tracer) or not shape[0]:
        return
    values = np.asarray(x)
    for column, (size, field, size_field) in enumerate(zip(table_sizes, fields, size_fields)):
        ids = values[:, column]
        bad = ids[(ids < 0) | (ids >= size)]
        if bad.size:
            raise ValueError(f"{model}: {field} id {int(bad[0])} is outside the {field} table of {size_field}={size} "
                             f"rows (ids must be in [0, {size}); {bad.size} such id(s) in the batch)")


def check_tokens(x, max_length: int, *, model: str, vocab_size: int | None = None) -> None:
    """Raises ValueError unless ``x`` is integer token ids ``[B, T]`` with ``1 <= T <= max_length``
    (and, when ``vocab_size`` is given and ``x`` is concrete, ids in ``[0, vocab_size)``)."""
    shape = tuple(np.shape(x))
    if len(shape) != 2:
        raise ValueError(f"{model} expects input of rank 2 [B, T] (int token ids, T <= {max_length}), "
                         f"got rank {len(shape)} with shape {shape}")
    if not 1 <= shape[1] <= max_length:
        raise ValueError(f"{model} expects input [B, T] with 1 <= T <= {max_length} (its input_shape), "
                         f"got shape {shape}")
    if not jnp.issubdtype(jnp.result_type(x), jnp.integer):
        raise ValueError(f"{model} expects integer token ids, got dtype {jnp.result_type(x)}")
    if vocab_size is not None:
        check_ids_in_range(x, vocab_size, model=model)


# The fields every family spells the same way (see CONTRIBUTING.md, "One vocabulary").
SIZE_FIELDS = ("hidden_size", "num_layers", "num_heads", "mlp_dim", "hidden_sizes", "vocab_size")
RATE_FIELDS = ("dropout_rate", "attention_dropout_rate", "classifier_dropout_rate")


def dropout_fields(config) -> tuple[str, ...]:
    """The dropout-rate fields of ``config`` (a subset of ``RATE_FIELDS``), e.g. ``("dropout_rate",)``."""
    names = {f.name for f in dataclasses.fields(config)}
    return tuple(name for name in RATE_FIELDS if name in names)


def check_common_fields(config) -> None:
    """Checks whichever of the shared fields ``config`` has.

    ``hidden_size``, ``num_layers``, ``num_heads``, ``mlp_dim``, ``vocab_size``
    must be positive ints and ``hidden_sizes`` a non-empty tuple of them (a
    ``None`` size or rate means "derived" and is skipped); ``dropout_rate``,
    ``attention_dropout_rate`` and ``classifier_dropout_rate`` must be in
    [0, 1); ``num_heads`` must divide ``hidden_size``.

    Raises:
      ValueError: naming the config class, the field and its value.
    """
    names = {f.name for f in dataclasses.fields(config)}
    present = [n for n in SIZE_FIELDS if n in names and getattr(config, n) is not None]
    check_positive_ints(config, *present)
    for name in dropout_fields(config):
        if getattr(config, name) is not None:
            check_rate(config, name)
    if {"hidden_size", "num_heads"} <= names and config.hidden_size % config.num_heads:
        raise ValueError(f"{type(config).__name__}.hidden_size ({config.hidden_size}) must be divisible by "
                         f"num_heads ({config.num_heads})")


def check_image(x, channels: int, min_size: int, *, model: str) -> None:
    """Raises ValueError unless ``x`` is ``[B, H, W, channels]`` with ``H, W >= min_size`` and a numeric dtype.

    For fully convolutional models (global pooling before the head), which accept any image size.
    """
    shape = tuple(np.shape(x))
    if len(shape) != 4:
        raise ValueError(f"{model} expects images of rank 4 [B, H, W, C] with C = {channels} and H, W >= {min_size}, "
                         f"got rank {len(shape)} with shape {shape}")
    if shape[3] != channels or min(shape[1:3]) < min_size:
        raise ValueError(f"{model} expects images [B, H, W, C] with C = {channels} and H, W >= {min_size}, "
                         f"got shape {shape}")
    dtype = jnp.result_type(x)
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise ValueError(f"{model} expects a real-valued numeric input, got dtype {dtype}")
