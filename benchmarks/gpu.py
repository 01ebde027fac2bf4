"""Train-step benchmark of the flagship models on one accelerator: zoo (JAX) vs compiled PyTorch.

    python benchmarks/gpu.py                       # full sizes, on the default JAX device (a GPU)
    python benchmarks/gpu.py --small               # the same code at tiny sizes (CPU, seconds)
    python benchmarks/gpu.py --models gpt2 bert_base --steps 50 --write BENCHMARKS.md

For each model: a bf16 train step (float32 master weights, loss and optimizer
state; AdamW) at the sizes below, reporting compile time, the median step time
over ``--steps`` steps after warm-up, throughput, MFU against the card's dense
bf16 peak with FLOPs both from the analytic formula and from XLA's cost
analysis, and peak device memory.  In the same run the equivalent PyTorch model
(Hugging Face ``transformers`` for GPT-2, BERT, ResNet and ViT; plain ``nn``
modules for the seed models) trains under ``torch.compile`` with bf16 autocast
and fused AdamW, and the table shows zoo's throughput as a ratio to it.

Nothing is downloaded or installed: models are built from configs with random
weights and fed random batches.

| model      | zoo name  | batch          | PyTorch peer                                   |
|------------|-----------|----------------|------------------------------------------------|
| GPT-2 124M | gpt2      | 16 x 1024 tok  | GPT2LMHeadModel                                |
| BERT-base  | bert_base | 64 x 128 tok   | BertForSequenceClassification (2 labels)       |
| ResNet-50  | resnet50  | 256 x 224x224  | ResNetForImageClassification (channels_last)   |
| ViT-B/16   | vit_base  | 128 x 224x224  | ViTForImageClassification                      |
| seed CNN   | seed_cnn  | 1024 x 28x28   | nn.Sequential, same layers                     |
| seed LSTM  | seed_lstm | 1024 x 10x10   | nn.LSTM x2 (cuDNN)                             |
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable

import jax

from bench_common import batch_arrays, command, example_batch, load_average, torch_seed_model, versions, write_section
from flops import jaxpr_flops, peak_flops, transformer_train_flops


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmarked model: the zoo registry name and overrides, the batch, and its PyTorch peer."""

    name: str
    zoo_model: str
    batch: int
    overrides: dict = dataclasses.field(default_factory=dict)
    small_model: str = ""
    small_batch: int = 4
    small_overrides: dict = dataclasses.field(default_factory=dict)
    unit: str = "samples"  # what throughput counts: "tokens" for language models


# The transformers use jax.nn.dot_product_attention (cuDNN flash attention on NVIDIA GPUs), which has no dropout
# on the attention weights: both sides train without attention dropout (hidden-state dropout stays at 0.1).
FLASH = {"attention_impl": "dot_product", "attention_dropout_rate": 0.0}
CASES = {
    "gpt2": Case("GPT-2 124M", "gpt2", 16, overrides=FLASH, unit="tokens", small_model="gpt2_tiny", small_batch=2,
                 small_overrides=FLASH),
    "bert_base": Case("BERT-base", "bert_base", 64, overrides={"num_classes": 2, **FLASH}, small_model="bert_tiny",
                      small_batch=4, small_overrides={"num_classes": 2, "input_shape": (32,), **FLASH}),
    "resnet50": Case("ResNet-50", "resnet50", 256, small_model="resnet_tiny", small_batch=4),
    "vit_base": Case("ViT-B/16", "vit_base", 128, small_model="vit_micro", small_batch=4),
    "seed_cnn": Case("seed CNN", "seed_cnn", 1024, small_model="seed_cnn", small_batch=32),
    "seed_lstm": Case("seed LSTM", "seed_lstm", 1024, small_model="seed_lstm", small_batch=32),
}


