"""The uniform vision interface: pooled features, named feature maps and head replacement.

Every image model in the zoo returns logits from ``model.apply(variables, x, train=...)``,
sows its named intermediates (``sow("intermediates", name, value)``: e.g. a ResNet's
``stem``, ``stage1`` .. ``stage4``, a ViT's ``block_0`` ..; every model's ``pre_logits``,
the pooled features its linear ``head`` reads) and keeps its classifier in
``params["head"]``.  The functions here build on that, the way timm's
``forward_features`` / ``reset_classifier`` are used to fine-tune:

    features = extract_features(model, variables, images)          # {"pre_logits": [B, D], "stage1": ...}
    model, variables = replace_head(model, variables, 37, key)     # backbone kept, new 37-way head
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.registry import example_input


def extract_features(model: nn.Module, variables: dict, x, *, names=None) -> dict:
    """Named intermediate features of ``model`` on ``x`` (evaluation mode).

    Args:
      model: a zoo model that sows ``intermediates``.
      variables: its variables (``params`` and, e.g., ``batch_stats``).
      x: an input batch ``[B, *model.config.input_shape]``.
      names: which features to return (default: all the model sows).

    Returns:
      ``{name: array}``, e.g. ``pre_logits [B, D]`` and feature maps ``[B, h, w, c]``.

    Raises:
      ValueError: when a requested name is not among those the model sows.
    """
    _, state = model.apply(variables, x, train=False, mutable=["intermediates"])
    found = {name: values[-1] for name, values in state["intermediates"].items()}
    if names is None:
        return found
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"{type(model).__name__} has no features named {missing}; available: {sorted(found)}")
    return {n: found[n] for n in names}


def pooled_features(model: nn.Module, variables: dict, x):
    """The pooled features ``[B, D]`` the model's head reads (its ``pre_logits``)."""
    return extract_features(model, variables, x, names=["pre_logits"])["pre_logits"]


def replace_head(model: nn.Module, variables: dict, num_classes: int, key: jax.Array) -> tuple[nn.Module, dict]:
    """A copy of ``model`` with a fresh ``num_classes``-way head and every other variable kept.

    Args:
      model: a zoo model whose classifier is ``params["head"]``.
      variables: its trained (or imported) variables.
      num_classes: classes of the new head.
      key: initialises the new head.

    Returns:
      ``(new_model, new_variables)``: the model with ``config.num_classes = num_classes``,
      and variables whose backbone (all but ``params["head"]``) is ``variables``'s, the
      head freshly initialised as the model initialises it.

    Raises:
      ValueError: when ``variables`` do not match ``model`` (a backbone variable missing,
        extra or of another shape): nothing is silently re-initialised.
    """
    if "head" not in variables.get("params", {}):
        raise ValueError(f"{type(model).__name__} has no params['head'] to replace; top-level params: "
                         f"{sorted(variables.get('params', {}))}")
    new_model = type(model)(config=dataclasses.replace(model.config, num_classes=num_classes))
    fresh = nn.meta.unbox(new_model.init({"params": key, "dropout": key}, example_input(new_model.config),
                                         train=False))
    fresh = {k: v for k, v in fresh.items() if k != "intermediates"}
    old_backbone = _without_head(variables)
    new_backbone = _without_head(fresh)
    old_paths, new_paths = _shapes(old_backbone), _shapes(new_backbone)
    if old_paths != new_paths:
        missing = sorted(set(new_paths) - set(old_paths))
        extra = sorted(set(old_paths) - set(new_paths))
        shapes = sorted(p for p in set(old_paths) & set(new_paths) if old_paths[p] != new_paths[p])
        raise ValueError(f"variables do not match {type(model).__name__}'s backbone: missing {missing[:5]}, "
                         f"unexpected {extra[:5]}, other shapes {shapes[:5]}")
    new_variables = jax.tree.map(lambda a: a, old_backbone)  # a new tree; the leaves are shared, not copied
    new_variables["params"] = {**new_variables["params"], "head": fresh["params"]["head"]}
    return new_model, new_variables


def _without_head(variables: dict) -> dict:
    out = {k: dict(v) for k, v in variables.items()}
    out["params"].pop("head", None)
    return out


def _dtype(leaf):
    return jnp.dtype(leaf.dtype) if hasattr(leaf, "dtype") else jnp.result_type(leaf)


def _shapes(tree) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): (np.shape(leaf), _dtype(leaf)) for path, leaf in flat}


__all__ = ["extract_features", "pooled_features", "replace_head"]
