"""Prune the seed CNN: one-shot magnitude pruning of a trained model, then gradual pruning during training.

    python examples/prune_seed_cnn.py --steps 300 --workdir runs/example-prune

Prints the test accuracy of one-shot pruning at several sparsities (layer-wise and
global), then trains with the gradual schedule (masks inside the optax optimizer)
to the highest sparsity and prints its accuracy and per-layer sparsity.
"""

import argparse
import os

from zoo.techniques import GradualPruning, prune_run
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--sparsities", default="0.5,0.8,0.9,0.95")
    parser.add_argument("--workdir", default="runs/example-prune")
    args = parser.parse_args()
    sparsities = [float(s) for s in args.sparsities.split(",")]
    common = dict(model="seed_cnn", steps=args.steps, batch_size=64, checkpoint_every=args.steps,
                  optimizer=OptimizerConfig(learning_rate=2e-3))

    dense = train_and_evaluate(TrainConfig(**common), os.path.join(args.workdir, "dense"), progress=False)
    print(f"dense seed_cnn after {args.steps} steps: test accuracy {dense['test_accuracy']:.4f}")
    print("one-shot pruning of the trained model (no retraining):")
    print("  sparsity   layer-wise   global")
    for s in sparsities:
        layer = prune_run(dense["workdir"], s, scope="layer")
        glob = prune_run(dense["workdir"], s, scope="global")
        print(f"  {s:8.2f}   {layer['accuracy_after']:10.4f}   {glob['accuracy_after']:6.4f}")

    target = max(sparsities)
    gradual = GradualPruning(target_sparsity=target, end_step=(2 * args.steps) // 3, frequency=10)
    run = train_and_evaluate(TrainConfig(**common, extensions=(gradual,)), os.path.join(args.workdir, "gradual"),
                             progress=False)
    print(f"gradual pruning to {target:.2f} during training: test accuracy {run['test_accuracy']:.4f}, "
          f"sparsity {run['sparsity']:.4f}")
    for layer, value in run["sparsity_per_layer"].items():
        print(f"  {layer:16s} {value:.4f}")


if __name__ == "__main__":
    main()
