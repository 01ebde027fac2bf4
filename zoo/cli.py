"""The ``zoo`` command line: ``zoo list``, ``zoo train``, ``zoo tune``, ``zoo plan``, ``zoo keygen`` and the
techniques (``zoo prune``, ``zoo quantize``, ``zoo federated``, ``zoo explain``, ``zoo deidentify``).

``zoo train MODEL --data DATASET [--steps N | --epochs E] ...`` trains with a
progress bar on stderr, writes ``WORKDIR/metrics.jsonl``, TensorBoard events
and ``curves.png``, and prints the final metrics as one JSON object on the
last line of stdout.  The same command on the same work directory resumes.
``--parallel`` spreads a run over devices (and, with ``--coordinator`` or the
``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``
environment variables, over processes); ``zoo plan`` or ``zoo train --dry-run``
print the memory each device needs without training.

Exit codes (``EXIT_CODES``; also in ``zoo train --help``) let schedulers tell a
preempted run, to be restarted, from one that will fail again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import textwrap
import warnings

# standard library only: installed on main's first line, before anything imports JAX
from zoo.signals import StopSignals

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


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _list(args) -> int:
    from zoo import registry

    names = registry.list_models(args.pattern)
    rows = [("name", "params", "input", "layout", "task", "description")]
    for name in names:
        spec = registry.get_spec(name)
        rows.append((name, f"{registry.param_count(name):,}", "x".join(map(str, spec.config.input_shape)),
                     spec.config.layout, registry.task_name(spec.config), spec.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _init_distributed(args) -> None:
    """Joins a multi-process run (before JAX touches a device); the settings come from flags or env vars."""
    coordinator = args.coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = args.num_processes or _env_int("JAX_NUM_PROCESSES")
    process_id = args.process_id if args.process_id is not None else _env_int("JAX_PROCESS_ID")
    if not (coordinator or args.distributed):
        if num_processes or process_id is not None:
            raise ValueError("--num-processes / --process-id need --coordinator HOST:PORT (or --distributed)")
        return
    import jax

    if jax.distributed.is_initialized():
        return
    # CPU processes exchange collectives through gloo (accelerators use their own interconnect)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator:
        if num_processes is None or process_id is None:
            raise ValueError(f"--coordinator {coordinator} needs --num-processes and --process-id "
                             f"(got {num_processes} and {process_id})")
        if not 0 <= process_id < num_processes:
            raise ValueError(f"--process-id must be in [0, {num_processes}), got {process_id}")
        jax.distributed.initialize(coordinator, num_processes, process_id)
    else:  # TPU pod slices, SLURM, ...: JAX finds the cluster itself
        jax.distributed.initialize()


def _env_int(name: str):
    value = os.environ.get(name)
    return int(value) if value else None


def _parallel(args):
    from zoo.parallel import ParallelConfig

    return ParallelConfig(strategy=args.parallel, data=args.mesh_data, fsdp=args.mesh_fsdp, tensor=args.mesh_tensor)


def _plan(args) -> int:
    from zoo.parallel import format_memory_report
    from zoo.train import OptimizerConfig, TrainConfig, plan_memory

    _init_distributed(args)
    config = TrainConfig(model=args.model, steps=1, batch_size=args.batch_size, dtype=args.dtype,
                         optimizer=OptimizerConfig(name=args.optimizer), parallel=_parallel(args))
    report = plan_memory(config)
    print(format_memory_report(report), file=sys.stderr)
    if report["note"]:
        print(report["note"], file=sys.stderr)
    print(json.dumps(report))
    return 0


def _train(args) -> int:
    from zoo.train import train_and_evaluate

    if args.dry_run:
        return _plan(args)
    _init_distributed(args)
    config = _train_config(args, extensions=_extensions(args), parallel=_parallel(args), holdout=args.holdout)
    workdir = args.workdir or f"runs/{args.model}-{args.data}"
    summary = train_and_evaluate(config, workdir, progress=not args.no_progress)
    ran = f"{summary['new_steps']} new steps" if summary["resumed_from"] is not None else "trained"
    split = "val" if args.holdout else "test"
    tests = ", ".join(f"{k[len(split) + 1:].replace('_', ' ')} {v:.4f}" for k, v in summary.items()
                      if k.startswith(f"{split}_") and isinstance(v, float))
    print(f"{summary['model']} on {summary['data']} ({summary['task']}): step {summary['steps']} ({ran}), "
          f"{'validation' if args.holdout else 'test'} {tests}\n"
          f"  checkpoints  {summary['checkpoint_dir']}\n  metrics      {summary['metrics']}\n"
          f"  tensorboard  {summary['tensorboard']}\n  plot         {summary['plot']}", file=sys.stderr)
    if "dp_epsilon_pld" in summary:
        print(f"  DP-SGD: (epsilon, delta) = ({summary['dp_epsilon_pld']:.2f}, {summary['dp_delta']:g}) by the PLD "
              f"accountant, epsilon {summary['dp_epsilon_rdp']:.2f} by RDP", file=sys.stderr)
    if "sparsity" in summary:
        print(f"  sparsity     {summary['sparsity']:.4f} of the kernel weights are zero", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def _train_config(args, **settings):
    """The ``TrainConfig`` of ``zoo train``'s run settings (``_add_run_args``); ``settings``: further fields."""
    from zoo.train import OptimizerConfig, TrainConfig

    if args.steps is None and args.epochs is None:
        args.steps = 600
    if args.dropout is not None:
        _check_dropout_flag(args.model)
    optimizer = OptimizerConfig(
        name=args.optimizer, learning_rate=args.lr, schedule=args.schedule, warmup_steps=args.warmup_steps,
        momentum=args.momentum, weight_decay=args.weight_decay, clip_norm=args.clip_norm,
    )
    return TrainConfig(
        model=args.model, data=args.data, steps=args.steps, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, augment=args.augment, optimizer=optimizer, dtype=args.dtype,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep, log_every=args.log_every,
        label_smoothing=args.label_smoothing, early_stopping_patience=args.early_stopping,
        model_overrides={**_set_overrides(args.set), **({} if args.dropout is None else {"dropout_rate": args.dropout})},
        on_nonfinite=args.on_nonfinite, encrypt_key_file=args.encrypt_key_file, **settings,
    )


