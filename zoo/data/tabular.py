"""Anomaly-detection datasets: scikit-learn's digits (one class vs the rest) and breast cancer.

``digits_ovr:K`` (K = 0..9): the ``digits`` split of ``zoo.data.digits`` (flat 64
pixels in [0, 1]); training holds only the digit K ("normal"), the test set every
test digit, labelled 1 (anomaly) unless it is a K.  The issue's protocol averages
AUROC over the ten choices of K (``examples/anomaly.py``).

``breast_cancer``: scikit-learn's Wisconsin breast cancer features (569 x 30).
Benign tumours are normal, malignant ones anomalies.  A fixed stratified split
(30% test) of each class; training holds the benign training part.  Features are
standardised with the training set's mean and standard deviation.

Both take ``contamination=R`` (``digits_ovr:3,contamination=0.05``): the training
set then also holds anomalies, a fraction R of it (drawn from the training part of
the other classes), the unsupervised setting; R must be in (0, 0.5].
"""

from __future__ import annotations

import numpy as np

from zoo.data.pipeline import ArrayDataset
from zoo.tasks.anomaly import check_contamination

SPLIT_SEED = 0


def _contaminate(normal: np.ndarray, anomalies: np.ndarray, contamination: float | None, seed: int) -> np.ndarray:
    if contamination is None:
        return normal
    contamination = check_contamination(contamination)
    count = int(round(contamination * len(normal) / (1.0 - contamination)))
    if count > len(anomalies):
        raise ValueError(f"contamination {contamination} needs {count} training anomalies; only {len(anomalies)} "
                         f"are available")
    chosen = np.random.default_rng([SPLIT_SEED, seed]).choice(len(anomalies), count, replace=False)
    return np.concatenate([normal, anomalies[chosen]])


def digits_one_vs_rest(normal_class: int, *, contamination: float | None = None, seed: int = 0):
    """``(x_train [N, 64], x_test [M, 64], y_test [M])``: train on digit ``normal_class``; y 1 = another digit."""
    from zoo.data.digits import load_digits_arrays

    if isinstance(normal_class, bool) or not isinstance(normal_class, (int, np.integer)) or not 0 <= normal_class <= 9:
        raise ValueError(f"digits_ovr: the normal class is a digit 0..9, got {normal_class!r}")
    x_train, y_train, x_test, y_test = load_digits_arrays()
    x_train, x_test = x_train.reshape(len(x_train), 64), x_test.reshape(len(x_test), 64)
    train = _contaminate(x_train[y_train == normal_class], x_train[y_train != normal_class], contamination, seed)
    return train.astype(np.float32), x_test.astype(np.float32), (y_test != normal_class).astype(np.int32)


def breast_cancer(*, contamination: float | None = None, seed: int = 0, test_fraction: float = 0.3):
    """``(x_train [N, 30], x_test [M, 30], y_test [M])`` standardised; y 1 = malignant."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    malignant = (data.target == 0).astype(np.int32)  # sklearn: 0 = malignant, 1 = benign
    x_train, x_test, y_train, y_test = train_test_split(data.data, malignant, test_size=test_fraction,
                                                        random_state=SPLIT_SEED, stratify=malignant)
    train = _contaminate(x_train[y_train == 0], x_train[y_train == 1], contamination, seed)
    mean, std = train.mean(0), train.std(0) + 1e-8
    return (((train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32),
            y_test.astype(np.int32))


def _options(name: str) -> tuple[str, str, dict]:
    base, _, args = str(name).partition(":")
    positional, options = "", {}
    for part in filter(None, args.split(",")):
        key, sep, value = part.partition("=")
        if sep:
            options[key] = value
        else:
            positional = part
    unknown = sorted(set(options) - {"contamination"})
    if unknown:
        raise ValueError(f"{base}: unknown option(s) {unknown}; the option is contamination=R")
    return base, positional, options


def load_anomaly_dataset(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """``--data digits_ovr:K[,contamination=R]`` or ``breast_cancer[:contamination=R]`` for an anomaly model."""
    from zoo.registry import task_name

    base, positional, options = _options(name)
    contamination = None
    if "contamination" in options:
        try:
            contamination = float(options["contamination"])
        except ValueError:
            raise ValueError(f"{base}: contamination must be a number in (0, 0.5], got "
                             f"{options['contamination']!r}") from None
    if not task_name(model_config).startswith("anomaly_"):
        raise ValueError(f"{base} serves anomaly detection; the model's task is {task_name(model_config)!r}")
    if base == "digits_ovr":
        if not positional.isdigit():
            raise ValueError(f"digits_ovr needs the normal digit: digits_ovr:K with K in 0..9, got {name!r}")
        x_train, x_test, y_test = digits_one_vs_rest(int(positional), contamination=contamination, seed=seed)
    else:
        if positional:
            raise ValueError(f"breast_cancer takes only contamination=R, got {name!r}")
        x_train, x_test, y_test = breast_cancer(contamination=contamination, seed=seed)
    if tuple(model_config.input_shape) != x_train.shape[1:]:
        raise ValueError(f"{base} has {x_train.shape[1]} features per example; the model's input_shape is "
                         f"{tuple(model_config.input_shape)} (zoo train ... --set input_shape=[{x_train.shape[1]}])")
    return ArrayDataset(name, {"inputs": x_train}, {"inputs": x_test, "label": y_test}, None, "vector")


__all__ = ["breast_cancer", "digits_one_vs_rest", "load_anomaly_dataset"]
