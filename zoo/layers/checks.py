"""Input checks shared by the models: clear errors instead of silent broadcasting."""

from __future__ import annotations

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

    Also checks the fields every model config has: ``input_shape`` and ``num_classes``.
    """
    for name in tuple_fields + ("input_shape",):
        value = getattr(config, name)
        if isinstance(value, list):
            object.__setattr__(config, name, tuple(value))
    for name in ("dtype", "param_dtype"):
        object.__setattr__(config, name, canonical_dtype(getattr(config, name), field=f"{type(config).__name__}.{name}"))
    check_positive_ints(config, "input_shape", "num_classes")


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
