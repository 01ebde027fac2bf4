"""Tune the seed LSTM's learning rate, schedule and augmentation on the digits with optuna.

    python examples/tune_seed_lstm.py --trials 12 --workdir runs/tune-seed_lstm-digits

The same search as

    zoo tune seed_lstm --data digits --steps 600 --trials 12 --space examples/tune_seed_lstm.toml \\
        --holdout 0.2 --workdir runs/tune-seed_lstm-digits

Every trial trains 600 steps (batch 128, Adam) on 80% of the training set and is scored on the other
20% (validation accuracy), so the test set plays no part in the search. TPE draws the settings of
``examples/tune_seed_lstm.toml``; trials below the median of earlier ones at an evaluation are pruned.
The best setting is then trained once on the whole training set and evaluated on the test set, to
set against the hand-picked recipe (Adam 5e-3, cosine, shift:1: 0.975). Rerunning the command on
the same --workdir resumes an interrupted search, each trial from its own checkpoints.
"""

import argparse
import json
import os

from zoo.techniques.tune import load_space, tune
from zoo.train import TrainConfig

SPACE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tune_seed_lstm.toml")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--steps", type=int, default=600, help="steps of every trial (and of the final run)")
    parser.add_argument("--holdout", type=float, default=0.2, help="part of the training set trials are scored on")
    parser.add_argument("--space", default=SPACE)
    parser.add_argument("--seed", type=int, default=0, help="the sampler's and the runs' seed")
    parser.add_argument("--workdir", default="runs/tune-seed_lstm-digits")
    args = parser.parse_args()

    base = TrainConfig(model="seed_lstm", data="digits", steps=args.steps, batch_size=128, seed=args.seed)
    summary = tune(base, load_space(args.space, base), args.trials, args.workdir, holdout=args.holdout,
                   seed=args.seed)
    best = summary["best"]
    print(f"best trial {best['number']}: {best['params']}, validation accuracy {best['val_accuracy']:.4f}, "
          f"test accuracy (trained on the whole training set) {best['test']['test_accuracy']:.4f}")
    print(f"train it again with: {best['command']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
