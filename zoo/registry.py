"""Model registry: name -> (module class, default config).

``create_model(name, **overrides)`` returns a ``flax.linen.Module`` built from
the registered default config with ``overrides`` applied (and validated by the
config's ``__post_init__``); ``list_models(pattern)`` lists names.

Every registered config is a frozen, keyword-only dataclass with at least
``input_shape`` (per-example shape, no batch dim), ``layout`` (``"image"``,
``"sequence"`` or ``"vector"``: what a dataset must serve), ``num_classes``,
``dtype`` and ``param_dtype``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# image: float [B, H, W, C]; sequence: float [B, T, D]; vector: float [B, D];
# tokens: int32 token ids [B, T] (the config also has ``vocab_size``).
LAYOUTS = ("image", "sequence", "vector", "tokens")

# What a model's output means, and so which loss / metrics train on it (``config.task``;
# configs without the field are "classification"):
#   classification        [B, K] logits, labels [B]
#   token_classification  [B, T, K] logits, labels [B, T] (IGNORE_INDEX = no label)
#   question_answering    [B, T, 2] start / end logits, labels [B, 2] (start, end positions)
#   causal_lm             [B, T, V] next-token logits, labels [B, T] (the inputs shifted by one)
TASKS = ("classification", "token_classification", "question_answering", "causal_lm")
IGNORE_INDEX = -100  # token label that takes no part in loss or metrics

# Registry-wide conformance tests build and train every model at most this large
# (the full-size variants share their code with a tiny one that is tested).
CONFORMANCE_MAX_PARAMS = 3_000_000


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    module: type[nn.Module]
    config: Any  # the default config instance
    description: str


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, module: type[nn.Module], config: Any, description: str = "") -> ModelSpec:
    """Registers ``module`` built from ``config`` under ``name``.

    Args:
      name: unique model name (``zoo list`` shows it).
      module: a Linen module class taking ``config=`` as its only field.
      config: the default config dataclass instance.
      description: one line for listings.

    Returns:
      the new ``ModelSpec``.
    """
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    for field in ("input_shape", "layout", "num_classes", "dtype", "param_dtype"):
        if not hasattr(config, field):
            raise TypeError(f"config of model {name!r} lacks the required field {field!r}")
    if config.layout not in LAYOUTS:
        raise ValueError(f"model {name!r}: layout must be one of {LAYOUTS}, got {config.layout!r}")
    if config.layout == "tokens" and not hasattr(config, "vocab_size"):
        raise TypeError(f"config of token model {name!r} lacks the required field 'vocab_size'")
    spec = ModelSpec(name=name, module=module, config=config, description=description)
    _REGISTRY[name] = spec
    return spec


def _ensure_loaded() -> None:
    import zoo.models  # noqa: F401  (registers the families)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered models matching the shell-style ``pattern``."""
    _ensure_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The ``ModelSpec`` of ``name``; ValueError listing known names if unknown."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def get_config(name: str, **overrides) -> Any:
    """The default config of ``name`` with ``overrides`` applied and validated."""
    spec = get_spec(name)
    fields = {f.name for f in dataclasses.fields(spec.config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown config field(s) {unknown} for model {name!r}; valid fields: {sorted(fields)}"
        )
    return dataclasses.replace(spec.config, **overrides)


def create_model(name: str, **overrides) -> nn.Module:
    """Builds model ``name`` with config ``overrides``.

    Args:
      name: a name from :func:`list_models`.
      **overrides: config fields to change, e.g. ``dtype="bfloat16"``.

    Returns:
      a ``flax.linen.Module`` with a ``config`` attribute; call it as
      ``model.apply(variables, x, train=False, rngs=...)``.
    """
    spec = get_spec(name)
    return spec.module(config=get_config(name, **overrides))


def _input_dtype(config: Any):
    return jnp.int32 if config.layout == "tokens" else jnp.float32


def example_input(config: Any, batch_size: int = 1) -> jax.Array:
    """Zeros of shape ``[batch_size, *config.input_shape]`` (float32, or int32 token ids)."""
    return jnp.zeros((batch_size, *config.input_shape), _input_dtype(config))


def random_input(config: Any, key: jax.Array, batch_size: int = 1) -> jax.Array:
    """A valid random input ``[batch_size, *config.input_shape]``: uniform [0, 1) floats, or token ids in the vocabulary."""
    shape = (batch_size, *config.input_shape)
    if config.layout == "tokens":
        return jax.random.randint(key, shape, 0, config.vocab_size, jnp.int32)
    return jax.random.uniform(key, shape, jnp.float32)


def task_of(config: Any) -> str:
    """The task of a model config (one of ``TASKS``; ``"classification"`` when the config has no ``task``)."""
    task = getattr(config, "task", "classification")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def output_shape(config: Any, batch_size: int = 1) -> tuple[int, ...]:
    """Shape of the model's output on ``[batch_size, *input_shape]`` inputs (see ``TASKS``)."""
    task = task_of(config)
    if task == "classification":
        return (batch_size, config.num_classes)
    length = config.input_shape[0]
    return (batch_size, length, 2 if task == "question_answering" else config.num_classes)


def random_target(config: Any, key: jax.Array, batch_size: int = 1) -> jax.Array:
    """Valid random labels for the model's task (``[B]``, ``[B, T]`` or ``[B, 2]`` int32)."""
    task = task_of(config)
    if task == "classification":
        return jax.random.randint(key, (batch_size,), 0, config.num_classes, jnp.int32)
    length = config.input_shape[0]
    if task == "question_answering":
        return jnp.sort(jax.random.randint(key, (batch_size, 2), 0, length, jnp.int32), axis=-1)
    return jax.random.randint(key, (batch_size, length), 0, config.num_classes, jnp.int32)


def head_linear(model: nn.Module, params: dict) -> tuple[jax.Array, jax.Array]:
    """``(kernel [D, K], bias [K])`` of the linear map from the sown ``pre_logits`` to the logits.

    A model class may define ``head_linear(params)`` (e.g. tied embeddings);
    otherwise it is the ``head`` Dense layer.
    """
    if hasattr(type(model), "head_linear"):
        return type(model).head_linear(params)
    return params["head"]["kernel"], params["head"]["bias"]


def init_variables(model: nn.Module, rng: jax.Array, batch_size: int = 1) -> dict:
    """Initialises ``model`` on an example input; returns unboxed variables (without sown intermediates)."""
    variables = model.init({"params": rng, "dropout": rng}, example_input(model.config, batch_size), train=False)
    return {k: v for k, v in nn.meta.unbox(variables).items() if k != "intermediates"}


def param_count(model_or_name: nn.Module | str, **overrides) -> int:
    """Number of parameters (computed abstractly, no memory is allocated)."""
    model = create_model(model_or_name, **overrides) if isinstance(model_or_name, str) else model_or_name
    shapes = jax.eval_shape(lambda: init_variables(model, jax.random.key(0)))
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(shapes.get("params", {}))))


def config_to_dict(config: Any) -> dict:
    """JSON-friendly dict of a config (dtypes as names, tuples as lists)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, (np.dtype, type)) or f.name.endswith("dtype"):
            value = jnp.dtype(value).name
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


__all__ = [
    "ModelSpec", "register_model", "list_models", "get_spec", "get_config", "create_model",
    "example_input", "random_input", "init_variables", "param_count", "config_to_dict", "LAYOUTS",
    "CONFORMANCE_MAX_PARAMS", "TASKS", "IGNORE_INDEX", "task_of", "output_shape", "random_target", "head_linear",
]