# --- zoo ------------------------------------------------------------------------------------------------------------
def zoo_runner(case: Case, small: bool):
    import zoo
    from zoo.train import OptimizerConfig, create_train_state, make_optimizer, train_step

    name = case.small_model if small else case.zoo_model
    overrides = dict(case.small_overrides if small else case.overrides)
    batch_size = case.small_batch if small else case.batch
    model = zoo.create_model(name, dtype="bfloat16", **overrides)
    tx = make_optimizer(OptimizerConfig(name="adamw", learning_rate=1e-4, weight_decay=0.01), 1)
    state = create_train_state(model, tx, seed=0)
    batch = example_batch(model, jax.random.key(1), batch_size)
    step = jax.jit(train_step, donate_argnums=0)

    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    xla_flops = float(cost.get("flops", float("nan"))) if cost else float("nan")

    analytic = analytic_flops(case, name, overrides, batch_size, batch)
    holder = {"state": state}

    def run(n: int) -> None:
        s = holder["state"]
        for _ in range(n):
            s, metrics = compiled(s, batch)
        jax.block_until_ready(metrics)
        holder["state"] = s

    mem = compiled.memory_analysis()
    memory = (mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
              + mem.temp_size_in_bytes) if mem is not None else None
    items = batch_size * (batch_arrays(batch)[0].shape[1] if case.unit == "tokens" else 1)
    return run, {"model": name, "compile_s": compile_s, "xla_flops": xla_flops, "analytic_flops": analytic, "batch": batch_size,
                 "params": zoo.param_count(model), "items": items, "memory": memory}


def analytic_flops(case: Case, name: str, overrides: dict, batch_size: int, batch: dict) -> float:
    """Training FLOPs per step from the model's shapes (forward matmul/conv FLOPs x 3, or the PaLM formula)."""
    import zoo

    config = zoo.get_config(name, **overrides)
    if config.layout == "tokens":
        n_layers = getattr(config, "num_layers")
        d_model = getattr(config, "hidden_size", None) or getattr(config, "embed_dim")
        seq_len = batch_arrays(batch)[0].shape[1]
        params = zoo.param_count(name, **overrides)
        # the position table is a lookup, not a matmul; GPT-2's tied token table is the output matmul
        params -= config.max_position_embeddings * d_model
        if case.unit != "tokens":  # BERT: its token table is only a lookup
            params -= config.vocab_size * d_model
        return transformer_train_flops(params, n_layers, d_model, seq_len, batch_size * seq_len)
    if hasattr(config, "conv_impl"):
        overrides = {**overrides, "conv_impl": "xla"}  # count convolutions as convolutions
    model = zoo.create_model(name, **overrides)
    variables = jax.eval_shape(lambda: zoo.init_variables(model, jax.random.key(0)))
    return 3.0 * jaxpr_flops(lambda v, x: model.apply(v, x, train=False), variables, batch_arrays(batch)[0])


# --- PyTorch --------------------------------------------------------------------------------------------------------
def torch_model(key: str, small: bool):
    """The PyTorch peer of ``CASES[key]`` and a function making its random batch."""
    import torch
    import transformers
    from torch import nn

    if key == "gpt2":
        cfg = (transformers.GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=256, n_positions=256, attn_pdrop=0.0)
               if small else transformers.GPT2Config(attn_pdrop=0.0))
        seq = 256 if small else 1024
        model = transformers.GPT2LMHeadModel(cfg)

        def batch(b, device):
            ids = torch.randint(0, cfg.vocab_size, (b, seq), device=device)
            return {"input_ids": ids, "labels": ids}
        return model, batch
    if key == "bert_base":
        cfg = (transformers.BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=512, num_labels=2, attention_probs_dropout_prob=0.0) if small
               else transformers.BertConfig(num_labels=2, attention_probs_dropout_prob=0.0))
        seq = 32 if small else 128
        model = transformers.BertForSequenceClassification(cfg)

        def batch(b, device):
            return {"input_ids": torch.randint(0, cfg.vocab_size, (b, seq), device=device),
                    "attention_mask": torch.ones(b, seq, dtype=torch.long, device=device),
                    "labels": torch.randint(0, 2, (b,), device=device)}
        return model, batch
    if key == "resnet50":
        cfg = (transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
                                         layer_type="bottleneck", num_labels=10) if small
               else transformers.ResNetConfig(num_labels=1000))
        size = 32 if small else 224
        model = transformers.ResNetForImageClassification(cfg)

        def batch(b, device):
            x = torch.randn(b, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
            return {"pixel_values": x, "labels": torch.randint(0, cfg.num_labels, (b,), device=device)}
        return model, batch
    if key == "vit_base":
        cfg = (transformers.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=128, image_size=32, patch_size=8, num_labels=10) if small
               else transformers.ViTConfig(num_labels=1000))
        model = transformers.ViTForImageClassification(cfg)

        def batch(b, device):
            return {"pixel_values": torch.randn(b, 3, cfg.image_size, cfg.image_size, device=device),
                    "labels": torch.randint(0, cfg.num_labels, (b,), device=device)}
        return model, batch

    class Classifier(nn.Module):
        def __init__(self, body, shape):
            super().__init__()
            self.body, self.shape = body, shape

        def forward(self, x, labels):
            logits = self.body(x)
            return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}

    body, shape = torch_seed_model(key), ((1, 28, 28) if key == "seed_cnn" else (10, 10))
    model = Classifier(body, shape)

    def batch(b, device):
        return {"x": torch.randn(b, *shape, device=device), "labels": torch.randint(0, 10, (b,), device=device)}
    return model, batch


