"""DP-SGD on the digits: the same model trained with and without differential privacy.

    python examples/dp_sgd_digits.py --model seed_cnn --epochs 10 --noise 1.1 --clip 1.0

Trains twice (plain and with per-example clipping + Gaussian noise) and prints
both test accuracies and the (epsilon, delta) the accountants give for the
private run: RDP and PLD from Google's dp_accounting.
"""

import argparse
import os

from zoo.techniques import DPSGD
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="seed_cnn")
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--noise", type=float, default=1.1)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--workdir", default="runs/example-dp")
    args = parser.parse_args()
    common = dict(model=args.model, epochs=args.epochs, batch_size=args.batch_size, checkpoint_every=10_000,
                  optimizer=OptimizerConfig(learning_rate=args.lr))
    plain = train_and_evaluate(TrainConfig(**common), os.path.join(args.workdir, "plain"), progress=False)
    dp = DPSGD(noise_multiplier=args.noise, l2_clip=args.clip, delta=1e-5)
    private = train_and_evaluate(TrainConfig(**common, extensions=(dp,)), os.path.join(args.workdir, "dp"),
                                 progress=False)
    print(f"{args.model}, {private['steps']} steps of batch {args.batch_size} ({args.epochs:g} epochs):")
    print(f"  non-private test accuracy {plain['test_accuracy']:.4f}")
    print(f"  DP-SGD      test accuracy {private['test_accuracy']:.4f}  (noise {args.noise}, clip {args.clip})")
    print(f"  privacy: epsilon {private['dp_epsilon_pld']:.2f} (PLD) / {private['dp_epsilon_rdp']:.2f} (RDP) "
          f"at delta {private['dp_delta']:g}")


if __name__ == "__main__":
    main()
