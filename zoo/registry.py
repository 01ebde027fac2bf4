"""Model registry: name -> (module class, default config, task name).

``create_model(name, **overrides)`` returns a ``flax.linen.Module`` built from
the registered default config with ``overrides`` applied (and validated by the
config's ``__post_init__``); ``list_models(pattern)`` lists names.

Every registered config is a frozen, keyword-only dataclass with at least
``input_shape`` (per-example shape of the main input, no batch dim), ``layout``
(``LAYOUTS``), ``dtype`` and ``param_dtype``.  The task (``zoo.tasks``) is recorded
by name; the registry knows nothing of what a task does.  A config with a ``task``
field (BERT's heads) picks its task itself.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# image: float [B, H, W, C]; sequence: float [B, T, D]; vector: float [B, D];
# tokens: int32 token ids [B, T] (the config also has ``vocab_size``); ids: int32 [B, F], one id per field,
# column f indexing a table of ``config.table_sizes[f]`` rows (recommenders: user id, item id).  The layout is what a
# model's main input is; what a batch holds besides it is up to the model's task (``zoo.tasks``).
LAYOUTS = ("image", "sequence", "vector", "tokens", "ids")

# Registry-wide conformance tests build and train every model at most this large
# (the full-size variants share their code with a tiny one that is tested).
CONFORMANCE_MAX_PARAMS = 3_000_000


def conformance_models() -> list[str]:
    """The smallest registered variant of each architecture (module class) up to ``CONFORMANCE_MAX_PARAMS``.

    The registry-wide and parallel-strategy tests run these: a family's other variants differ in widths and
    depths only, and every variant is still initialised abstractly.
    """
    smallest: dict = {}
    for name in list_models():
        size = param_count(name)
        if size <= CONFORMANCE_MAX_PARAMS:
            module = get_spec(name).module
            if module not in smallest or size < smallest[module][0]:
                smallest[module] = (size, name)
    return sorted(name for _, name in smallest.values())


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    module: type[nn.Module]
    config: Any  # the default config instance
    description: str
    task: str = "classification"  # a zoo.tasks name


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, module: type[nn.Module], config: Any, description: str = "",
                   task: str | None = None) -> ModelSpec:
    """Registers ``module`` built from ``config`` under ``name``.

    Args:
      name: unique model name (``zoo list`` shows it).
      module: a Linen module class taking ``config=`` as its only field.
      config: the default config dataclass instance.
      description: one line for listings.
      task: the ``zoo.tasks`` name the model is trained for (default: ``config.task`` if the
        config has that field, else ``"classification"``).

    Returns:
      the new ``ModelSpec``.
    """
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    for field in ("input_shape", "layout", "dtype", "param_dtype"):
        if not hasattr(config, field):
            raise TypeError(f"config of model {name!r} lacks the required field {field!r}")
    if config.layout not in LAYOUTS:
        raise ValueError(f"model {name!r}: layout must be one of {LAYOUTS}, got {config.layout!r}")
    if config.layout == "tokens" and not hasattr(config, "vocab_size"):
        raise TypeError(f"config of token model {name!r} lacks the required field 'vocab_size'")
    if config.layout == "ids" and len(getattr(config, "table_sizes", ())) != config.input_shape[-1]:
        raise TypeError(f"config of id model {name!r} needs table_sizes with one size per id field "
                        f"(input_shape {tuple(config.input_shape)})")
    if task is None:
        task = getattr(config, "task", "classification")
    elif hasattr(config, "task") and config.task != task:
        raise ValueError(f"model {name!r}: task={task!r} disagrees with its config's task {config.task!r}")
    spec = ModelSpec(name=name, module=module, config=config, description=description, task=task)
    _REGISTRY[name] = spec
    return spec


def _ensure_loaded() -> None:
    import zoo.models  # noqa: F401  (registers the families)


def list_models(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Sorted names of registered models matching the shell-style ``pattern`` (and trained for ``task``)."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items()
                  if fnmatch.fnmatchcase(n, pattern) and (task is None or s.task == task))


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
    return jnp.int32 if config.layout in ("tokens", "ids") else jnp.float32


def example_input(config: Any, batch_size: int = 1) -> jax.Array:
    """Zeros of shape ``[batch_size, *config.input_shape]`` (float32, or int32 token ids)."""
    return jnp.zeros((batch_size, *config.input_shape), _input_dtype(config))


def random_input(config: Any, key: jax.Array, batch_size: int = 1) -> jax.Array:
    """A valid random input ``[batch_size, *config.input_shape]``: uniform [0, 1) floats, or token ids in the vocabulary."""
    shape = (batch_size, *config.input_shape)
    if config.layout == "tokens":
        return jax.random.randint(key, shape, 0, config.vocab_size, jnp.int32)
    if config.layout == "ids":  # column f in [0, table_sizes[f])
        return jax.random.randint(key, shape, 0, jnp.asarray(config.table_sizes, jnp.int32), jnp.int32)
    return jax.random.uniform(key, shape, jnp.float32)


def task_name(config: Any) -> str:
    """The task name of a model config: its ``task`` field, else what its model was registered with."""
    if hasattr(config, "task"):
        return config.task
    _ensure_loaded()
    tasks = {s.task for s in _REGISTRY.values() if type(s.config) is type(config)}
    if len(tasks) != 1:
        raise ValueError(f"cannot tell the task of a {type(config).__name__}: "
                         + ("no registered model has that config class" if not tasks else
                            f"its models are registered for several tasks {sorted(tasks)}; give the config a task field"))
    return tasks.pop()


def head_linear(model: nn.Module, params: dict) -> tuple[jax.Array, jax.Array]:
    """``(kernel [D, K], bias [K])`` of the linear map from the sown ``pre_logits`` to the logits.

    A model class may define ``head_linear(params)`` (e.g. tied embeddings);
    otherwise it is the ``head`` Dense layer.
    """
    if hasattr(type(model), "head_linear"):
        return type(model).head_linear(params)
    return params["head"]["kernel"], params["head"]["bias"]


def _check_model(model, fn: str) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "config"):
        raise TypeError(f"{fn} takes a zoo model (a flax.linen.Module from zoo.create_model, with a config); "
                        f"got {type(model).__name__}" + (" (variables? pass the model, not its variables)"
                                                         if isinstance(model, dict) else ""))


@functools.lru_cache(maxsize=64)
def _compiled_init(model: nn.Module, batch_size: int):
    def init(rng):
        variables = model.init({"params": rng, "dropout": rng}, example_input(model.config, batch_size), train=False)
        return {k: v for k, v in nn.meta.unbox(variables).items() if k != "intermediates"}

    return jax.jit(init)


def init_variables(model: nn.Module, rng: jax.Array, batch_size: int = 1) -> dict:
    """Initialises ``model`` on an example input; returns unboxed variables (without sown intermediates).

    The initialisation runs as one compiled program (eager Flax init of a transformer
    costs seconds op by op); the same values as ``model.init`` on that input.

    Args:
      model: a model from :func:`create_model`.
      rng: a ``jax.random`` key.
      batch_size: batch of the example input (shapes of the variables do not depend on it).
    """
    _check_model(model, "init_variables")
    if not isinstance(rng, jax.Array):
        raise TypeError(f"init_variables takes a jax.random key as rng (jax.random.key(0)), got {type(rng).__name__}")
    try:
        fn = _compiled_init(model, batch_size)
    except TypeError:  # an unhashable module (a field holding an array): compile without the cache
        fn = _compiled_init.__wrapped__(model, batch_size)
    return fn(rng)


@functools.lru_cache(maxsize=None)
def _default_param_count(name: str) -> int:
    return param_count(create_model(name))


def param_count(model_or_name: nn.Module | str, **overrides) -> int:
    """Number of parameters of a model or registered name (computed abstractly, no memory is allocated)."""
    if isinstance(model_or_name, str):
        if not overrides:  # a registered default: its count never changes
            return _default_param_count(model_or_name)
        model = create_model(model_or_name, **overrides)
    else:
        _check_model(model_or_name, "param_count")
        if overrides:
            raise TypeError("param_count takes config overrides only with a model name")
        model = model_or_name
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
    "CONFORMANCE_MAX_PARAMS", "conformance_models", "task_name", "head_linear",
]