def _tune(args) -> int:
    from zoo.techniques.tune import load_space, tune

    base = _train_config(args)
    space = load_space(args.space, base)
    workdir = args.workdir or f"runs/tune-{args.model}-{args.data}"
    summary = tune(base, space, args.trials, workdir, holdout=args.holdout, seed=args.seed,
                   random_trials=args.random_trials, final=not args.no_final)
    best = summary["best"]
    if best is None:
        print(f"no trial completed in {workdir}", file=sys.stderr)
    else:
        test = ", ".join(f"{k[5:].replace('_', ' ')} {v:.4f}" for k, v in best.get("test", {}).items())
        print(f"best: trial {best['number']}, {summary['metric']} {best[summary['metric']]:.4f}"
              + (f"; trained on the whole training set: test {test}" if test else "")
              + f"\n  figures      {', '.join(summary['figures'].values())}"
              f"\n  summary      {os.path.join(os.path.abspath(workdir), 'summary.json')}"
              f"\n  best config  {best['command']}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def _set_overrides(items) -> dict:
    """``--set FIELD=VALUE`` pairs as config overrides (VALUE read as JSON: ``horizon=48``, ``input_shape=[30]``)."""
    overrides = {}
    for item in items or ():
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise ValueError(f"--set takes FIELD=VALUE (e.g. horizon=48 or input_shape=[30]), got {item!r}")
        try:
            overrides[field] = json.loads(value)
        except json.JSONDecodeError:
            overrides[field] = value
    return overrides


def _check_dropout_flag(model: str) -> None:
    """ValueError unless ``model``'s config has a ``dropout_rate`` for ``--dropout`` to override."""
    from zoo import registry
    from zoo.layers.checks import dropout_fields

    if "dropout_rate" not in dropout_fields(registry.get_config(model)):
        with_dropout = [n for n in registry.list_models() if "dropout_rate" in dropout_fields(registry.get_config(n))]
        raise ValueError(f"--dropout: {model} has no dropout (its config has no dropout_rate field); models with "
                         f"dropout: {', '.join(with_dropout)}")


def _add_key_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encrypt-key-file", metavar="F", default=None,
                   help="the key file of a run trained with --encrypt-key-file F (its checkpoints are encrypted)")


