"""Train a small byte-level GPT on English text that ships with Python, then sample from it.

    python examples/train_gpt.py                       # gpt2_tiny on pydoc_data.topics (~465 KB), offline
    python examples/train_gpt.py --data wikitext       # online: WikiText-2 through Hugging Face datasets

The text is Python's own help pages (``pydoc_data.topics``): the first 90%
trains, the last 10% is held out.  Bytes are the tokens (vocabulary 256), so
the samples show what the model learnt of English spelling and the help
pages' style.  Training runs through ``zoo.train.train_and_evaluate``
(checkpoints, exact resume with the same --workdir); the loss curve is
printed from the run's metrics, then text is sampled with the KV cache.
"""

import argparse
import json
import os

import jax
import numpy as np

from zoo.models.gpt2 import generate
from zoo.train import OptimizerConfig, TrainConfig, load_run, train_and_evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gpt2_tiny")
    parser.add_argument("--data", default="pydoc", help="pydoc (offline) or wikitext (online)")
    parser.add_argument("--context", type=int, default=64, help="training window (bytes)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt", default="The import statement ")
    parser.add_argument("--sample-bytes", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--workdir", default="runs/train-gpt")
    args = parser.parse_args()

    optimizer = OptimizerConfig(name="adamw", learning_rate=args.lr, weight_decay=0.01, schedule="cosine",
                                warmup_steps=max(1, args.steps // 20), clip_norm=1.0)
    config = TrainConfig(model=args.model, model_overrides={"input_shape": (args.context,)}, data=args.data,
                         steps=args.steps, batch_size=args.batch_size, seed=args.seed, optimizer=optimizer,
                         checkpoint_every=args.checkpoint_every, log_every=max(1, min(50, args.steps // 4)))
    summary = train_and_evaluate(config, args.workdir)

    with open(os.path.join(args.workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    curve = [(r["step"], r["train_loss"]) for r in rows if "train_loss" in r]
    print("train loss (nats/byte): " + ", ".join(f"step {s}: {loss:.3f}" for s, loss in curve))
    print(f"held-out loss {summary['test_loss']:.3f} nats/byte ({summary['test_loss'] / np.log(2):.3f} bits), "
          f"next-byte accuracy {summary['test_accuracy']:.3f}")

    model, state, _ = load_run(args.workdir)
    prompt = np.frombuffer(args.prompt.encode("utf-8"), np.uint8).astype(np.int32)[None]
    room = model.config.input_shape[0] - prompt.shape[1]
    ids = generate(model, {"params": state.params}, prompt, min(args.sample_bytes, room),
                   temperature=args.temperature, top_k=args.top_k, key=jax.random.key(args.seed))
    text = bytes(np.asarray(ids[0], np.uint8)).decode("utf-8", errors="replace")
    print("sample:\n" + text)


if __name__ == "__main__":
    main()
