"""Deep SVDD (Ruff et al., 2018), one-class: map normal data close to a fixed centre.

A bias-free MLP ``phi`` (ReLU; no bias terms, so it cannot map every input to the
centre by a constant: the paper's guard against "hypersphere collapse") is trained to
minimise ``|phi(x) - c|^2`` on normal data; that distance is the anomaly score.  The
centre is fixed: the unit vector ``c = ones(K) / sqrt(K)`` (non-zero, as the paper requires; the
inputs are standardised, so a fixed unit-length centre is as good as any).  The
module returns ``phi(x) - c`` ``[B, K]``: a linear map (``head``, bias ``-c``) of the
last hidden layer, sown as ``pre_logits``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import Dense, Dropout, axes, check_input, normalize_config, with_logical_constraint
from zoo.layers.checks import check_common_fields


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeepSVDDConfig:
    """Config of :class:`DeepSVDD`.

    Attributes:
      input_shape: ``(D,)`` features per example.
      hidden_sizes: widths of the bias-free layers; the last is the embedding size K.
      dropout_rate: dropout after each hidden layer.
    """

    variant: str = "deep_svdd"  # the registered name (error messages)
    input_shape: tuple[int, ...] = (64,)
    hidden_sizes: tuple[int, ...] = (128, 64, 32)
    dropout_rate: float = 0.0
    task: str = "anomaly_svdd"
    layout: str = "vector"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self, tuple_fields=("hidden_sizes",))
        if len(self.input_shape) != 1:
            raise ValueError(f"DeepSVDDConfig.input_shape must be (D,), got {self.input_shape!r}")
        check_common_fields(self)
        if len(self.hidden_sizes) < 2:
            raise ValueError(f"DeepSVDDConfig.hidden_sizes needs at least two layers (hidden, embedding), got "
                             f"{self.hidden_sizes!r}")
        if self.task != "anomaly_svdd" or self.layout != "vector":
            raise ValueError(f"DeepSVDDConfig serves task 'anomaly_svdd' on layout 'vector', got task={self.task!r}, "
                             f"layout={self.layout!r}")


def center_vector(size: int):
    """The fixed centre ``ones(K) / sqrt(K)`` ``[K]``."""
    return jnp.full((size,), size ** -0.5, jnp.float32)


class DeepSVDD(nn.Module):
    """``[B, D] -> [B, K]``: ``phi(x) - c``."""

    config: DeepSVDDConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, D]")
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype, use_bias=False)
        h = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.EMBED))
        for i, width in enumerate(cfg.hidden_sizes[:-1]):
            h = nn.relu(Dense(width, name=f"hidden_{i}", **kw)(h))
            h = Dropout(cfg.dropout_rate, deterministic=not train)(h)
        self.sow("intermediates", "pre_logits", h)
        phi = Dense(cfg.hidden_sizes[-1], logical_axes=(axes.MLP, axes.CLASSES), name="head", **kw)(h)  # [B, K]
        return phi - center_vector(cfg.hidden_sizes[-1]).astype(phi.dtype)

    @staticmethod
    def head_linear(params):
        """``(kernel [H, K], -c)``: ``phi(x) - c`` as a linear map of the sown features."""
        kernel = params["head"]["kernel"]
        return kernel, -center_vector(kernel.shape[1])


registry.register_model(
    "deep_svdd", module=DeepSVDD, config=DeepSVDDConfig(variant="deep_svdd"),
    description="Deep SVDD one-class: bias-free MLP 128-64-32, distance to a fixed centre; 64 features",
)
registry.register_model(
    "deep_svdd_tiny", module=DeepSVDD, config=DeepSVDDConfig(variant="deep_svdd_tiny", input_shape=(8,), hidden_sizes=(16, 8)),
    description="tiny Deep SVDD for tests: bias-free 8-16-8",
)