def _add_run_args(p: argparse.ArgumentParser, workdir_help: str) -> None:
    """The settings of one training run, shared by `zoo train` and `zoo tune` (its trials' base)."""
    p.add_argument("model", help="model name (see `zoo list`)")
    p.add_argument("--data", default="digits",
                   help="dataset: digits (bundled real digits), fsdd[:DIR][,speaker=NAME] (spoken digits), "
                        "synthetic, sentiment (shipped sentences, token "
                        "models), sentiment:TOKENIZER_DIR, pydoc (byte-level text, GPT), imdb/sst2/wikitext (online), "
                        "cifar10 (needs tensorflow-datasets or datasets, online once), translate:SRC-TGT and docstrings "
                        "(generated, T5), local real corpora wmt:DIR,pair=SRC-TGT / cnn_dailymail:DIR / xsum:DIR "
                        "(Parquet or Arrow, T5), squad:DIR (SQuAD JSON, BERT question answering), "
                        "movielens[:negatives=K] (shipped ratings; rating or ranking models: mf, ncf, two_tower, dlrm)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="total optimizer steps (default 600 if --epochs is not given)")
    length.add_argument("--epochs", type=_finite_float, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=_finite_float, default=1e-3, help="peak learning rate")
    p.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw"])
    p.add_argument("--schedule", default="constant", choices=["constant", "cosine"])
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--momentum", type=_finite_float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=_finite_float, default=0.0)
    p.add_argument("--clip-norm", type=_finite_float, default=None, help="clip gradients to this global norm")
    p.add_argument("--augment", default="auto", help="auto, none, or comma-separated ops: shift:N, crop:N, "
                   "rrc:S, flip, jitter:A, mixup:A (zoo.data.images)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="compute dtype (parameters stay float32)")
    p.add_argument("--workdir", default=None, help=workdir_help)
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=200, help="evaluate and save every N steps")
    p.add_argument("--keep", type=int, default=3, help="newest checkpoints to keep (plus the best)")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--on-nonfinite", default="stop",
                   help="on a NaN/Inf loss or gradient: stop (exit 4), or skip / skip:N (skip the update, "
                        "stop after N in a row; N=10 for skip)")
    p.add_argument("--encrypt-key-file", metavar="F", default=None,
                   help="encrypt checkpoints with AES-256-GCM under the 32-byte key in F (make one with "
                        "`zoo keygen F`); resuming needs the same F")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a model config field, VALUE as JSON (repeatable): --set horizon=48 "
                        "--set input_shape=[336,1]")
    reg = p.add_argument_group("regularisation")
    reg.add_argument("--dropout", type=_finite_float, default=None,
                     help="override the model's dropout_rate (an error for models without dropout, e.g. ResNet)")
    reg.add_argument("--label-smoothing", type=_finite_float, default=0.0,
                     help="train classification against (1 - E) * one-hot + E / K targets (mixup's too)")
    reg.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                     help="stop after this many evaluations without a better best metric of the task "
                          "(test accuracy; perplexity for language models)")


def _add_parallel_args(p: argparse.ArgumentParser) -> None:
    from zoo.parallel.config import STRATEGIES

    g = p.add_argument_group("devices and hosts")
    g.add_argument("--parallel", default="single", choices=STRATEGIES,
                   help="single device; pmap (replicated, maintenance-mode API); dp (data parallel, recommended "
                        "over pmap); fsdp (parameters and optimizer state split too); tp (layers split); combos")
    g.add_argument("--mesh-data", type=int, default=None,
                   help="data axis size; None: the devices the other axes leave (or 1 if the strategy has no dp)")
    g.add_argument("--mesh-fsdp", type=int, default=None, help="fsdp axis size (None: as --mesh-data)")
    g.add_argument("--mesh-tensor", type=int, default=None, help="tensor axis size (None: as --mesh-data)")
    g.add_argument("--coordinator", default=None,
                   help="HOST:PORT of process 0 (multi-host; env JAX_COORDINATOR_ADDRESS)")
    g.add_argument("--num-processes", type=int, default=None, help="processes in the run (env JAX_NUM_PROCESSES)")
    g.add_argument("--process-id", type=int, default=None, help="this process, 0-based (env JAX_PROCESS_ID)")
    g.add_argument("--distributed", action="store_true",
                   help="join a multi-host run JAX detects itself (TPU pod slice, SLURM)")


def _extensions(args) -> tuple:
    from zoo.techniques import DPSGD, GradualPruning

    extensions = []
    if args.dp_noise is not None:
        extensions.append(DPSGD(noise_multiplier=args.dp_noise, l2_clip=args.dp_clip, delta=args.dp_delta,
                                seed=args.seed))
    if args.prune_sparsity is not None:
        end = args.prune_end_step
        if end is None:
            if args.steps is None:
                raise ValueError("--prune-sparsity with --epochs needs --prune-end-step")
            end = (2 * args.steps) // 3
        extensions.append(GradualPruning(target_sparsity=args.prune_sparsity, begin_step=args.prune_begin_step,
                                         end_step=end, frequency=args.prune_frequency, scope=args.prune_scope))
    return tuple(extensions)


