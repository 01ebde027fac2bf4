"""Score anomalies with an autoencoder, a VAE and Deep SVDD, against IsolationForest, OneClassSVM and
LocalOutlierFactor (novelty) in the same run.

    python examples/anomaly.py                                  # all three protocols
    python examples/anomaly.py --protocols breast_cancer --steps 500

Protocols (``zoo.data.tabular``):

* ``digits``: one digit is normal (trained on), the other nine are anomalies; AUROC on
  the test set, averaged over the ten choices of the normal digit;
* ``breast_cancer``: trained on benign tumours; malignant ones are the anomalies;
* ``series``: a real series (elnino, monthly sea surface temperature) with 12 spikes of
  +-4 standard deviations of its monthly changes injected at known positions of its
  held-out tail; each point is scored by the residual of a one-step forecast of N-BEATS,
  PatchTST and the LSTM seq2seq (trained on the clean part), against the seasonal naive
  residual and the detectors on lag windows.

AUROC is exact (``zoo.tasks.anomaly.auroc``, equal to sklearn's roc_auc_score).
``--contamination R`` (in (0, 0.5]) also mixes a fraction R of anomalies into training.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zoo  # noqa: E402
from quick_fit import fit, predict  # noqa: E402
from zoo.data import ArrayDataset  # noqa: E402
from zoo.data.tabular import breast_cancer, digits_one_vs_rest  # noqa: E402
from zoo.data.timeseries import load_series_values, make_split  # noqa: E402
from zoo.peers import DETECTORS, detector_scores  # noqa: E402
from zoo.tasks import get_task  # noqa: E402
from zoo.tasks.anomaly import auroc, check_contamination  # noqa: E402

SCORERS = ("autoencoder", "vae", "deep_svdd")
FORECASTERS = ("nbeats", "patchtst", "lstm_seq2seq")


def deep_scores(name, x_train, x_test, *, steps, seed):
    model = zoo.create_model(name, input_shape=(x_train.shape[1],))
    dataset = ArrayDataset(name, {"inputs": x_train}, {"inputs": x_test}, None, "vector")
    state, _ = fit(model, dataset, steps=steps, lr=1e-3, seed=seed, weight_decay=1e-4)
    task = get_task(model.config.task)
    return np.asarray(task.scores(predict(state, x_test), {"inputs": x_test}))


def tabular_row(x_train, x_test, y_test, names, *, steps, seed):
    row = {}
    for name in names:
        scores = (detector_scores(name, x_train, x_test, seed=seed) if name in DETECTORS
                  else deep_scores(name, x_train, x_test, steps=steps, seed=seed))
        row[name] = auroc(y_test, scores)
    return row


def injected_series(seed: int, count: int = 12):
    """elnino with ``count`` spikes in its last 232 months; returns (values, labels, first scored index)."""
    values = load_series_values("elnino").copy()
    first = len(values) - 232
    rng = np.random.default_rng(seed)
    positions = first + np.sort(rng.choice(232, count, replace=False))
    size = 4 * np.std(np.diff(values[:first]))
    values[positions] += size * rng.choice([-1.0, 1.0], count)
    labels = np.zeros(len(values), np.int32)
    labels[positions] = 1
    return values, labels, first


def series_row(names, *, steps, seed):
    values, labels, first = injected_series(seed)
    context = 48
    split = make_split(values, name="elnino+spikes", period=12, context=context, horizon=1, holdout=len(values) - first)
    y, truth = values[first:], labels[first:]
    row = {}
    for name in names:
        if name == "seasonal_naive":
            residual = y - values[first - 12:-12]
        elif name in DETECTORS:
            lags = np.lib.stride_tricks.sliding_window_view(values, 13)  # [y_{t-12} .. y_t]
            windows = lags - lags[:, -2:-1]  # changes relative to the previous month
            train, test = windows[:first - 12], windows[first - 12:]
            residual = detector_scores(name, train, test, seed=seed)
        else:
            model = zoo.create_model(name, input_shape=(context, 1), horizon=1)
            dataset = split.dataset()
            state, _ = fit(model, dataset, steps=steps, lr=1e-3, seed=seed)
            forecast = dataset.test["loc"] + dataset.test["scale"] * predict(state, dataset.test["inputs"])[:, 0]
            residual = y - forecast
        row[name] = auroc(truth, np.abs(residual))
    return row


def table(title, rows, names):
    print(f"\n{title}\n\n| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for label, row in rows.items():
        best = max(row.values())
        print(f"| {label} | " + " | ".join(f"**{row[n]:.4f}**" if row[n] == best else f"{row[n]:.4f}"
                                         for n in names) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", nargs="+", default=["digits", "breast_cancer", "series"],
                        choices=["digits", "breast_cancer", "series"])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per model")
    parser.add_argument("--contamination", type=float, default=None,
                        help="fraction of anomalies mixed into training, in (0, 0.5] (default: clean training)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.contamination is not None:
        check_contamination(args.contamination)
    start = time.time()
    names = [*DETECTORS, *SCORERS]
    if "digits" in args.protocols:
        rows = {}
        for digit in range(10):
            rows[f"digit {digit}"] = tabular_row(*digits_one_vs_rest(digit, contamination=args.contamination,
                                                                     seed=args.seed), names, steps=args.steps,
                                                 seed=args.seed)
            print(f"digit {digit}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[f'digit {digit}'].items()),
                  file=sys.stderr, flush=True)
        rows["**mean**"] = {n: float(np.mean([r[n] for r in rows.values()])) for n in names}
        table("Digits one-vs-rest, test AUROC", rows, names)
    if "breast_cancer" in args.protocols:
        row = tabular_row(*breast_cancer(contamination=args.contamination, seed=args.seed), names, steps=args.steps,
                          seed=args.seed)
        table("Breast cancer (benign = normal), test AUROC", {"breast cancer": row}, names)
    if "series" in args.protocols:
        series_names = ["seasonal_naive", *DETECTORS, *FORECASTERS]
        table("elnino with 12 injected spikes, AUROC of forecast residuals",
              {"elnino + spikes": series_row(series_names, steps=args.steps, seed=args.seed)}, series_names)
    print(f"\ntotal {time.time() - start:.0f}s; load average {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
