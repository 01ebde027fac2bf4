"""Train a ResNet with zoo's full loop (checkpoints, exact resume, metrics), on the bundled digits by default.

    python examples/train_resnet.py                                    # resnet_tiny on digits, ~0.99 test accuracy
    python examples/train_resnet.py --workdir runs/resnet --steps 1200 # rerun: resumes from the newest checkpoint
    python examples/train_resnet.py --model resnet18 --data cifar10 --augment crop:4,flip --steps 20000 \\
        --optimizer sgd --lr 0.1 --weight-decay 5e-4 --batch-size 128   # needs tensorflow-datasets or datasets

Runs ``zoo.train.train_and_evaluate``: running the same command again on the same
``--workdir`` continues exactly where it stopped (parameters, BatchNorm statistics,
optimizer state, RNG and data position are restored).  Small images (digits, CIFAR)
use the 3x3 "small" stem; ``--stem imagenet`` keeps the 7x7/2 conv + max pool.
"""

import argparse
import json

from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate

# what each dataset needs from a registered ResNet (digits: 28x28x1, CIFAR-10: 32x32x3; 10 classes each)
DATA_OVERRIDES = {"digits": dict(input_shape=(28, 28, 1), num_classes=10),
                  "cifar10": dict(input_shape=(32, 32, 3), num_classes=10),
                  "synthetic": {}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet_tiny", help="resnet_tiny, resnet18, resnet34, resnet50, ...")
    parser.add_argument("--data", default="digits", choices=sorted(DATA_OVERRIDES))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--optimizer", default="adamw", choices=["sgd", "adam", "adamw"])
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (cosine schedule)")
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--augment", default="crop:2", help="see zoo.data.images, e.g. crop:4,flip,mixup:0.2")
    parser.add_argument("--stem", default="small", choices=["small", "imagenet"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--workdir", default="runs/example-resnet")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    config = TrainConfig(
        model=args.model, model_overrides={**DATA_OVERRIDES[args.data], "stem": args.stem}, data=args.data,
        steps=args.steps, batch_size=args.batch_size, seed=args.seed, augment=args.augment, dtype=args.dtype,
        checkpoint_every=args.checkpoint_every,
        optimizer=OptimizerConfig(name=args.optimizer, learning_rate=args.lr, schedule="cosine",
                                  warmup_steps=args.warmup_steps, weight_decay=args.weight_decay),
    )
    summary = train_and_evaluate(config, args.workdir, progress=not args.no_progress)
    print(f"test accuracy {summary['test_accuracy']:.4f} after {summary['steps']} steps "
          f"({summary['new_steps']} new); checkpoints in {summary['checkpoint_dir']}")
    print(json.dumps({k: summary[k] for k in ("model", "data", "steps", "new_steps", "test_accuracy",
                                              "train_samples_per_s", "params")}))


if __name__ == "__main__":
    main()