def _print_report(report: dict) -> None:
    print(json.dumps({k: v for k, v in report.items() if k != "params"}))


def _prune(args) -> int:
    from zoo.techniques import prune_run

    report = prune_run(args.workdir, args.sparsity, scope=args.scope, step=args.step, out=args.out,
                       key_file=args.encrypt_key_file)
    for layer, value in report["sparsity_per_layer"].items():
        print(f"  {layer:32s} sparsity {value:.4f}", file=sys.stderr)
    print(f"{report['model']}: {report['sparsity']:.4f} of the kernel weights pruned ({report['scope']}); test "
          f"accuracy {report['accuracy_before']:.4f} -> {report['accuracy_after']:.4f}", file=sys.stderr)
    _print_report(report)
    return 0


def _quantize(args) -> int:
    from zoo.techniques import quantize_run

    report = quantize_run(args.workdir, step=args.step, qat_steps=args.qat_steps, key_file=args.encrypt_key_file)
    print(f"{report['model']}: {report['float32_bytes']:,} -> {report['int8_bytes']:,} bytes "
          f"({report['size_ratio']:.3f}x); test accuracy float {report['accuracy_float']:.4f}, int8 weights "
          f"{report['accuracy_int8_weights']:.4f}, qwix int8 weights+activations {report['accuracy_qwix_int8']:.4f}"
          + (f", after {args.qat_steps} QAT steps {report['accuracy_qat_int8']:.4f}" if args.qat_steps else ""),
          file=sys.stderr)
    _print_report(report)
    return 0


def _federated(args) -> int:
    from zoo.techniques.federated import FedAvgConfig, run_fedavg

    config = FedAvgConfig(num_clients=args.clients, alpha=args.alpha, client_fraction=args.fraction,
                          rounds=args.rounds, local_epochs=args.local_epochs, batch_size=args.batch_size,
                          learning_rate=args.lr, seed=args.seed, dropout_clients=args.dropout_clients)
    print("round  federated  centralised" + ("  (secure aggregation)" if args.secure_aggregation else ""),
          file=sys.stderr)

    def show(row):
        central = row.get("centralised_accuracy", float("nan"))
        note = f"  dropped {row['dropped']}" if row["dropped"] else ""
        note += f"  {row['refused']}" if "refused" in row else ""
        print(f"{row['round']:5d}  {row['accuracy']:9.4f}  {central:11.4f}{note}", file=sys.stderr)

    report = run_fedavg(args.model, config, data=args.data, centralised=not args.no_centralised, progress=show,
                        secure_aggregation=args.secure_aggregation, secagg_threshold=args.secagg_threshold)
    _print_report(report)
    return 0


def _explain(args) -> int:
    from zoo.techniques.explain import explain_run

    report = explain_run(args.workdir, args.input, out_dir=args.out, methods=tuple(args.methods.split(",")),
                         model=args.model, key_file=args.encrypt_key_file)
    print(f"{report['model']}: {', '.join(report['methods'])} -> {report['png']}", file=sys.stderr)
    _print_report(report)
    return 0


def _transcribe(args) -> int:
    from zoo.train.transcribe import transcribe

    for file, text in zip(args.files, transcribe(args.workdir, args.files, step=args.step,
                                                         key_file=args.encrypt_key_file)):
        print(text if len(args.files) == 1 else f"{file}\t{text}")
    return 0


def _deidentify(args) -> int:
    from zoo.techniques.deidentify import deidentify_file

    text = deidentify_file(args.workdir, args.input, args.out, step=args.step, key_file=args.encrypt_key_file)
    if args.out is None:  # bytes: the input's encoding and line endings, whatever stdout's locale
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()
    else:
        print(f"wrote the de-identified text of {args.input} to {args.out}", file=sys.stderr)
    return 0


def _keygen(args) -> int:
    from zoo.train.encryption import write_key_file

    path = write_key_file(args.file)
    print(f"wrote a 32-byte AES-256-GCM key (64 hex digits) to {path}; keep it apart from the checkpoints: "
          "without it they cannot be read", file=sys.stderr)
    return 0