def torch_runner(key: str, case: Case, small: bool, compile_mode: str):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model, make_batch = torch_model(key, small)
    model = model.to(device).train()
    if key == "resnet50":
        model = model.to(memory_format=torch.channels_last)
    use_compile = compile_mode == "on" or (compile_mode == "auto" and device == "cuda")
    forward = torch.compile(model) if use_compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=device == "cuda")
    batch = make_batch(case.small_batch if small else case.batch, device)
    autocast = torch.autocast(device, dtype=torch.bfloat16)

    def one_step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = forward(**batch)["loss"]
        loss.backward()
        opt.step()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    one_step()
    sync()
    compile_s = time.perf_counter() - t0

    def run(n: int) -> None:
        for _ in range(n):
            one_step()
        sync()

    return run, {"compile_s": compile_s, "compiled": use_compile, "device": device}


# --- measurement ----------------------------------------------------------------------------------------------------
def median_step_time(run: Callable[[int], None], steps: int, chunk: int) -> float:
    """Median over chunks of ``chunk`` steps (each ends with a device sync) of the time per step."""
    times = []
    for _ in range(max(1, steps // chunk)):
        t0 = time.perf_counter()
        run(chunk)
        times.append((time.perf_counter() - t0) / chunk)
    return statistics.median(times)


def zoo_measure(key: str, args) -> dict:
    case = CASES[key]
    run, info = zoo_runner(case, args.small)
    run(args.warmup)
    return {**info, "step_s": median_step_time(run, args.steps, args.chunk)}


def torch_measure(key: str, args) -> dict:
    import torch

    case = CASES[key]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run, info = torch_runner(key, case, args.small, args.torch_compile)
    run(args.warmup)
    step_s = median_step_time(run, args.steps, args.chunk)
    memory = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    return {**info, "step_s": step_s, "memory": memory}


def worker(framework: str, args) -> int:
    """Measures ``args.models`` with one framework, printing one JSON line per model on stdout."""
    measure_one = zoo_measure if framework == "zoo" else torch_measure
    if framework == "zoo" and args.compilation_cache:
        jax.config.update("jax_compilation_cache_dir", args.compilation_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    for key in args.models:
        try:
            row = {"key": key, **measure_one(key, args)}
        except Exception as e:  # one model's failure must not hide the others' numbers
            if args.small:
                raise
            row = {"key": key, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(row), flush=True)
    if framework == "zoo":
        print(json.dumps({"versions": versions(("flax", "optax", "torch", "transformers")), "device": jax.local_devices()[0].device_kind,
                          "peak": peak_flops(jax.local_devices()[0])}), flush=True)
    return 0


def run_worker(framework: str, args) -> list[dict]:
    """Runs ``worker`` in a fresh process, so each framework has the device (and its memory) to itself."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--models", *args.models,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--chunk", str(args.chunk),
           "--torch-compile", args.torch_compile] + (["--small"] if args.small else [])
    if args.compilation_cache:
        cmd += ["--compilation-cache", args.compilation_cache]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0:
        raise RuntimeError(f"the {framework} worker failed (exit {out.returncode}); its stderr is above")
    return rows


def fmt_bytes(n) -> str:
    return "n/a" if n is None else f"{n / 2**30:.2f} GiB"


def table(rows: list[dict], peak: float | None) -> str:
    lines = ["| model | batch | params | compile s | step ms | throughput | MFU (analytic) | MFU (XLA) | memory "
             "| PyTorch step ms | PyTorch compile s | PyTorch memory | zoo / PyTorch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        case, z, t = CASES[r["key"]], r["zoo"], r.get("torch") or {}
        if "error" in z:
            lines.append(f"| {case.name} | failed: {z['error'][:120]} |")
            continue
        mfu = {k: f"{z[k] / z['step_s'] / peak:.1%}" if peak else "n/a" for k in ("analytic_flops", "xla_flops")}
        has_torch = "step_s" in t
        lines.append(
            f"| {case.name if z['model'] == case.zoo_model else z['model']} | {z['batch']} | {z['params'] / 1e6:.1f}M | {z['compile_s']:.1f} | "
            f"{z['step_s'] * 1e3:.2f} | {z['items'] / z['step_s']:,.0f} {case.unit}/s | {mfu['analytic_flops']} | "
            f"{mfu['xla_flops']} | {fmt_bytes(z['memory'])} | "
            + (f"{t['step_s'] * 1e3:.2f} | {t['compile_s']:.1f}{'' if t['compiled'] else ' (eager)'} | "
               f"{fmt_bytes(t['memory'])} | {t['step_s'] / z['step_s']:.2f}x |" if has_torch
               else f"{t.get('error', '-')[:80]} | - | - | - |"))
    return "\n".join(lines)


def flops_table(rows: list[dict]) -> str:
    lines = ["| model | analytic GFLOP/step | XLA cost-analysis GFLOP/step | XLA / analytic |", "|---|---:|---:|---:|"]
    for r in rows:
        z = r["zoo"]
        if "error" not in z:
            lines.append(f"| {z['model']} | {z['analytic_flops'] / 1e9:,.2f} | {z['xla_flops'] / 1e9:,.2f} "
                         f"| {z['xla_flops'] / z['analytic_flops']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="tiny sizes (runs on CPU in seconds)")
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps", type=int, default=None, help="timed steps per model (default 50, small 4)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps after compiling (default 5, small 1)")
    parser.add_argument("--chunk", type=int, default=None, help="steps between device syncs (default 5, small 2)")
    parser.add_argument("--torch-compile", default="auto", choices=["auto", "on", "off"],
                        help="torch.compile the peer (auto: on CUDA only)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    parser.add_argument("--compilation-cache", metavar="DIR",
                        help="JAX persistent compilation cache directory (a second run then compiles from it)")
    parser.add_argument("--write", metavar="FILE", help="also write the tables to this markdown file")
    parser.add_argument("--worker", choices=["zoo", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steps = args.steps or (4 if args.small else 50)
    args.warmup = args.warmup or (1 if args.small else 5)
    args.chunk = args.chunk or (2 if args.small else 5)
    if args.worker:
        return worker(args.worker, args)

    load = load_average()
    print(f"{load} at the start", flush=True)
    # PyTorch first, in its own process: JAX reserves most of a GPU's memory for its process's lifetime.
    torch_rows = {} if args.no_torch else {r["key"]: r for r in run_worker("torch", args)}
    zoo_rows = run_worker("zoo", args)
    env = zoo_rows.pop()
    rows = [{"key": r["key"], "zoo": r, "torch": torch_rows.get(r["key"])} for r in zoo_rows]
    peak = env["peak"]
    text = table(rows, peak) + "\n\n" + flops_table(rows)
    print(f"\n{env['device']}: bf16 peak {'%.0f TFLOP/s' % (peak / 1e12) if peak else 'unknown'}; {env['versions']}; "
          f"{load} at the start\n")
    print(text)
    if args.write and rows:
        write_section(
            args.write, "gpu.py", title="Flagship models on one accelerator: bf16 train step, zoo vs compiled PyTorch",
            measured_on=f"{env['device']}; {env['versions']}; {load} at the start", tables=text,
            method=f"Reproduce: `{command('gpu.py', sys.argv[1:] if argv is None else argv)}`. Median step time "
                   f"over {args.steps} steps in chunks of {args.chunk} after {args.warmup} warm-up steps; "
                   "zoo / PyTorch is the ratio of step times (above 1: zoo faster). zoo memory is the compiled "
                   "step's arguments + outputs + temporaries (XLA memory analysis); PyTorch memory is "
                   "torch.cuda.max_memory_allocated.")
    return 0 if all("error" not in r["zoo"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
