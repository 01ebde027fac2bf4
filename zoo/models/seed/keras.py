"""Weights to and from Keras ``Sequential`` models of the seed's architectures.

``model.get_weights()`` of the seed's Keras CNN / LSTM / an MLP of Dense
layers is a flat list in layer order, each layer giving ``kernel, bias``
(Dense, Conv2D) or ``kernel, recurrent_kernel, bias`` (LSTM).  zoo's layers
use the same shapes and gate order, so conversion is a copy with checks.
Imported lazily (``import zoo.models.seed.keras``): models stay cheap to
import and never need Keras.
"""

from __future__ import annotations

import re

import numpy as np

_PARAM_ORDER = ("kernel", "recurrent_kernel", "bias")


def _layer_order(params: dict) -> list[str]:
    def natural(name):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]

    body = sorted((n for n in params if n != "head"), key=natural)
    return body + (["head"] if "head" in params else [])


def _flat_slots(params: dict) -> list[tuple[str, str]]:
    return [(layer, p) for layer in _layer_order(params) for p in _PARAM_ORDER if p in params[layer]]


def params_from_keras(params: dict, weights: list) -> dict:
    """zoo ``params`` with every array replaced by the matching Keras weight.

    Args:
      params: the zoo model's ``variables["params"]`` (gives structure, shapes, dtypes).
      weights: ``keras_model.get_weights()``.

    Returns:
      a new params dict.

    Raises:
      ValueError: naming the first weight whose count or shape does not match.
    """
    slots = _flat_slots(params)
    if len(weights) != len(slots):
        raise ValueError(
            f"the Keras model has {len(weights)} weight arrays, this zoo model expects {len(slots)} "
            f"({', '.join(f'{layer}/{p}' for layer, p in slots)})"
        )
    out = {layer: dict(values) for layer, values in params.items()}
    for (layer, name), w in zip(slots, weights):
        target = params[layer][name]
        w = np.asarray(w)
        if w.shape != tuple(target.shape):
            raise ValueError(f"Keras weight for {layer}/{name} has shape {w.shape}, expected {tuple(target.shape)}")
        out[layer][name] = w.astype(target.dtype)
    return out


def params_to_keras(params: dict) -> list[np.ndarray]:
    """The ``keras_model.set_weights`` list for zoo ``params``."""
    return [np.asarray(params[layer][name]) for layer, name in _flat_slots(params)]
