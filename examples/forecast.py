"""Forecast real series with N-BEATS, a PatchTST-style Transformer and the seed LSTM (seq2seq), against
seasonal naive, ETS and SARIMA in the same run.

    python examples/forecast.py                          # all eight series, all models and peers
    python examples/forecast.py --series co2 airpassengers --models nbeats --steps 500

For each series (``zoo.data.timeseries.SERIES``) the deep models train on the windows
before the first rolling origin and forecast the held-out tail from every origin; the
peers are refitted at every origin on everything before it.  Prints MASE and sMAPE per
series and model as a Markdown table (the one in docs/forecasting.md), and whether each
model beats seasonal naive everywhere and ETS on at least half the series.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zoo  # noqa: E402
from quick_fit import fit, predict  # noqa: E402
from zoo.data.timeseries import SERIES, series_split  # noqa: E402
from zoo.peers import PEERS, peer_forecasts  # noqa: E402
from zoo.tasks.forecasting import denormalize, mase, smape  # noqa: E402

MODELS = ("nbeats", "patchtst", "lstm_seq2seq")


def model_overrides(name: str, split) -> dict:
    overrides = {"input_shape": (split.context, 1), "horizon": split.horizon}
    if name == "patchtst":  # patches of ~1/6 of the context, half-overlapping
        patch = max(2, split.context // 6 // 2 * 2)
        while (split.context - patch) % (patch // 2):
            patch -= 2
        overrides.update(patch_len=patch, stride=patch // 2)
    if name == "lstm_seq2seq" and split.context > 64:
        overrides["unroll"] = 8  # a scan, not 336 unrolled steps
    return overrides


def deep_forecast(name: str, split, *, steps: int, seed: int) -> np.ndarray:
    model = zoo.create_model(name, **model_overrides(name, split))
    dataset = split.dataset()
    state, _ = fit(model, dataset, steps=steps, lr=1e-3, seed=seed)
    return denormalize(predict(state, dataset.test["inputs"]), dataset.test)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", nargs="+", default=list(SERIES), choices=list(SERIES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model and series")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    names = [*args.peers, *args.models]
    results = {}
    start = time.time()
    for series in args.series:
        split = series_split(series)
        actual = split.actuals()
        row = {}
        for name in names:
            t = time.time()
            forecast = (peer_forecasts(split, name) if name in PEERS
                        else deep_forecast(name, split, steps=args.steps, seed=args.seed))
            row[name] = (mase(actual, forecast, split.mase_scale), smape(actual, forecast))
            print(f"{series:14s} {name:15s} MASE {row[name][0]:.3f}  sMAPE {row[name][1]:6.2f}  "
                  f"({time.time() - t:.1f}s)", file=sys.stderr, flush=True)
        results[series] = row

    print("\n| series (freq, m, H, origins) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for series, row in results.items():
        info, split = SERIES[series], series_split(series)
        best = min(v[0] for v in row.values())
        cells = [(f"**{m:.3f}**" if m == best else f"{m:.3f}") + f" / {s:.1f}" for m, s in row.values()]
        print(f"| {series} ({info.frequency}, {info.period}, {info.horizon}, {len(split.origins)}) | "
              + " | ".join(cells) + " |")
    print("\nMASE / sMAPE (%); bold: best MASE of the row.")
    for name in args.models:
        if "seasonal_naive" in args.peers:
            below = sum(results[s][name][0] < results[s]["seasonal_naive"][0] for s in results)
            print(f"{name}: MASE below seasonal naive on {below}/{len(results)} series", end="")
        if "ets" in args.peers:
            below_ets = sum(results[s][name][0] < results[s]["ets"][0] for s in results)
            print(f", below ETS on {below_ets}/{len(results)}", end="")
        print()
    print(f"total {time.time() - start:.0f}s; load average {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
