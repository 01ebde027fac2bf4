"""Optimizer factory: SGD with momentum, Adam, AdamW; warmup + cosine; clipping; weight decay."""

from __future__ import annotations

import dataclasses

import optax

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """What :func:`make_optimizer` builds.

    Attributes:
      name: "sgd" (with ``momentum``), "adam" (``weight_decay`` as an L2 term
        added to the gradient) or "adamw" (decoupled weight decay).
      learning_rate: peak learning rate.
      schedule: "constant" or "cosine" (decays to ``min_lr_ratio * learning_rate``
        at the last step).
      warmup_steps: linear warmup from 0 to the peak.
      momentum: SGD momentum (0 = plain SGD); nesterov: Nesterov momentum.
      b1 / b2 / eps: Adam moments.
      weight_decay: see ``name``.
      clip_norm: clip gradients to this global norm first (None = off).
    """

    name: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-7  # Keras's Adam default, so the seed's models train as the seed's code does
    weight_decay: float = 0.0
    clip_norm: float | None = None

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0 or None, got {self.clip_norm!r}")


def make_schedule(config: OptimizerConfig, total_steps: int) -> optax.Schedule:
    """Learning rate as a function of the step."""
    peak, warmup = config.learning_rate, config.warmup_steps
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0 if warmup else peak, peak_value=peak, warmup_steps=warmup,
            decay_steps=max(total_steps, warmup + 1), end_value=peak * config.min_lr_ratio,
        )
    if warmup:
        return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), optax.constant_schedule(peak)], [warmup])
    return optax.constant_schedule(peak)


def make_optimizer(config: OptimizerConfig, total_steps: int) -> optax.GradientTransformation:
    """Builds the optax chain: [clip] -> [L2] -> optimizer with the schedule.

    Args:
      config: see :class:`OptimizerConfig`.
      total_steps: length of training (the cosine schedule's horizon).
    """
    lr = make_schedule(config, total_steps)
    parts = []
    if config.clip_norm is not None:
        parts.append(optax.clip_by_global_norm(config.clip_norm))
    if config.weight_decay and config.name != "adamw":
        parts.append(optax.add_decayed_weights(config.weight_decay))
    if config.name == "sgd":
        parts.append(optax.sgd(lr, momentum=config.momentum or None, nesterov=config.nesterov))
    elif config.name == "adam":
        parts.append(optax.adam(lr, b1=config.b1, b2=config.b2, eps=config.eps))
    else:
        parts.append(optax.adamw(lr, b1=config.b1, b2=config.b2, eps=config.eps, weight_decay=config.weight_decay))
    return optax.chain(*parts)
