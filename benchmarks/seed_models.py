"""Train-step throughput of the seed models: zoo vs Keras 3 (JAX backend) vs PyTorch eager.

    python benchmarks/seed_models.py [--steps 30] [--repeats 5] [--write BENCHMARKS.md]

All three train the same architecture (the seed's Keras CNN and LSTM,
Adam, cross-entropy) on the same in-memory batches of 128.  The frameworks
are timed in turn, ``--repeats`` rounds of ``--steps`` steps each, after a
warm-up that compiles; the table shows the median samples/s and zoo's ratio
to each peer.  Interleaving the rounds keeps the comparison fair on a noisy
shared machine.  Keras runs the seed's own code (``model.fit`` on the
compiled ``Sequential``); PyTorch runs an eager ``nn.Module`` with the same
layer shapes and parameter count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from bench_common import (batch_arrays, command, example_batch, header, torch_seed_model,  # noqa: E402
                          write_section, zoo_train_runner)

BATCH = 128


def _batches(name, steps, seed=0):
    """``steps`` zoo batches of ``BATCH`` and, for the peers, the same data as numpy ``(x, y)``."""
    import zoo

    model = zoo.create_model(name)
    keys = jax.random.split(jax.random.key(seed), steps)
    batches = [jax.device_get(example_batch(model, k, BATCH)) for k in keys]
    x, y, _ = zip(*map(batch_arrays, batches))
    return batches, np.concatenate(x), np.concatenate(y)


# --- Keras 3, the seed's code -------------------------------------------------------------------------------------
def keras_runner(name, x, y):
    import keras
    from keras.layers import LSTM, Conv2D, Dense, Flatten, MaxPooling2D

    keras.utils.set_random_seed(0)
    model = keras.Sequential()
    if name == "seed_cnn":
        model.add(keras.Input((28, 28, 1)))
        model.add(Conv2D(32, (3, 3), activation="relu"))
        model.add(MaxPooling2D((2, 2)))
        model.add(Conv2D(64, (3, 3), activation="relu"))
        model.add(MaxPooling2D((2, 2)))
        model.add(Flatten())
        model.add(Dense(128, activation="relu"))
        model.add(Dense(10, activation="softmax"))
    else:
        model.add(keras.Input((10, 10)))
        model.add(LSTM(128, return_sequences=True))
        model.add(LSTM(128))
        model.add(Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    onehot = np.eye(10, dtype=np.float32)[y]

    def run(n):
        model.fit(x[:n * BATCH], onehot[:n * BATCH], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    return run, model.count_params()


# --- PyTorch eager ------------------------------------------------------------------------------------------------
def torch_runner(name, x, y):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = torch_seed_model(name)
    # NCHW, PyTorch's native layout, for the CNN
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() if name == "seed_cnn" else torch.from_numpy(x)
    yt = torch.from_numpy(y).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_batches = len(x) // BATCH
    # torch.nn.LSTM carries two bias vectors per layer (b_ih + b_hh); Keras and zoo carry one.
    params = sum(p.numel() for n, p in model.named_parameters() if "bias_hh" not in n)

    def run(n):
        for i in range(n):
            j = (i % n_batches) * BATCH
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(xt[j:j + BATCH]), yt[j:j + BATCH])
            loss.backward()
            opt.step()

    return run, params


RUNNERS = {"zoo": zoo_train_runner, "keras-jax": keras_runner, "torch": torch_runner}
MODELS = ("seed_cnn", "seed_lstm")


def measure(name, steps, repeats):
    batches, x, y = _batches(name, steps)
    runs, params, samples = {}, {}, {k: [] for k in RUNNERS}
    for key, make in RUNNERS.items():
        runs[key], params[key] = make(name, batches) if key == "zoo" else make(name, x, y)
        runs[key](steps)  # warm-up: compile / allocate
    if len(set(params.values())) != 1:
        raise RuntimeError(f"{name}: the peers do not have the same parameter count: {params}")
    for _ in range(repeats):
        for key, run in runs.items():
            t0 = time.perf_counter()
            run(steps)
            samples[key].append(steps * BATCH / (time.perf_counter() - t0))
    medians = {k: statistics.median(v) for k, v in samples.items()}
    # ratios are taken within each round (the frameworks ran back to back), then the median over rounds
    ratios = {k: statistics.median(z / p for z, p in zip(samples["zoo"], samples[k])) for k in samples if k != "zoo"}
    return medians, ratios, params["zoo"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="train steps per timed round")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per framework (median reported)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--write", metavar="FILE", help="also write the table to this markdown file")
    args = parser.parse_args()
    machine = header(("keras", "torch"))
    print(machine, flush=True)

    columns = "| model | params | zoo samples/s | Keras-JAX samples/s | PyTorch samples/s | zoo / Keras-JAX | zoo / PyTorch |"
    rows = [columns, "|---|---:|---:|---:|---:|---:|---:|"]
    for name in args.models:
        res, ratio, params = measure(name, args.steps, args.repeats)
        rows.append(f"| {name} | {params:,} | {res['zoo']:,.0f} | {res['keras-jax']:,.0f} | {res['torch']:,.0f} | "
                    f"{ratio['keras-jax']:.2f}x | {ratio['torch']:.2f}x |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print("\n" + table)
    if args.write:
        write_section(
            args.write, "seed_models.py", title="Seed models: train-step throughput, batch 128, float32",
            measured_on=machine, tables=table,
            method=f"Reproduce: `{command('seed_models.py', sys.argv[1:])}` (or `make bench`). {args.repeats} "
                   f"interleaved rounds of {args.steps} steps each, after a compiling warm-up; samples/s are medians "
                   "over rounds, ratios the median of the per-round ratios (each round runs the three back to back); "
                   "above 1 means zoo is faster. Keras runs the seed's own code on its JAX backend (`model.fit`); "
                   "PyTorch is eager with the same layers and parameter count.")


if __name__ == "__main__":
    main()
