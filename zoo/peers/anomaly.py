"""scikit-learn outlier detectors as anomaly scorers (higher score = more anomalous)."""

from __future__ import annotations

import numpy as np

DETECTORS = ("isolation_forest", "one_class_svm", "local_outlier_factor")


def detector_scores(name: str, x_train, x_test, *, seed: int = 0, contamination="auto") -> np.ndarray:
    """Fits detector ``name`` on ``x_train`` and returns anomaly scores ``[M]`` of ``x_test``.

    Defaults as scikit-learn's: IsolationForest (100 trees), OneClassSVM (RBF, gamma
    ``"scale"``, nu 0.1: the usual one-class setting, sklearn's default is 0.5), LocalOutlierFactor
    (20 neighbours, ``novelty=True``).  ``contamination`` (IsolationForest, LOF) only
    moves their decision threshold, not the scores; a number must be in (0, 0.5].
    """
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.svm import OneClassSVM

    from zoo.tasks.anomaly import check_contamination

    if contamination != "auto":
        contamination = check_contamination(contamination)
    if name == "isolation_forest":
        model = IsolationForest(random_state=seed, contamination=contamination)
    elif name == "one_class_svm":
        model = OneClassSVM(nu=0.1, gamma="scale")
    elif name == "local_outlier_factor":
        model = LocalOutlierFactor(novelty=True, contamination=contamination)
    else:
        raise ValueError(f"unknown detector {name!r}; detectors: {', '.join(DETECTORS)}")
    model.fit(x_train)
    return -model.score_samples(x_test)  # sklearn: higher = more normal
