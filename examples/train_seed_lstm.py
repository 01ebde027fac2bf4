"""Train the seed document's Keras LSTM on the digits' pixel rows with zoo's full loop.

    python examples/train_seed_lstm.py --steps 600 --workdir runs/example-lstm

Each 8x8 digit is read as a sequence of its rows (padded to the seed's
(10, 10) input).  Uses train_and_evaluate: checkpoints every --checkpoint-every
steps, and rerunning the command on the same --workdir resumes exactly.
"""

import argparse
import json

import zoo
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-3, help="peak Adam learning rate (cosine decay)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--workdir", default="runs/example-seed-lstm")
    args = parser.parse_args()

    print(f"seed_lstm: {zoo.param_count('seed_lstm'):,} parameters")
    config = TrainConfig(
        model="seed_lstm", data="digits", steps=args.steps, batch_size=args.batch_size, seed=args.seed,
        optimizer=OptimizerConfig(name="adam", learning_rate=args.lr, schedule="cosine"),
        checkpoint_every=args.checkpoint_every,
    )
    summary = train_and_evaluate(config, args.workdir)
    print(f"test accuracy {summary['test_accuracy']:.4f} at step {summary['steps']}; plot: {summary['plot']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
