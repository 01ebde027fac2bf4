"""T5-small: zoo (JAX) vs Hugging Face transformers (PyTorch eager) on the same CPU, same weights, one run.

    python benchmarks/seq2seq.py [--batch 8] [--source 128] [--target 32] [--new-tokens 32] [--repeats 3]
                                 [--write BENCHMARKS.md]

Builds a randomly initialised ``transformers.T5ForConditionalGeneration`` with t5-small's
configuration (60,506,624 parameters), saves it and loads the same weights into zoo with
``zoo.from_pretrained`` (the script checks the logits agree).  Then, in interleaved rounds:

- a training step (teacher-forced cross-entropy, Adam) on ``[batch, source]`` source ids (a
  quarter of each row padding) and ``[batch, target]`` targets: zoo's ``jit(train_step)`` vs
  PyTorch eager ``loss.backward(); opt.step()``; examples/s;
- generation of ``new_tokens`` tokens per row, greedy and 4-beam: ``zoo.models.t5.generate``
  (one compiled program with key/value caches) vs ``model.generate`` under
  ``torch.inference_mode()``.  The end-of-sequence id is set to one the random model does not
  produce, so both decode every row to the full length; new tokens/s counts the returned rows'
  tokens (the best beam's, for beam search); the script checks both frameworks return the same ids.

Reported: medians per framework and the median of per-round ratios (above 1: zoo is faster).
``--write`` adds the block to BENCHMARKS.md (only on a quiet machine: the ratios are meaningless
when other jobs share the CPU).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

from bench_common import command, header, write_section

NEVER = 32_127  # the last id of t5-small's embedding (past its tokenizer's 32,100): used as EOS, never produced


def new_token_count(out) -> int:
    """Tokens after the start token in ``[B, 1 + N]`` ids, each row counted up to its first EOS (``NEVER``)."""
    out = np.asarray(out)[:, 1:]
    ends = np.where((out == NEVER).any(1), (out == NEVER).argmax(1) + 1, out.shape[1])
    return int(ends.sum())


def make_models(batch: int, source: int, target: int, new_tokens: int):
    import torch
    import transformers

    import zoo
    from zoo.models import t5
    from zoo.train import OptimizerConfig, create_train_state, make_optimizer, train_step

    torch.manual_seed(0)
    torch_model = transformers.T5ForConditionalGeneration(transformers.T5Config())  # t5-small sizes
    torch_model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        torch_model.save_pretrained(tmp)
        model, variables = zoo.from_pretrained(tmp, input_shape=(source,), target_length=target)
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 32_000, (batch, source)).astype(np.int32)
    lengths = source - rng.integers(0, source // 4 + 1, batch)
    mask = (np.arange(source)[None] < lengths[:, None]).astype(np.int32)
    ids = np.where(mask == 1, ids, 0).astype(np.int32)
    tgt = rng.integers(3, 32_000, (batch, target)).astype(np.int32)
    tgt[:, -1] = 1
    decoder_in = np.concatenate([np.zeros((batch, 1), np.int32), tgt[:, :-1]], 1)
    batch_dict = {"inputs": ids, "attention_mask": mask, "decoder_input_ids": decoder_in, "labels": tgt}

    t_ids, t_mask, t_dec, t_tgt = (torch.tensor(a, dtype=torch.long) for a in (ids, mask, decoder_in, tgt))
    with torch.inference_mode():
        expected = torch_model(input_ids=t_ids, attention_mask=t_mask, decoder_input_ids=t_dec).logits.numpy()
    got = model.apply(variables, ids, attention_mask=mask, decoder_input_ids=decoder_in)
    diff = float(np.max(np.abs(np.asarray(got) - expected)))

    tx = make_optimizer(OptimizerConfig(name="adam", learning_rate=1e-4), 1)
    state = {"s": create_train_state(model, tx, seed=0).replace(params=variables["params"])}
    state["s"] = state["s"].replace(opt_state=tx.init(variables["params"]))
    step = jax.jit(train_step)

    def zoo_train(n):
        s = state["s"]
        for _ in range(n):
            s, metrics = step(s, batch_dict)
        jax.block_until_ready(metrics)
        state["s"] = s
        return n * batch

    opt = torch.optim.Adam(torch_model.parameters(), lr=1e-4)

    def torch_train(n):
        torch_model.train()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            torch_model(input_ids=t_ids, attention_mask=t_mask, decoder_input_ids=t_dec, labels=t_tgt).loss.backward()
            opt.step()
        torch_model.eval()
        return n * batch

    # generation from the initial weights (a copy: the train runs above change the live ones)
    gen_model = t5.T5(dataclasses.replace(model.config, eos_token_id=NEVER))
    gen_params = jax.tree.map(np.array, variables["params"])
    torch_gen = copy.deepcopy(torch_model).eval()
    outputs = {}

    def zoo_generate(beams):
        def run(n):
            for _ in range(n):
                out = t5.generate(gen_model, {"params": gen_params}, ids, attention_mask=mask,
                                  max_length=new_tokens + 1, num_beams=beams)
            out = np.asarray(jax.block_until_ready(out))
            outputs[("zoo", beams)] = out
            return n * new_token_count(out)
        return run

    def torch_generate(beams):
        def run(n):
            with torch.inference_mode():
                for _ in range(n):
                    out = torch_gen.generate(input_ids=t_ids, attention_mask=t_mask, max_new_tokens=new_tokens,
                                             min_new_tokens=new_tokens, num_beams=beams, do_sample=False,
                                             eos_token_id=NEVER, pad_token_id=0, decoder_start_token_id=0,
                                             early_stopping=False)
            out = out.numpy()
            outputs[("torch", beams)] = out
            return n * new_token_count(out)
        return run

    runs = {"train": (zoo_train, torch_train), "greedy": (zoo_generate(1), torch_generate(1)),
            "beam4": (zoo_generate(4), torch_generate(4))}
    return runs, diff, outputs


def measure(runs, steps, repeats):
    out = {}
    for kind, (zoo_run, torch_run) in runs.items():
        zoo_run(1), torch_run(1)  # warm-up: compile / allocate
        zs, ts = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            count = zoo_run(steps)
            zs.append(count / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            count = torch_run(steps)
            ts.append(count / (time.perf_counter() - t0))
            print(f"  {kind}: zoo {zs[-1]:.2f}/s, torch {ts[-1]:.2f}/s", flush=True)
        out[kind] = (statistics.median(zs), statistics.median(ts), statistics.median(z / t for z, t in zip(zs, ts)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--source", type=int, default=128, help="source tokens per row")
    parser.add_argument("--target", type=int, default=32, help="target tokens per row (training)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per row")
    parser.add_argument("--steps", type=int, default=2, help="train steps / generate calls per round")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians reported)")
    parser.add_argument("--write", metavar="FILE", help="also write the table to this markdown file")
    parser.add_argument("--note", default="", help="a sentence added to the block (e.g. what else ran)")
    args = parser.parse_args()
    machine = header(("torch", "transformers"))
    print(machine, flush=True)

    runs, diff, outputs = make_models(args.batch, args.source, args.target, args.new_tokens)
    print(f"max |zoo - torch| logits on the same weights: {diff:.2e}")
    res = measure(runs, args.steps, args.repeats)
    same = {beams: np.array_equal(outputs[("zoo", beams)], outputs[("torch", beams)]) for beams in (1, 4)}
    print(f"generated ids identical: greedy {same[1]}, 4 beams {same[4]}")
    rows = [f"| T5-small, batch {args.batch}, source {args.source} | zoo | PyTorch eager | zoo / PyTorch |",
            "|---|---:|---:|---:|"]
    for kind, label in (("train", f"train step (Adam, target {args.target}), examples/s"),
                        ("greedy", f"greedy generation, new tokens/s ({args.new_tokens} per row)"),
                        ("beam4", f"4-beam generation, new tokens/s ({args.new_tokens} per row)")):
        z, t, r = res[kind]
        rows.append(f"| {label} | {z:.1f} | {t:.1f} | {r:.2f}x |")
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_section(
            args.write, "seq2seq.py",
            title="Sequence to sequence: T5-small training and generation vs Hugging Face PyTorch (CPU, float32)",
            measured_on=machine, note=args.note, tables=table,
            method=f"Reproduce: `{command('seq2seq.py', sys.argv[1:])}`. Same weights in both (max logit difference "
                   f"{diff:.1e}); a quarter of each source at most is padding; generated ids identical: greedy "
                   f"{same[1]}, 4 beams {same[4]}; {args.repeats} interleaved rounds of {args.steps} steps / calls "
                   "after a warm-up; rates are medians, ratios the median of per-round ratios.")


if __name__ == "__main__":
    main()
