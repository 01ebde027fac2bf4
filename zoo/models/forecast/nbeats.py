"""N-BEATS (Oreshkin et al., 2020), the generic architecture: doubly residual stacks of MLP blocks.

Each block reads what the blocks before it could not explain and returns a
*backcast* (its share of the context, subtracted from the residual) and a
*forecast* (added to the output)::

    r_0 = x                                   [B, L]
    h_b = MLP_b(r_b)                          [B, U]   num_layers ReLU layers of hidden_size U
    r_{b+1} = r_b - backcast_b(h_b)           [B, L]
    yhat = sum_b forecast_b(h_b)              [B, H]

The forecast is therefore one linear map of the concatenated block features
``[h_1 | ... | h_n]`` (sown as ``pre_logits``; :meth:`NBeats.head_linear` gives that
map).  Parameters per block: ``U (L + 1) + (num_layers - 1) U (U + 1) + (U + 1)(L + H)``, less the
last block's unused backcast ``(U + 1) L``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoo import registry
from zoo.layers import Dense, Dropout, axes, check_input, check_positive_ints, normalize_config, with_logical_constraint
from zoo.layers.checks import check_common_fields, check_univariate_forecaster


@dataclasses.dataclass(frozen=True, kw_only=True)
class NBeatsConfig:
    """Config of :class:`NBeats`.

    Attributes:
      input_shape: ``(L, 1)``: context length, one channel.
      horizon: forecast steps H.
      num_blocks: residual blocks.
      num_layers: ReLU layers per block; hidden_size: their width.
      dropout_rate: dropout after each hidden layer.
    """

    variant: str = "nbeats"  # the registered name (error messages)
    input_shape: tuple[int, ...] = (48, 1)
    horizon: int = 12
    num_blocks: int = 6
    num_layers: int = 4
    hidden_size: int = 256
    dropout_rate: float = 0.0
    task: str = "forecasting"
    layout: str = "sequence"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self)
        check_univariate_forecaster(self)
        check_positive_ints(self, "horizon", "num_blocks", "num_layers")
        check_common_fields(self)


class NBeats(nn.Module):
    """``[B, L, 1] -> [B, H]`` forecasts."""

    config: NBeatsConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, L, 1]")
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        residual = with_logical_constraint(x[..., 0].astype(cfg.dtype), (axes.BATCH, axes.LENGTH))  # [B, L]
        features, forecast = [], 0.0
        for b in range(cfg.num_blocks):
            h = residual
            for i in range(cfg.num_layers):
                h = nn.relu(Dense(cfg.hidden_size, name=f"block_{b}_hidden_{i}", **kw)(h))  # [B, U]
                h = Dropout(cfg.dropout_rate, deterministic=not train)(h)
            features.append(h)
            if b == cfg.num_blocks - 1:  # nothing reads the last block's backcast
                forecast = forecast + Dense(cfg.horizon, logical_axes=(axes.MLP, axes.CLASSES),
                                            name=f"block_{b}_forecast", **kw)(h)
                break
            residual = residual - Dense(cfg.input_shape[0], logical_axes=(axes.MLP, axes.CLASSES),
                                        name=f"block_{b}_backcast", **kw)(h)
            forecast = forecast + Dense(cfg.horizon, logical_axes=(axes.MLP, axes.CLASSES),
                                        name=f"block_{b}_forecast", **kw)(h)  # [B, H]
        self.sow("intermediates", "pre_logits", jnp.concatenate(features, axis=-1))  # [B, n U]
        return forecast

    @staticmethod
    def head_linear(params):
        """``(kernel [n U, H], bias [H])``: the forecast as one linear map of the sown block features."""
        heads = [params[k] for k in sorted((k for k in params if k.endswith("_forecast")),
                                           key=lambda k: int(k.split("_")[1]))]
        return (jnp.concatenate([h["kernel"] for h in heads], axis=0), sum(h["bias"] for h in heads))


registry.register_model(
    "nbeats", module=NBeats, config=NBeatsConfig(variant="nbeats"),
    description="N-BEATS generic: 6 residual MLP blocks (4 x 256 ReLU), backcast / forecast; 48 -> 12 steps",
)
registry.register_model(
    "nbeats_tiny", module=NBeats, config=NBeatsConfig(variant="nbeats_tiny", input_shape=(16, 1), horizon=4, num_blocks=2, num_layers=2,
                                                       hidden_size=16),
    description="tiny N-BEATS for tests: 2 blocks of 2 x 16; 16 -> 4 steps",
)
