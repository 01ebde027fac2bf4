"""Training techniques on any registry model: pruning, quantization, federated averaging, DP-SGD, explanations.

Optax transformations and pure functions of a model and its variables; the
training extensions (:class:`DPSGD`, :class:`GradualPruning`) plug into
``zoo.train.TrainConfig.extensions``. Hyperparameter search (optuna) is ``zoo.techniques.tune.tune``.
"""

from zoo.techniques.privacy import DPSGD, clip_per_example, compute_epsilon, dp_aggregate, per_example_grads
from zoo.techniques.pruning import GradualPruning, apply_masks, magnitude_masks, prune_run, pruned, sparsity_report
from zoo.techniques.quantization import dequantize_params, quantize_params, quantize_run, qwix_int8

__all__ = [
    "DPSGD", "clip_per_example", "compute_epsilon", "dp_aggregate", "per_example_grads",
    "GradualPruning", "apply_masks", "magnitude_masks", "prune_run", "pruned", "sparsity_report",
    "dequantize_params", "quantize_params", "quantize_run", "qwix_int8",
]
