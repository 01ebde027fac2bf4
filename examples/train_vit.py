"""Train a Vision Transformer with zoo's full loop (checkpoints, exact resume, metrics), on the bundled digits.

    python examples/train_vit.py                                     # vit_micro on digits (patch 7, mean pooling)
    python examples/train_vit.py --workdir runs/vit --steps 1200     # rerun: resumes from the newest checkpoint
    python examples/train_vit.py --model vit_small --data cifar10 --patch-size 4 --augment crop:4,flip,mixup:0.2 \\
        --steps 30000 --lr 1e-3 --weight-decay 0.05                  # needs tensorflow-datasets or datasets

Runs ``zoo.train.train_and_evaluate``, so running the same command again on the
same ``--workdir`` continues exactly where it stopped.  The model is the zoo's ViT
(pre-norm encoder blocks from ``zoo.layers``, class-token or ``--pooling mean``).
"""

import argparse
import json

from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate

DATA_OVERRIDES = {"digits": dict(input_shape=(28, 28, 1), num_classes=10),
                  "cifar10": dict(input_shape=(32, 32, 3), num_classes=10),
                  "synthetic": {}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_micro", help="vit_micro, vit_tiny, vit_small, vit_base, vit_large")
    parser.add_argument("--data", default="digits", choices=sorted(DATA_OVERRIDES))
    parser.add_argument("--patch-size", type=int, default=7, help="patch size (the registered full sizes use 16)")
    parser.add_argument("--pooling", default="mean", choices=["cls", "mean"],
                        help="mean of the patch tokens (default; trains faster on small data) or the class token")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (warmup + cosine)")
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--clip-norm", type=float, default=None, help="clip gradients to this global norm")
    parser.add_argument("--augment", default="crop:2", help="see zoo.data.images, e.g. crop:4,flip,mixup:0.2")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--workdir", default="runs/example-vit")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    overrides = {**DATA_OVERRIDES[args.data], "patch_size": args.patch_size, "pooling": args.pooling}
    config = TrainConfig(
        model=args.model, model_overrides=overrides, data=args.data, steps=args.steps, batch_size=args.batch_size,
        seed=args.seed, augment=args.augment, dtype=args.dtype, checkpoint_every=args.checkpoint_every,
        optimizer=OptimizerConfig(name="adamw", learning_rate=args.lr, schedule="cosine",
                                  warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, clip_norm=args.clip_norm),
    )
    summary = train_and_evaluate(config, args.workdir, progress=not args.no_progress)
    print(f"test accuracy {summary['test_accuracy']:.4f} after {summary['steps']} steps "
          f"({summary['new_steps']} new); checkpoints in {summary['checkpoint_dir']}")
    print(json.dumps({k: summary[k] for k in ("model", "data", "steps", "new_steps", "test_accuracy",
                                              "train_samples_per_s", "params")}))


if __name__ == "__main__":
    main()
