"""Autoencoder and variational autoencoder anomaly scorers on feature vectors.

Both mirror an MLP encoder ``hidden_sizes`` -> ``latent_dim`` with a decoder of the
reversed widths, ReLU between layers, linear output.  Trained on normal examples,
they reconstruct normal inputs well and anomalies badly; the tasks
(``zoo.tasks.anomaly``) turn that into a score::

    Autoencoder  [B, D] -> encoder [B, Z] -> decoder [B, Hd] -> head [B, D]                (anomaly_reconstruction)
    VAE          [B, D] -> encoder [B, He] -> latent [B, 2Z] (mean, log variance)
                        -> z = mean + latent_noise * exp(log_var / 2) * eps  (eps ~ N(0, I); z = mean in eval)
                        -> decoder [B, Hd] -> head [B, D];  returns [recon | mean | log_var]  (anomaly_vae)

The VAE's output is one linear map of ``[decoder features | encoder features]``
(block-diagonal: ``head`` and ``latent``), sown as ``pre_logits``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo import registry
from zoo.layers import Dense, Dropout, axes, check_input, check_positive_ints, normalize_config, with_logical_constraint
from zoo.layers.checks import check_common_fields

LOG_VAR_RANGE = (-10.0, 10.0)  # keeps exp(log_var) finite early in training
INITIAL_LOG_VAR = -4.0  # q(z | x) starts narrow (std 0.14): early training sees a near-deterministic code


def _latent_bias_init(latent_dim: int):
    def init(key, shape, dtype=jnp.float32):
        del key
        return jnp.zeros(shape, dtype).at[latent_dim:].set(INITIAL_LOG_VAR)

    return init


@dataclasses.dataclass(frozen=True, kw_only=True)
class AutoencoderConfig:
    """Config of :class:`Autoencoder` and :class:`VAE`.

    Attributes:
      input_shape: ``(D,)`` features per example.
      hidden_sizes: encoder widths (the decoder's are reversed).
      latent_dim: bottleneck / latent size Z.
      dropout_rate: dropout after each hidden layer.
      latent_noise: VAE only: scale of the reparameterisation noise in training (1 = a VAE; 0 = deterministic).
      task: ``anomaly_reconstruction`` (autoencoder) or ``anomaly_vae``.
    """

    variant: str = "autoencoder"  # the registered name (error messages)
    input_shape: tuple[int, ...] = (64,)
    hidden_sizes: tuple[int, ...] = (128, 64)
    latent_dim: int = 16
    dropout_rate: float = 0.0
    latent_noise: float = 1.0
    task: str = "anomaly_reconstruction"
    layout: str = "vector"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self, tuple_fields=("hidden_sizes",))
        if len(self.input_shape) != 1:
            raise ValueError(f"AutoencoderConfig.input_shape must be (D,), got {self.input_shape!r}")
        check_positive_ints(self, "latent_dim")
        check_common_fields(self)
        if not isinstance(self.latent_noise, (int, float)) or self.latent_noise < 0:
            raise ValueError(f"AutoencoderConfig.latent_noise must be a non-negative number, got {self.latent_noise!r}")
        if self.task not in ("anomaly_reconstruction", "anomaly_vae") or self.layout != "vector":
            raise ValueError(f"AutoencoderConfig serves task 'anomaly_reconstruction' or 'anomaly_vae' on layout "
                             f"'vector', got task={self.task!r}, layout={self.layout!r}")


def _mlp(x, widths, cfg, *, prefix: str, train: bool):
    for i, width in enumerate(widths):
        x = nn.relu(Dense(width, dtype=cfg.dtype, param_dtype=cfg.param_dtype, name=f"{prefix}_{i}")(x))
        x = Dropout(cfg.dropout_rate, deterministic=not train)(x)
    return x


class Autoencoder(nn.Module):
    """``[B, D] -> [B, D]`` reconstruction."""

    config: AutoencoderConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, D]")
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.EMBED))
        h = _mlp(x, cfg.hidden_sizes, cfg, prefix="encoder", train=train)
        code = Dense(cfg.latent_dim, name="code", **kw)(h)  # [B, Z] linear bottleneck
        h = _mlp(code, cfg.hidden_sizes[::-1], cfg, prefix="decoder", train=train)  # [B, Hd]
        self.sow("intermediates", "pre_logits", h)
        return Dense(cfg.input_shape[0], logical_axes=(axes.MLP, axes.CLASSES), name="head", **kw)(h)  # [B, D]


class VAE(nn.Module):
    """``[B, D] -> [B, D + 2Z]``: reconstruction, mean and log variance of q(z | x)."""

    config: AutoencoderConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        cfg = self.config
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, D]")
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        x = with_logical_constraint(x.astype(cfg.dtype), (axes.BATCH, axes.EMBED))
        h_enc = _mlp(x, cfg.hidden_sizes, cfg, prefix="encoder", train=train)  # [B, He]
        stats = Dense(2 * cfg.latent_dim, logical_axes=(axes.MLP, axes.CLASSES), name="latent",
                      bias_init=_latent_bias_init(cfg.latent_dim), **kw)(h_enc)
        mean, log_var = jnp.split(stats, 2, axis=-1)  # [B, Z] each
        log_var = jnp.clip(log_var, *LOG_VAR_RANGE)
        z = mean
        if train and cfg.latent_noise:
            eps = jax.random.normal(self.make_rng("dropout"), mean.shape, mean.dtype)
            z = mean + cfg.latent_noise * jnp.exp(0.5 * log_var) * eps
        h_dec = _mlp(z, cfg.hidden_sizes[::-1], cfg, prefix="decoder", train=train)  # [B, Hd]
        self.sow("intermediates", "pre_logits", jnp.concatenate([h_dec, h_enc], axis=-1))
        recon = Dense(cfg.input_shape[0], logical_axes=(axes.MLP, axes.CLASSES), name="head", **kw)(h_dec)
        return jnp.concatenate([recon, mean, log_var], axis=-1)  # [B, D + 2Z]

    @staticmethod
    def head_linear(params):
        """Block-diagonal ``(kernel [Hd + He, D + 2Z], bias)`` of ``[recon | mean | log_var]`` on the sown features.

        (Exact while no log variance is clipped.)
        """
        head, latent = params["head"], params["latent"]
        kernel = jax.scipy.linalg.block_diag(head["kernel"], latent["kernel"])
        return kernel, jnp.concatenate([head["bias"], latent["bias"]])


registry.register_model(
    "autoencoder", module=Autoencoder, config=AutoencoderConfig(variant="autoencoder"),
    description="MLP autoencoder 128-64-16-64-128 anomaly scorer (reconstruction error); 64 features",
)
registry.register_model(
    "autoencoder_tiny", module=Autoencoder, config=AutoencoderConfig(variant="autoencoder_tiny", input_shape=(8,), hidden_sizes=(16,),
                                                                     latent_dim=4),
    description="tiny autoencoder for tests: 8-16-4-16-8",
)
registry.register_model(
    "vae", module=VAE, config=AutoencoderConfig(variant="vae", task="anomaly_vae"),
    description="MLP VAE 128-64-(16 latent)-64-128 anomaly scorer (negative ELBO); 64 features",
)
registry.register_model(
    "vae_tiny", module=VAE, config=AutoencoderConfig(variant="vae_tiny", input_shape=(8,), hidden_sizes=(16,), latent_dim=4,
                                                     task="anomaly_vae"),
    description="tiny VAE for tests: 8-16-(4 latent)-16-8",
)
