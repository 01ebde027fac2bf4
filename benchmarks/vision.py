"""Train-step throughput of ResNet-50 and ViT-B/16 at 224x224: zoo vs Hugging Face PyTorch (eager).

    python benchmarks/vision.py [--batch 8] [--steps 3] [--repeats 3] [--write BENCHMARKS.md]

Both sides train the same architecture (same parameter count, checked) from the same
kind of random init with Adam and softmax cross-entropy on the same in-memory
float32 batches, in training mode (BatchNorm batch statistics, dropout 0).  zoo runs
its jitted ``train_step`` (NHWC; default ``conv_impl="auto"``); PyTorch runs
``ResNetForImageClassification`` / ``ViTForImageClassification`` eagerly (NCHW).
Rounds of ``--steps`` steps alternate between the two after a compiling warm-up;
the table shows median images/s and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import numpy as np

from bench_common import batch_arrays, command, example_batch, header, write_section, zoo_train_runner

MODELS = {"resnet50": "ResNet-50", "vit_base": "ViT-B/16"}


def _batches(name, batch, count=2):
    """``count`` zoo batches of ``batch`` images and, for PyTorch, the same data as numpy ``(x, y)``."""
    import zoo

    model = zoo.create_model(name)
    batches = [jax.device_get(example_batch(model, k, batch)) for k in jax.random.split(jax.random.key(0), count)]
    x, y, _ = zip(*map(batch_arrays, batches))
    return batches, np.concatenate(x), np.concatenate(y)


def torch_runner(name, x, y, batch):
    import torch
    import transformers

    torch.manual_seed(0)
    if name == "resnet50":
        model = transformers.ResNetForImageClassification(transformers.ResNetConfig(num_labels=1000))
    else:
        model = transformers.ViTForImageClassification(transformers.ViTConfig(num_labels=1000))
    model.train()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    yt = torch.from_numpy(y).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    n_batches = len(x) // batch

    def run(n):
        for i in range(n):
            j = (i % n_batches) * batch
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(pixel_values=xt[j:j + batch]).logits, yt[j:j + batch])
            loss.backward()
            opt.step()

    return run, sum(p.numel() for p in model.parameters())


def measure(name, batch, steps, repeats):
    batches, x, y = _batches(name, batch)
    runs, params, speed = {}, {}, {"zoo": [], "torch": []}
    runs["zoo"], params["zoo"] = zoo_train_runner(name, batches, donate=True)
    runs["torch"], params["torch"] = torch_runner(name, x, y, batch)
    for run in runs.values():
        run(1)  # warm-up: compile / allocate
    if params["zoo"] != params["torch"]:
        raise RuntimeError(f"{name}: parameter counts differ: {params}")
    for _ in range(repeats):
        for key, run in runs.items():
            t0 = time.perf_counter()
            run(steps)
            speed[key].append(steps * batch / (time.perf_counter() - t0))
    ratio = statistics.median(z / t for z, t in zip(speed["zoo"], speed["torch"]))
    return {k: statistics.median(v) for k, v in speed.items()}, ratio, params["zoo"], speed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="train steps per timed round")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per framework")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--note", default="", help="a sentence added to the block (e.g. what else ran)")
    parser.add_argument("--write", metavar="FILE", help="also write the table into this markdown file")
    args = parser.parse_args()
    machine = header(("torch", "transformers"))
    print(machine, flush=True)

    rows = ["| model | params | batch | zoo images/s | PyTorch eager images/s | zoo / PyTorch | rounds (zoo / torch) |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for name in args.models:
        med, ratio, params, speed = measure(name, args.batch, args.steps, args.repeats)
        rounds = ", ".join(f"{z:.2f}/{t:.2f}" for z, t in zip(speed["zoo"], speed["torch"]))
        rows.append(f"| {MODELS[name]} (`{name}`) | {params:,} | {args.batch} | {med['zoo']:.2f} | "
                    f"{med['torch']:.2f} | {ratio:.2f}x | {rounds} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print("\n" + table)
    if args.write:
        write_section(
            args.write, "vision.py", title="Vision models: train-step throughput at 224x224, float32, CPU",
            measured_on=machine, note=args.note, tables=table,
            method=f"Reproduce: `{command('vision.py', sys.argv[1:])}`. {args.repeats} interleaved rounds of "
                   f"{args.steps} steps after a compiling warm-up; Adam, softmax cross-entropy, training mode; medians "
                   "over rounds, the ratio is the median of per-round ratios (above 1: zoo is faster). PyTorch runs "
                   "the Hugging Face models eagerly.")


if __name__ == "__main__":
    main()