def _generate(args) -> int:
    from zoo.train.generate import generate_text

    inputs = args.input
    for text, out in zip(inputs, generate_text(args.workdir, inputs, step=args.step, key_file=args.encrypt_key_file,
                                               num_beams=args.num_beams, length_penalty=args.length_penalty,
                                               long=args.long, max_length=args.max_length)):
        print(out if len(inputs) == 1 else f"{text}\t{out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description="JAX/Flax model zoo")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list models with parameter counts and input shapes")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name filter (default: all)")
    p.set_defaults(func=_list)

    p = sub.add_parser("keygen", help="write a new random checkpoint key file (for `zoo train --encrypt-key-file`)")
    p.add_argument("file", help="the key file to create (never overwritten; mode 0600)")
    p.set_defaults(func=_keygen)

    exit_codes = "exit codes:\n" + "\n".join(
        textwrap.fill(text, 79, initial_indent=f"  {code:>3}  ", subsequent_indent=" " * 7)
        for code, text in EXIT_CODES.items())
    p = sub.add_parser("train", help="train a model; rerunning on the same --workdir resumes",
                       formatter_class=_HelpFormatter, epilog=exit_codes)
    _add_run_args(p, "run directory (default runs/MODEL-DATA)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--dry-run", action="store_true", help="print the memory per device (as `zoo plan`), train nothing")
    p.add_argument("--holdout", type=_finite_float, default=0.0, metavar="FRACTION",
                   help="evaluate on this fraction of the training set, held out from training (val_* metrics), "
                        "instead of the test set (as zoo tune's trials do)")
    _add_parallel_args(p)
    dp = p.add_argument_group("differential privacy (DP-SGD)")
    dp.add_argument("--dp-noise", type=_finite_float, default=None, help="noise multiplier sigma; turns DP-SGD on")
    dp.add_argument("--dp-clip", type=_finite_float, default=1.0, help="per-example gradient L2 bound")
    dp.add_argument("--dp-delta", type=_finite_float, default=1e-5, help="delta at which epsilon is reported")
    pr = p.add_argument_group("gradual magnitude pruning")
    pr.add_argument("--prune-sparsity", type=_finite_float, default=None, help="final sparsity; turns pruning on")
    pr.add_argument("--prune-scope", default="layer", choices=["layer", "global"])
    pr.add_argument("--prune-begin-step", type=int, default=0)
    pr.add_argument("--prune-end-step", type=int, default=None, help="default: 2/3 of --steps")
    pr.add_argument("--prune-frequency", type=int, default=10, help="steps between mask updates")
    p.set_defaults(func=_train)

    p = sub.add_parser("tune", help="hyperparameter search (optuna TPE, pruning); rerunning on the same --workdir "
                       "resumes", formatter_class=_HelpFormatter, epilog=exit_codes)
    _add_run_args(p, "search directory: study.db, trials/, best/, summary.json, figures "
                     "(default runs/tune-MODEL-DATA)")
    p.add_argument("--trials", type=int, required=True, help="trials in the search (finished ones of earlier "
                   "runs on --workdir count)")
    p.add_argument("--space", required=True, metavar="TOML", help="the search space, e.g. learning_rate = "
                   "{type = \"float\", low = 1e-4, high = 1e-2, log = true} (see zoo.techniques.tune)")
    p.add_argument("--holdout", type=_finite_float, default=0.1, metavar="FRACTION",
                   help="part of the training set the trials are scored on (the test set is left alone)")
    p.add_argument("--random-trials", type=_non_negative_int, default=4,
                   help="trials drawn at random before TPE; none is pruned before this many completed")
    p.add_argument("--no-final", action="store_true",
                   help="skip training the best configuration on the whole training set (and its test metrics)")
    p.set_defaults(func=_tune)

    p = sub.add_parser("plan", help="memory per device of a model's train step under a strategy (runs no step)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="model name (see `zoo list`)")
    p.add_argument("--batch-size", type=int, default=128, help="global batch size")
    p.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    _add_parallel_args(p)
    p.set_defaults(func=_plan)

    p = sub.add_parser("prune", help="one-shot magnitude pruning of a trained run",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", required=True, help="a run written by zoo train")
    p.add_argument("--sparsity", type=_finite_float, required=True, help="fraction of kernel weights to zero")
    p.add_argument("--scope", default="layer", choices=["layer", "global"])
    p.add_argument("--step", type=_non_negative_int, default=None, help="checkpoint step (default: newest)")
    p.add_argument("--out", default=None, help="write the pruned model as a run here")
    _add_key_arg(p)
    p.set_defaults(func=_prune)

    p = sub.add_parser("quantize", help="int8 post-training quantization of a trained run",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", required=True, help="a run written by zoo train")
    p.add_argument("--step", type=_non_negative_int, default=None, help="checkpoint step (default: newest)")
    p.add_argument("--qat-steps", type=_non_negative_int, default=0,
                   help="also fine-tune this many steps with qwix QAT")
    _add_key_arg(p)
    p.set_defaults(func=_quantize)

    p = sub.add_parser("federated", help="FedAvg over simulated non-IID clients vs centralised training",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="model name (see `zoo list`)")
    p.add_argument("--data", default="digits")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--alpha", type=_finite_float, default=0.5, help="Dirichlet label skew (small = more skewed)")
    p.add_argument("--fraction", type=_finite_float, default=0.5, help="clients sampled per round")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--local-epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=_finite_float, default=0.05, help="clients' SGD learning rate")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--no-centralised", action="store_true", help="skip the centralised baseline")
    p.add_argument("--secure-aggregation", action="store_true",
                   help="the server sees only pairwise-masked client updates and their sum (Bonawitz et al. 2017)")
    p.add_argument("--dropout-clients", type=_non_negative_int, default=0,
                   help="this many of each round's sampled clients drop after masking")
    p.add_argument("--secagg-threshold", type=_non_negative_int, default=None,
                   help="Shamir threshold: least survivors to unmask a round (default: a majority of the sampled)")
    p.set_defaults(func=_federated)

    p = sub.add_parser("explain", help="saliency, integrated gradients and Grad-CAM figures of a trained run",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="the run's model name (checked against the checkpoint)")
    p.add_argument("--workdir", required=True, help="a run written by zoo train")
    p.add_argument("--input", default="test:0,1,2,3", help="test:I,J,... (test-set indices) or a .npy of inputs")
    p.add_argument("--methods", default="saliency,integrated_gradients,grad_cam")
    p.add_argument("--out", default=None, help="output directory (default WORKDIR/explain)")
    _add_key_arg(p)
    p.set_defaults(func=_explain)

    p = sub.add_parser("transcribe", help="print the words spoken in WAV files (a whisper_fsdd or kws_cnn run)")
    p.add_argument("--workdir", required=True, help="a run written by zoo train")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    p.add_argument("files", nargs="+", help="mono 8 kHz WAV files")
    _add_key_arg(p)
    p.set_defaults(func=_transcribe)

    p = sub.add_parser("generate", help="print the output text of a translation or summarization run",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", required=True, help="a run written by zoo train (e.g. t5_tiny on translate:en-de)")
    p.add_argument("--input", action="append", required=True, help="a source text (repeat for several)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    p.add_argument("--num-beams", type=int, default=1, help="1 = greedy; > 1 = beam search")
    p.add_argument("--length-penalty", type=_finite_float, default=1.0, help="beam search: > 0 favours longer outputs")
    p.add_argument("--long", default="truncate", choices=["truncate", "refuse"],
                   help="a source longer than the model's maximum is cut or refused")
    p.add_argument("--max-length", type=int, default=None,
                   help="output length including the start token (default: the model's target_length + 1)")
    _add_key_arg(p)
    p.set_defaults(func=_generate)

    p = sub.add_parser("deidentify", help="replace the personal data in a text file by its type ([NAME], [EMAIL], ...)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", required=True, help="a token tagger trained on --data pii (zoo train bert_pii --data pii)")
    p.add_argument("input", help="a UTF-8 text file; everything but the entities found is written back unchanged")
    p.add_argument("--out", default=None, help="write here (default: stdout)")
    p.add_argument("--step", type=_non_negative_int, default=None, help="checkpoint step (default: the newest)")
    _add_key_arg(p)
    p.set_defaults(func=_deidentify)
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
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(StopSignals())  # first: building the parser imports zoo.parallel (JAX)
        args = build_parser().parse_args(argv)
        if args.func not in (_train, _tune) or getattr(args, "dry_run", False):  # training stops gracefully
            stack.close()
            if stop.signal_name is not None:
                print(f"zoo: stopped by {stop.signal_name} before {args.command} started", file=sys.stderr)
                return 128 + signal.Signals[stop.signal_name].value
        return _run(args)


def _run(args) -> int:
    previous_format, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C in a command other than train: one line, as a shell reports it
        print(f"zoo: {args.command} interrupted by SIGINT", file=sys.stderr)
        return 130
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
