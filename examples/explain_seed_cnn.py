"""Explain the seed CNN's predictions: saliency, integrated gradients and Grad-CAM as a PNG.

    python examples/explain_seed_cnn.py --steps 300 --workdir runs/example-explain

Trains the seed CNN (or reuses the run in --workdir), explains four test digits
and prints where the figure went and how complete the integrated gradients are
(sum of attributions against f(x) - f(baseline)).
"""

import argparse

from zoo.techniques.explain import explain_run
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--input", default="test:0,1,2,3", help="test-set indices or a .npy file")
    parser.add_argument("--workdir", default="runs/example-explain")
    args = parser.parse_args()
    summary = train_and_evaluate(TrainConfig(model="seed_cnn", steps=args.steps, batch_size=64,
                                             checkpoint_every=args.steps,
                                             optimizer=OptimizerConfig(learning_rate=2e-3)), args.workdir,
                                 progress=False)
    print(f"seed_cnn test accuracy {summary['test_accuracy']:.4f}")
    report = explain_run(args.workdir, args.input)
    print(f"predicted {report['predicted']}, labels {report['labels']}")
    print(f"integrated gradients: largest completeness gap {100 * report['ig_completeness_error']:.2f}% "
          "of f(x) - f(0)")
    print(f"figure ({', '.join(report['methods'])}): {report['png']}")


if __name__ == "__main__":
    main()
