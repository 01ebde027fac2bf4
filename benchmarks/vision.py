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
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

# benchmarks/transformers.py would shadow the transformers package: drop this script's folder from the path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import jax  # noqa: E402
import numpy as np  # noqa: E402

MODELS = {"resnet50": "ResNet-50", "vit_base": "ViT-B/16"}


def zoo_runner(name, x, y, batch):
    import zoo
    from zoo.train import OptimizerConfig, create_train_state, make_optimizer, train_step

    model = zoo.create_model(name)
    state = create_train_state(model, make_optimizer(OptimizerConfig(name="adam"), 1), seed=0)
    step = jax.jit(train_step, donate_argnums=0)
    batches = [{"x": x[i:i + batch], "y": y[i:i + batch]} for i in range(0, len(x), batch)]
    holder = {"state": state}

    def run(n):
        s = holder["state"]
        for i in range(n):
            s, metrics = step(s, batches[i % len(batches)])
        jax.block_until_ready(metrics)
        holder["state"] = s

    return run, zoo.param_count(name)


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
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2 * batch, 224, 224, 3), dtype=np.float32)
    y = rng.integers(0, 1000, 2 * batch).astype(np.int32)
    runs, params, speed = {}, {}, {"zoo": [], "torch": []}
    for key, make in (("zoo", zoo_runner), ("torch", torch_runner)):
        runs[key], params[key] = make(name, x, y, batch)
        runs[key](1)  # warm-up: compile / allocate
    if params["zoo"] != params["torch"]:
        raise RuntimeError(f"{name}: parameter counts differ: {params}")
    for _ in range(repeats):
        for key, run in runs.items():
            t0 = time.perf_counter()
            run(steps)
            speed[key].append(steps * batch / (time.perf_counter() - t0))
    ratio = statistics.median(z / t for z, t in zip(speed["zoo"], speed["torch"]))
    return {k: statistics.median(v) for k, v in speed.items()}, ratio, params["zoo"], speed


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    import torch
    import transformers

    return (f"{cpu}, {os.cpu_count()} cores; jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), transformers {transformers.__version__}")


BEGIN, END = "<!-- vision.py: begin -->", "<!-- vision.py: end -->"


def write_block(path: str, block: str) -> None:
    """Replaces this script's block in ``path`` (keeping the text around it), or appends it."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="train steps per timed round")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per framework")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--note", default="", help="a sentence added under the table (e.g. machine load)")
    parser.add_argument("--write", metavar="FILE", help="also write the table into this markdown file")
    args = parser.parse_args()

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
        cmd = "python benchmarks/vision.py " + " ".join(sys.argv[1:])
        block = (f"{BEGIN}\n## Vision models: train-step throughput at 224x224, float32, CPU\n\n"
                 f"Measured {datetime.date.today().isoformat()} on {machine()}.\n\n"
                 f"Reproduce: `{cmd}`. {args.repeats} interleaved rounds of {args.steps} steps after a compiling "
                 "warm-up; Adam, softmax cross-entropy, training mode; medians over rounds, the ratio is the median "
                 "of per-round ratios (above 1: zoo is faster). PyTorch runs the Hugging Face models eagerly.\n\n"
                 f"{table}\n" + (f"\n{args.note}\n" if args.note else "") + f"{END}")
        write_block(args.write, block)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
