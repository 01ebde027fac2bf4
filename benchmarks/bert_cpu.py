"""BERT-base sequence classification: zoo (JAX) vs Hugging Face transformers (PyTorch eager), same weights.

    python benchmarks/bert_cpu.py [--batch 8] [--length 128] [--steps 3] [--repeats 3] [--write BENCHMARKS.md]

Builds a randomly initialised ``transformers.BertForSequenceClassification``
(bert-base sizes, 109,483,778 parameters), saves it, and loads the same weights
into zoo with ``zoo.from_pretrained`` (the script checks the two
agree on the logits).  Then it times, in interleaved rounds:

- forward (inference) on ``[batch, length]`` token ids with a padding mask
  (a quarter of each sequence is padding): zoo ``jit(apply)`` vs PyTorch
  ``eval()`` under ``torch.inference_mode()``;
- a training step (forward + backward + AdamW, dropout 0.1 on): zoo's
  ``jit(train_step)`` vs PyTorch eager ``loss.backward(); opt.step()``.

Reported: median sequences/s per framework and the median of the per-round
ratios (above 1 means zoo is faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

from bench_common import batch_arrays, command, example_batch, header, write_section

def make_models(batch: int, length: int):
    import torch
    import transformers

    import zoo
    from zoo.train import OptimizerConfig, create_train_state, make_optimizer, train_step

    torch.manual_seed(0)
    hf_config = transformers.BertConfig(num_labels=2, attn_implementation="sdpa")  # bert-base sizes
    torch_model = transformers.BertForSequenceClassification(hf_config)
    with tempfile.TemporaryDirectory() as tmp:
        torch_model.save_pretrained(tmp)
        model, variables = zoo.from_pretrained(tmp, input_shape=(length,))

    batch_dict = jax.device_get(example_batch(model, jax.random.key(0), batch, padding=0.25))
    ids, labels, extras = batch_arrays(batch_dict)
    mask = extras["attention_mask"]

    forward = jax.jit(lambda p, x, m: model.apply({"params": p}, x, attention_mask=m))
    params = jax.device_put(variables["params"])
    torch_model.eval()
    t_ids, t_mask, t_labels = (torch.tensor(a, dtype=torch.long) for a in (ids, mask, labels))
    with torch.inference_mode():
        expected = torch_model(input_ids=t_ids, attention_mask=t_mask).logits.numpy()
    diff = float(np.max(np.abs(np.asarray(forward(params, ids, mask)) - expected)))

    def zoo_forward(n):
        for _ in range(n):
            out = forward(params, ids, mask)
        jax.block_until_ready(out)

    def torch_forward(n):
        with torch.inference_mode():
            for _ in range(n):
                torch_model(input_ids=t_ids, attention_mask=t_mask)

    tx = make_optimizer(OptimizerConfig(name="adamw", learning_rate=2e-5, weight_decay=0.01), 1)
    state = {"s": create_train_state(model, tx, seed=0).replace(params=params)}
    state["s"] = state["s"].replace(opt_state=tx.init(params))
    step = jax.jit(train_step)

    def zoo_train(n):
        s = state["s"]
        for _ in range(n):
            s, metrics = step(s, batch_dict)
        jax.block_until_ready(metrics)
        state["s"] = s

    opt = torch.optim.AdamW(torch_model.parameters(), lr=2e-5, weight_decay=0.01)

    def torch_train(n):
        torch_model.train()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = torch_model(input_ids=t_ids, attention_mask=t_mask, labels=t_labels).loss
            loss.backward()
            opt.step()
        torch_model.eval()

    return {"forward": (zoo_forward, torch_forward), "train": (zoo_train, torch_train)}, diff


def measure(runs, batch, steps, repeats):
    out = {}
    for kind, (zoo_run, torch_run) in runs.items():
        n = steps * (3 if kind == "forward" else 1)
        zoo_run(1), torch_run(1)  # warm-up: compile / allocate
        zs, ts = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            zoo_run(n)
            zs.append(n * batch / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            torch_run(n)
            ts.append(n * batch / (time.perf_counter() - t0))
            print(f"  {kind}: zoo {zs[-1]:.2f} seq/s, torch {ts[-1]:.2f} seq/s", flush=True)
        out[kind] = (statistics.median(zs), statistics.median(ts), statistics.median(z / t for z, t in zip(zs, ts)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="train steps per round (forward: 3x as many)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians reported)")
    parser.add_argument("--write", metavar="FILE", help="also write the table to this markdown file")
    parser.add_argument("--note", default="", help="a sentence added to the block (e.g. what else ran)")
    args = parser.parse_args()
    machine = header(("torch", "transformers"))
    print(machine, flush=True)

    runs, diff = make_models(args.batch, args.length)
    print(f"max |zoo - torch| logits on the same weights: {diff:.2e}")
    res = measure(runs, args.batch, args.steps, args.repeats)
    rows = ["| BERT-base, batch %d x %d | zoo seq/s | PyTorch eager seq/s | zoo / PyTorch |" % (args.batch,
                                                                                          args.length),
            "|---|---:|---:|---:|"]
    for kind, label in (("forward", "forward (inference)"), ("train", "train step (AdamW)")):
        z, t, r = res[kind]
        rows.append(f"| {label} | {z:.2f} | {t:.2f} | {r:.2f}x |")
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_section(
            args.write, "bert_cpu.py",
            title="Transformers: BERT-base sequence classification vs Hugging Face PyTorch (CPU, float32)",
            measured_on=f"{machine}; PyTorch uses SDPA attention", note=args.note, tables=table,
            method=f"Reproduce: `{command('bert_cpu.py', sys.argv[1:])}`. Same weights in both (max logit "
                   f"difference {diff:.1e}); a quarter of each sequence is padding; {args.repeats} interleaved rounds "
                   f"of {args.steps * 3} forward / {args.steps} train steps after a warm-up; seq/s are medians, "
                   "ratios the median of per-round ratios.")


if __name__ == "__main__":
    main()
