"""The ``zoo`` command line: ``zoo list`` and ``zoo train``.

``zoo train MODEL --data DATASET [--steps N | --epochs E] ...`` trains with a
progress bar on stderr, writes ``WORKDIR/metrics.jsonl``, TensorBoard events
and ``curves.png``, and prints the final metrics as one JSON object on the
last line of stdout.  The same command on the same work directory resumes.

Exit codes (``EXIT_CODES``; also in ``zoo train --help``) let schedulers tell a
preempted run, to be restarted, from one that will fail again.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import warnings

EXIT_OK, EXIT_BAD_INPUT, EXIT_CHECKPOINT, EXIT_NONFINITE, EXIT_BUSY, EXIT_PREEMPTED = 0, 2, 3, 4, 5, 75
EXIT_CODES = {
    EXIT_OK: "training finished (or there was nothing left to train)",
    1: "an unexpected error (a Python traceback)",
    EXIT_BAD_INPUT: "bad command line, configuration or input; or an unwritable --workdir",
    EXIT_CHECKPOINT: "the work directory's checkpoints cannot be used (another model or config, all corrupt), "
                     "or a checkpoint could not be written (disk full); earlier checkpoints are intact",
    EXIT_NONFINITE: "a NaN/Inf loss or gradient stopped training; no checkpoint of it was written",
    EXIT_BUSY: "another run is training in this --workdir",
    EXIT_PREEMPTED: "stopped by SIGTERM or SIGINT after saving a checkpoint; rerun the same command to resume",
    143: "a second SIGTERM (130: SIGINT) aborted at once: the process died of the signal, as kill would; "
         "rerun to resume from the newest complete checkpoint",
}


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
        on_nonfinite=args.on_nonfinite,
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

    exit_codes = "exit codes:\n" + "\n".join(
        textwrap.fill(text, 79, initial_indent=f"  {code:>3}  ", subsequent_indent=" " * 7)
        for code, text in EXIT_CODES.items())
    p = sub.add_parser("train", help="train a model; rerunning on the same --workdir resumes",
                       formatter_class=_HelpFormatter, epilog=exit_codes)
    p.add_argument("model", help="model name (see `zoo list`)")
    p.add_argument("--data", default="digits",
                   help="dataset: digits (bundled real digits), synthetic, sentiment (shipped sentences, token "
                        "models), sentiment:TOKENIZER_DIR, pydoc (byte-level text, GPT), imdb/sst2/wikitext (online), "
                        "cifar10 (needs tensorflow-datasets or datasets, online once)")
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
    p.add_argument("--on-nonfinite", default="stop",
                   help="on a NaN/Inf loss or gradient: stop (exit 4), or skip / skip:N (skip the update, "
                        "stop after N in a row; N=10 for skip)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_train)
    return parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help, and the epilog (exit codes) kept as written."""


def _format_warning(message, category, filename, lineno, line=None):
    return f"zoo: warning: {message}\n"


def _exit_code(error: Exception) -> int | None:
    """The documented exit code of an expected error; None for a bug (shown as a traceback)."""
    if isinstance(error, ValueError) and "zoo.train" not in sys.modules:
        return EXIT_BAD_INPUT
    from zoo.train import CheckpointError, NonFiniteError, Preempted, WorkdirBusyError

    for cls, code in ((Preempted, EXIT_PREEMPTED), (WorkdirBusyError, EXIT_BUSY), (NonFiniteError, EXIT_NONFINITE),
                      (CheckpointError, EXIT_CHECKPOINT), (ValueError, EXIT_BAD_INPUT)):
        if isinstance(error, cls):
            return code
    return None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    previous_format, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return args.func(args)
    except Exception as e:  # expected errors: one clear line, no traceback
        code = _exit_code(e)
        if code is None:
            raise
        print(f"zoo: {'' if code == EXIT_PREEMPTED else 'error: '}{e}", file=sys.stderr)
        return code
    finally:
        warnings.formatwarning = previous_format


if __name__ == "__main__":
    sys.exit(main())
