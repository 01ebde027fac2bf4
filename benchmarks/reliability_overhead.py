"""Cost of the non-finite check in the train step (README "Reliability").

    python benchmarks/reliability_overhead.py [--steps 50] [--repeats 7]

Times one jitted train step of each model three ways, interleaved so that load
on the machine hits all alike: the plain ``train_step``; with the
``all_finite`` flag (``on_nonfinite="stop"``, the default); and with the flag
plus keeping the old state on a non-finite step (``"skip"``). Prints the median
time per step and the ratio to the plain step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import optax

import zoo
from bench_common import example_batch, header
from zoo.train import create_train_state, train_step
from zoo.train.integrity import with_finite_flag


def time_steps(step, state, batch, steps: int) -> float:
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
    return (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,seed_cnn,seed_lstm")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(header(packages=()))
    print(f"| model | plain step (ms) | + finite flag (stop) | + skip non-finite | on {jax.devices()[0].platform}, "
          f"batch {args.batch_size} |\n|---|---:|---:|---:|---|")
    for name in args.models.split(","):
        model = zoo.create_model(name)
        state = create_train_state(model, optax.adam(1e-3), seed=0)
        batch = jax.device_get(example_batch(model, jax.random.key(1), args.batch_size))
        variants = {"plain": jax.jit(train_step), "stop": jax.jit(with_finite_flag(train_step)),
                    "skip": jax.jit(with_finite_flag(train_step, skip_nonfinite=True))}
        times = {k: [] for k in variants}
        for _ in range(args.repeats):
            for key, step in variants.items():
                times[key].append(time_steps(step, state, batch, args.steps))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"| {name} | {med['plain'] * 1e3:.2f} | {med['stop'] * 1e3:.2f} ({med['stop'] / med['plain']:.3f}x) | "
              f"{med['skip'] * 1e3:.2f} ({med['skip'] / med['plain']:.3f}x) | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
