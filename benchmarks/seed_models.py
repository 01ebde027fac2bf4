"""Train-step throughput of the seed models: zoo vs Keras 3 (JAX backend) vs PyTorch eager.

    python benchmarks/seed_models.py [--steps 30] [--repeats 5] [--write BENCHMARKS.md]

All three train the same architecture (the seed's §4.1 CNN and §4.2 LSTM,
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
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402

BATCH = 128


def _data(shape, steps, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((steps * BATCH, *shape), dtype=np.float32)
    y = rng.integers(0, 10, steps * BATCH).astype(np.int32)
    return x, y


# --- zoo ---------------------------------------------------------------------------------------------------------
def zoo_runner(name, x, y):
    import zoo
    from zoo.train import OptimizerConfig, create_train_state, make_optimizer, train_step

    model = zoo.create_model(name)
    state = create_train_state(model, make_optimizer(OptimizerConfig(name="adam"), 1), seed=0)
    step = jax.jit(train_step)
    batches = [{"x": x[i:i + BATCH], "y": y[i:i + BATCH]} for i in range(0, len(x), BATCH)]
    holder = {"state": state}

    def run(n):
        s = holder["state"]
        for i in range(n):
            s, metrics = step(s, batches[i % len(batches)])
        jax.block_until_ready(metrics)
        holder["state"] = s

    return run, zoo.param_count(name)


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
    if name == "seed_cnn":
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NCHW, PyTorch's native layout
    else:
        class SeedLSTM(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm_0 = nn.LSTM(10, 128, batch_first=True)
                self.lstm_1 = nn.LSTM(128, 128, batch_first=True)
                self.head = nn.Linear(128, 10)

            def forward(self, inputs):
                h, _ = self.lstm_0(inputs)
                h, _ = self.lstm_1(h)
                return self.head(h[:, -1])

        model = SeedLSTM()
        xt = torch.from_numpy(x)
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


BEGIN, END = "<!-- seed_models.py: begin -->", "<!-- seed_models.py: end -->"


def write_block(path: str, block: str, begin: str = BEGIN, end: str = END) -> None:
    """Replaces the block between ``begin`` and ``end`` in ``path`` (kept text around it), or appends it."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


RUNNERS = {"zoo": zoo_runner, "keras-jax": keras_runner, "torch": torch_runner}
SHAPES = {"seed_cnn": (28, 28, 1), "seed_lstm": (10, 10)}


def measure(name, steps, repeats):
    x, y = _data(SHAPES[name], steps)
    runs, params, samples = {}, {}, {k: [] for k in RUNNERS}
    for key, make in RUNNERS.items():
        runs[key], params[key] = make(name, x, y)
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


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    import keras
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"jax {jax.__version__} ({jax.default_backend()}), keras {keras.__version__}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="train steps per timed round")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per framework (median reported)")
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--write", metavar="FILE", help="also write the table to this markdown file")
    args = parser.parse_args()

    header = "| model | params | zoo samples/s | Keras-JAX samples/s | PyTorch samples/s | zoo / Keras-JAX | zoo / PyTorch |"
    rows = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for name in args.models:
        res, ratio, params = measure(name, args.steps, args.repeats)
        rows.append(f"| {name} | {params:,} | {res['zoo']:,.0f} | {res['keras-jax']:,.0f} | {res['torch']:,.0f} | "
                    f"{ratio['keras-jax']:.2f}x | {ratio['torch']:.2f}x |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print("\n" + table)
    if args.write:
        cmd = "python benchmarks/seed_models.py " + " ".join(sys.argv[1:])
        block = (
            f"{BEGIN}\n"
            "## Seed models: train-step throughput, batch 128, float32\n\n"
            f"Measured {datetime.date.today().isoformat()} on {machine()}.\n\n"
            f"Reproduce: `{cmd}` (or `make bench`). {args.repeats} interleaved rounds of "
            f"{args.steps} steps each, after a compiling warm-up; samples/s are medians over rounds, ratios the median "
            "of the per-round ratios (each round runs the three back to back); above 1 means zoo is faster. "
            "Keras runs the seed's own code on its JAX backend (`model.fit`); PyTorch is eager with the "
            "same layers and parameter count.\n\n"
            f"{table}\n{END}"
        )
        write_block(args.write, block)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
