"""The ``zoo`` command line: ``zoo list`` and ``zoo train``.

``zoo train MODEL --data DATASET [--steps N | --epochs E] ...`` trains with a
progress bar on stderr, writes ``WORKDIR/metrics.jsonl``, TensorBoard events
and ``curves.png``, and prints the final metrics as one JSON object on the
last line of stdout.  The same command on the same work directory resumes.
"""

from __future__ import annotations

import argparse
import json
import sys


def _list(args) -> int:
    from zoo import registry

    names = registry.list_models(args.pattern)
    rows = [("name", "params", "input", "layout", "description")]
    for name in names:
        spec = registry.get_spec(name)
        rows.append((name, f"{registry.param_count(name):,}", "x".join(map(str, spec.config.input_shape)),
                     spec.config.layout, spec.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _train(args) -> int:
    from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate

    if args.steps is None and args.epochs is None:
        args.steps = 600
    optimizer = OptimizerConfig(
        name=args.optimizer, learning_rate=args.lr, schedule=args.schedule, warmup_steps=args.warmup_steps,
        momentum=args.momentum, weight_decay=args.weight_decay, clip_norm=args.clip_norm,
    )
    config = TrainConfig(
        model=args.model, data=args.data, steps=args.steps, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, augment=args.augment, optimizer=optimizer, dtype=args.dtype,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep, log_every=args.log_every,
    )
    workdir = args.workdir or f"runs/{args.model}-{args.data}"
    summary = train_and_evaluate(config, workdir, progress=not args.no_progress)
    ran = f"{summary['new_steps']} new steps" if summary["resumed_from"] is not None else "trained"
    print(f"{summary['model']} on {summary['data']}: step {summary['steps']} ({ran}), "
          f"test accuracy {summary['test_accuracy']:.4f}\n"
          f"  checkpoints  {summary['checkpoint_dir']}\n  metrics      {summary['metrics']}\n"
          f"  tensorboard  {summary['tensorboard']}\n  plot         {summary['plot']}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description="JAX/Flax model zoo")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list models with parameter counts and input shapes")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name filter (default: all)")
    p.set_defaults(func=_list)

    p = sub.add_parser("train", help="train a model; rerunning on the same --workdir resumes",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="model name (see `zoo list`)")
    p.add_argument("--data", default="digits", help="dataset: digits (bundled real digits), synthetic, or cifar10 "
                   "(needs tensorflow-datasets or datasets, and network once)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="total optimizer steps (default 600 if --epochs is not given)")
    length.add_argument("--epochs", type=float, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw"])
    p.add_argument("--schedule", default="constant", choices=["constant", "cosine"])
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--clip-norm", type=float, default=None, help="clip gradients to this global norm")
    p.add_argument("--augment", default="auto", help="auto, none, or comma-separated ops: shift:N, crop:N, "
                   "rrc:S, flip, jitter:A, smooth:E, mixup:A (zoo.data.images)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="compute dtype (parameters stay float32)")
    p.add_argument("--workdir", default=None, help="run directory (default runs/MODEL-DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=200, help="evaluate and save every N steps")
    p.add_argument("--keep", type=int, default=3, help="newest checkpoints to keep (plus the best)")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_train)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # configuration / input errors: one clear line, no traceback
        print(f"zoo: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
