"""``train_and_evaluate(config, workdir)``: the training loop with exact resume.

Running it twice on the same ``workdir`` resumes from the newest complete
checkpoint: parameters, optimizer state, RNG and data position are restored,
so N steps + restart + N steps equals 2N steps in one run, bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
import time

import jax
import numpy as np

from zoo import registry
from zoo.data import BatchSchedule, eval_batches, load_dataset, resolve_augment, train_batch
from zoo.data.images import make_batch_transform, parse_augment
from zoo.parallel import ParallelConfig, format_replicated, make_strategy
from zoo.train.checkpoint import CheckpointError, Checkpointer
from zoo.train.encryption import load_key
from zoo.train.extension import Extension, extension_from_dict
from zoo.train.integrity import NonFiniteMonitor, parse_nonfinite_policy, restore_newest_usable, with_finite_flag
from zoo.train.metrics import MetricsLogger, plot_metrics
from zoo.train.optim import OptimizerConfig, make_optimizer, make_schedule
from zoo.train.preemption import Preempted, PreemptionGuard
from zoo.train.state import TrainState, create_train_state, with_initial_params
from zoo.tasks import Task, sums_to_host, task_for
from zoo.train.steps import eval_step, train_step, with_batch_transform
from zoo.train.workdir import WorkdirLock, not_a_directory

# 2: batches and datasets in the task's schema ({"inputs", "label"}, {"tokens"}, ...), the task's name
# and best metric in the metadata, one spelling of config fields across families.
FORMAT_VERSION = 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run.

    Attributes:
      model: registry name; model_overrides: config fields to change.
      data: dataset name (``zoo.data.DATASETS``).
      steps: total optimizer steps; or ``epochs`` (passes over the training set).
      batch_size: examples per step.
      seed: seeds initialisation, dropout, the data order and augmentation.
      augment: "auto" (random shifts of digit images / row sequences, none
        otherwise), "shift:N" or "none"; see ``zoo.data.augment``.
      optimizer: see :class:`OptimizerConfig`.
      dtype: compute dtype ("float32" or "bfloat16"); parameters stay float32.
      checkpoint_every: save (after evaluating) every this many steps, and at the end.
      keep_checkpoints: newest checkpoints kept, besides the best by the task's best metric
        (``test_accuracy`` for classification, ``test_perplexity`` for causal LM).
      log_every: steps between train-metric rows.
      eval_batch_size: batch size of evaluation.
      async_checkpointing: write checkpoints in the background.
      label_smoothing: train against smoothed one-hot targets (0 = off).
      early_stopping_patience: stop once this many evaluations in a row (every
        ``checkpoint_every`` steps) did not improve the task's best metric (None = off).
      extensions: training techniques (``zoo.train.Extension``: DP-SGD, pruning, ...).
      on_nonfinite: a NaN/Inf loss or gradient "stop"s the run (no checkpoint of it is
        written), or "skip"/"skip:N" skips such updates, stopping after N (10) in a row.
      parallel: how the run is spread over devices (``zoo.parallel.ParallelConfig``:
        single, pmap, dp, fsdp, tp and combinations, with mesh sizes). Checkpoints
        do not depend on it: a run can resume under another strategy or mesh.
      encrypt_key_file: a file holding a 32-byte key (``zoo keygen F``): checkpoints are written
        and read encrypted with AES-256-GCM (``zoo.train.encryption``); None: plain checkpoints.
        A run's checkpoints are all encrypted or all plain; resuming needs the same key.
      holdout: evaluate on this fraction of the training set, held out from training, instead of the
        test set (0 = off): the metrics are named ``val_*`` then (``val_accuracy``) and the best checkpoint
        is chosen by them. The held-out examples do not depend on ``seed``
        (``zoo.data.ArrayDataset.hold_out``), so runs that differ in anything else see the same ones;
        hyperparameter search (``zoo.techniques.tune``) tunes on them and leaves the test set alone.
    """

    model: str
    model_overrides: dict = dataclasses.field(default_factory=dict)
    data: str = "digits"
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 128
    seed: int = 0
    augment: str = "auto"
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    dtype: str = "float32"
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    log_every: int = 20
    eval_batch_size: int = 256
    async_checkpointing: bool = True
    label_smoothing: float = 0.0
    early_stopping_patience: int | None = None
    extensions: tuple = ()
    on_nonfinite: str = "stop"
    parallel: ParallelConfig = dataclasses.field(default_factory=ParallelConfig)
    encrypt_key_file: str | None = None
    holdout: float = 0.0

    def __post_init__(self):
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"give exactly one of steps or epochs (got steps={self.steps}, epochs={self.epochs})")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 0):
            raise ValueError(f"steps must be a non-negative int, got {self.steps!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs!r}")
        for name in ("batch_size", "checkpoint_every", "keep_checkpoints", "log_every", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be 'float32', 'bfloat16' or 'float16', got {self.dtype!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.early_stopping_patience is not None and not (
                isinstance(self.early_stopping_patience, int) and self.early_stopping_patience > 0):
            raise ValueError(f"early_stopping_patience must be a positive int or None, got "
                             f"{self.early_stopping_patience!r}")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for ext in self.extensions:
            if not isinstance(ext, Extension):
                raise ValueError(f"extensions must be zoo.train.Extension instances, got {type(ext).__name__}")
        parse_nonfinite_policy(self.on_nonfinite)
        if isinstance(self.holdout, bool) or not isinstance(self.holdout, (int, float)) or not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be a fraction in [0, 1), got {self.holdout!r}")
        if self.encrypt_key_file is not None:
            if not isinstance(self.encrypt_key_file, (str, os.PathLike)):
                raise ValueError(f"encrypt_key_file must be a path, got {self.encrypt_key_file!r}")
            object.__setattr__(self, "encrypt_key_file", os.fspath(self.encrypt_key_file))

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(dataclasses.replace(self, extensions=())),
                "extensions": [ext.to_dict() for ext in self.extensions]}


# per-step metrics the loop does not average into the train rows
_NOT_LOGGED = ("all_finite",)


def make_run_strategy(parallel: ParallelConfig, model, tx, seed: int, batch_size: int, step_fn=train_step):
    """The ``zoo.parallel`` strategy running ``step_fn`` (default ``train_step``) and ``eval_step`` for ``model``."""
    return make_strategy(parallel, model, functools.partial(create_train_state, model, tx, seed),
                         train_step=step_fn, eval_step=eval_step, batch_size=batch_size)


def plan_memory(config: TrainConfig) -> dict:
    """Bytes per device (parameters, optimizer, model state, activations) of ``config``'s train step.

    Compiles the step for the chosen strategy without allocating the state or
    running a step (``zoo train ... --dry-run``).
    """
    overrides = dict(config.model_overrides)
    if config.dtype != "float32":
        overrides.setdefault("dtype", config.dtype)
    model = registry.create_model(config.model, **overrides)
    tx = make_optimizer(config.optimizer, config.steps or 1)
    strategy = make_run_strategy(config.parallel, model, tx, config.seed, config.batch_size)
    return {"model": config.model, **strategy.memory_report(), "note": format_replicated(strategy)}


def evaluate(eval_fn, state: TrainState, split: dict, batch_size: int, task: Task | None = None) -> dict:
    """The task's metrics (e.g. ``loss``, ``accuracy``) over every example of ``split``.

    Args:
      eval_fn: ``(state, batch) -> sums`` (``eval_step`` or a strategy's).
      state: the train state; its task (or ``task``) turns the summed sums into metrics.
      split: ``{entry: [N, ...]}`` arrays of the task's schema (``dataset.test``).
      batch_size: eval batch size (the last batch is padded and masked).
    """
    task = task or state.task
    n = len(next(iter(split.values())))
    totals: dict = {}
    for batch in eval_batches(split, min(batch_size, n)):
        for key, value in sums_to_host(eval_fn(state, batch)).items():
            totals[key] = totals.get(key, 0.0) + value
    return task.metrics(totals)


def evaluate_decoded(model, state, dataset, batch_size: int, task: Task, strategy=None) -> dict:
    """A decoding task's metrics of the test split (``task.decodes``): decode every example, score the text.

    Greedy decoding (``task.predict``) runs compiled on one device with the parameters as a
    checkpoint holds them (one copy); ``dataset.text`` turns ids into text and holds the references.
    """
    if not getattr(task, "decodes", False):
        return {}
    if dataset.text is None:
        raise ValueError(f"task {task.name!r} evaluates by decoding, but dataset {dataset.name!r} has no text "
                         "(ArrayDataset.text: a tokenizer's decode and the reference texts)")
    items = strategy.checkpoint_items(state) if strategy is not None else state.checkpoint_items()
    variables = {"params": jax.device_get(items["params"])}
    predict = _compiled_predict(task, model)
    split = dataset.test
    n = len(next(iter(split.values())))
    rows = []
    for batch in eval_batches(split, min(batch_size, n)):
        keys = task.schema(model.config)
        ids = predict(variables, {k: batch[k] for k in keys})
        rows.append(np.asarray(ids)[np.asarray(batch["mask"]) > 0])
    return task.decoded_metrics(np.concatenate(rows), dataset.text.test_targets, dataset.text.decode)


@functools.lru_cache(maxsize=8)
def _compiled_predict(task: Task, model):
    return jax.jit(lambda variables, batch: task.predict(model.apply, variables, batch, config=model.config))


def _check_resumable(meta: dict, expected: dict, schedule: BatchSchedule, workdir: str) -> None:
    version = meta.get("format_version")
    if version != expected["format_version"]:
        older = isinstance(version, int) and version < expected["format_version"]
        raise CheckpointError(
            f"work directory {workdir} holds a checkpoint written by "
            + (f"an older zoo (checkpoint format {version}, this zoo writes {expected['format_version']}); "
               "retrain in a new --workdir, or resume it with the zoo release that wrote it" if older else
               f"another zoo (checkpoint format {version!r}, this zoo reads {expected['format_version']}); "
               "use that release or a new --workdir"))
    if meta.get("model") != expected["model"]:
        raise CheckpointError(
            f"work directory {workdir} holds a checkpoint of model {meta.get('model')!r}, not {expected['model']!r}; "
            "use another --workdir for a different model"
        )
    if meta.get("model_config") != expected["model_config"]:
        raise CheckpointError(
            f"work directory {workdir} holds a {expected['model']} checkpoint with config {meta.get('model_config')}, "
            f"but this run's config is {expected['model_config']}; use the same settings or another --workdir"
        )
    if meta.get("task") != expected["task"]:
        raise CheckpointError(
            f"work directory {workdir} holds a checkpoint trained for task {meta.get('task')!r}, not "
            f"{expected['task']!r}; use another --workdir"
        )
    if meta.get("data") != expected["data"]:
        raise CheckpointError(
            f"work directory {workdir} was trained on dataset {meta.get('data')!r}, not {expected['data']!r}"
        )
    if meta.get("augment") != expected["augment"]:
        raise CheckpointError(
            f"work directory {workdir} was trained with augment={meta.get('augment')!r}, this run asks for "
            f"{expected['augment']!r}; use the same setting or another --workdir"
        )
    saved_opt = meta.get("optimizer") or {}
    changed = {k: (saved_opt.get(k), v) for k, v in expected["optimizer"].items() if saved_opt.get(k) != v}
    if changed:
        diff = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        hint = (" (a cosine schedule's horizon is the total --steps)" if "horizon" in changed else "")
        raise CheckpointError(
            f"work directory {workdir} was trained with other optimizer settings ({diff}){hint}; resuming would "
            "not continue the same training. Use the same settings or another --workdir"
        )
    for key in ("label_smoothing", "early_stopping_patience", "extensions", "holdout"):
        if meta.get(key) != expected.get(key):
            raise CheckpointError(
                f"work directory {workdir} was trained with {key}={meta.get(key)!r}, this run asks for "
                f"{expected[key]!r}; use the same settings or another --workdir"
            )
    try:
        schedule.check_position(meta.get("data_position", {}))
    except ValueError as e:
        raise CheckpointError(f"work directory {workdir}: {e}") from e


def train_and_evaluate(config: TrainConfig, workdir: str, *, progress: bool = True,
                       stop_after: int | None = None, initial_params=None, on_eval=None) -> dict:
    """Trains ``config.model`` on ``config.data``, checkpointing and resuming in ``workdir``.

    The whole configuration is checked before anything in ``workdir`` is
    created or changed. Only one run at a time may use ``workdir``
    (``WorkdirBusyError`` otherwise). Called from the main thread, the first
    SIGTERM/SIGINT ends the run after the current step with a checkpoint and
    raises :class:`Preempted`; one that comes before the first step (during the
    compiles or the restore) raises it at the next check, with nothing written.
    A second one kills the process.

    Args:
      config: the run's settings.
      workdir: holds ``checkpoints/``, ``metrics.jsonl``, ``tensorboard/`` and ``curves.png``.
      progress: show a tqdm progress bar on stderr.
      stop_after: end this call (with a checkpoint) once the step count reaches
        this, as if interrupted; a later call continues toward ``config.steps``
        exactly as if it had never stopped.
      initial_params: parameters to start from instead of a fresh initialisation
        (e.g. a pre-trained checkpoint's); same tree and shapes as the model's.
        Ignored when resuming, since the checkpoint holds the trained ones.
      on_eval: ``on_eval(step, metrics)``, called after each periodic evaluation before the last
        step (the last one is the result), once its checkpoint is saved, with the evaluation metrics
        (``{"test_accuracy": ..., "test_loss": ...}``; ``val_*`` with ``config.holdout``). An exception
        it raises ends the run there, the checkpoint kept (hyperparameter search prunes a trial so;
        rerunning the same config resumes it).

    Returns:
      a summary dict: the task's test metrics as ``test_<name>`` (``test_loss``, ``test_accuracy``;
      ``test_perplexity`` for causal LM; ``val_<name>`` with ``config.holdout``), ``steps`` (total now in the
      checkpoint), ``new_steps`` (run by this call), ``train_samples_per_s``
      (after compilation), and the output paths.

    Raises:
      ValueError (bad configuration), WorkdirError / WorkdirBusyError, CheckpointError
      (unusable checkpoints, a failed save), NonFiniteError, Preempted.
    """
    with contextlib.ExitStack() as resources:
        return _train_and_evaluate(config, workdir, progress, stop_after, initial_params, on_eval, resources)


def _train_and_evaluate(config: TrainConfig, workdir: str, progress: bool, stop_after: int | None,
                        initial_params, on_eval, resources: contextlib.ExitStack) -> dict:
    workdir = os.path.abspath(workdir)
    # first, so that a signal during the compiles and the restore below stops the run at the next check
    # (one the CLI caught during its imports is taken over); exited last, after the checkpointer's threads
    guard = resources.enter_context(PreemptionGuard())

    def stop_if_signalled(step: int = 0) -> None:  # before the first step there is nothing to save
        if guard.requested:
            raise Preempted(guard.signal_name, step, workdir, saved=False)

    stop_if_signalled()
    key = load_key(config.encrypt_key_file) if config.encrypt_key_file is not None else None  # a bad file: at once
    overrides = dict(config.model_overrides)
    if config.dtype != "float32":
        overrides.setdefault("dtype", config.dtype)
    model = registry.create_model(config.model, **overrides)
    task = task_for(model)
    dataset = load_dataset(config.data, model.config, seed=config.seed)
    split = "test"  # the evaluated split's name in metrics and checkpoints
    if config.holdout:
        dataset, split = dataset.hold_out(config.holdout), "val"
    stop_if_signalled()
    schedule = BatchSchedule(dataset.num_train, config.batch_size, config.seed)
    augment = resolve_augment(config.augment, model.config.layout, config.data)
    total_steps = config.steps if config.steps is not None else math.ceil(config.epochs * schedule.steps_per_epoch)

    # The optimizer's horizon (cosine decay) is part of what must match on resume; a
    # constant schedule does not depend on it, so a larger --steps can continue training.
    horizon = total_steps if config.optimizer.schedule == "cosine" else None
    tx = make_optimizer(config.optimizer, total_steps)
    step_fn = functools.partial(train_step, label_smoothing=config.label_smoothing)
    for ext in config.extensions:
        tx = ext.wrap_optimizer(tx, total_steps)
        step_fn = ext.train_step(step_fn, label_smoothing=config.label_smoothing)
    # on-device augmentation (crop / flip / mixup ...), if the spec has any; host-side shifts happen in train_batch
    transform = make_batch_transform(parse_augment(augment), getattr(model.config, "num_classes", 0))
    if transform is not None:
        step_fn = with_batch_transform(step_fn, transform)
    lr_at = make_schedule(config.optimizer, total_steps)
    strategy = make_run_strategy(config.parallel, model, tx, config.seed, config.batch_size,
                                 step_fn=with_finite_flag(step_fn, skip_nonfinite=config.on_nonfinite != "stop"))
    if initial_params is None:
        state = strategy.create_state()
    else:  # the given parameters are whole already
        state = strategy.place(with_initial_params(create_train_state(model, tx, config.seed), initial_params))
    stop_if_signalled()
    primary = jax.process_index() == 0  # one process writes logs; every process writes its checkpoint shards
    if primary and format_replicated(strategy):
        print(format_replicated(strategy), file=sys.stderr)

    expected_meta = {
        "format_version": FORMAT_VERSION,
        "model": config.model,
        "model_config": registry.config_to_dict(model.config),
        "task": task.name,
        "best_metric": f"{split}_{task.best_metric}",
        "data": config.data,
        "augment": augment,
        "optimizer": {**dataclasses.asdict(config.optimizer), "horizon": horizon},
        "label_smoothing": config.label_smoothing,
        "early_stopping_patience": config.early_stopping_patience,
        "extensions": [ext.to_dict() for ext in config.extensions],
        **({"holdout": config.holdout} if config.holdout else {}),  # absent when off, as in older checkpoints
    }
    # everything above wrote nothing; process 0 holds the lock for all processes of a multi-host run
    lock = resources.enter_context(WorkdirLock(workdir)) if primary else None
    best_metric = f"{split}_{task.best_metric}"
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.keep_checkpoints,
                        best_metric=best_metric, best_mode=task.best_mode, async_save=config.async_checkpointing,
                        key=key)
    resources.callback(ckpt.close)  # also on errors: orbax's threads must not outlive the run
    start_step, previous, latest = 0, {}, None
    early = {"best": None, "since_best": 0, "stopped_at": None}  # early stopping's progress (checkpointed)
    found = restore_newest_usable(ckpt, strategy.checkpoint_items(state),
                                  lambda meta: _check_resumable(meta, expected_meta, schedule, workdir))
    if found is not None:
        latest, items, meta = found
        state = strategy.with_checkpoint_items(state, items)
        start_step, previous = ckpt_step(state), meta.get("summary", {})
        early = meta.get("early_stopping", early)
    stop_if_signalled(start_step)
    if lock is not None:
        lock.claim()
        # saves a kill cut short; only now: a refused run must leave them, and none of ours is under way
        removed = ckpt.remove_partial_saves()
        if removed:
            print(f"zoo: removed {len(removed)} unfinished checkpoint save(s) left by an interrupted run: "
                  f"{', '.join(removed)}", file=sys.stderr)
    nonfinite = NonFiniteMonitor(config.on_nonfinite)

    logger = MetricsLogger(workdir, resume_step=start_step, enabled=primary)
    train_fn, eval_fn = strategy.train_step, strategy.eval_step
    rows = strategy.local_rows(config.batch_size)  # this process loads only its rows of each batch
    end_step = total_steps if stop_after is None else max(start_step, min(total_steps, stop_after))
    if early["stopped_at"] is not None:
        end_step = start_step
    num_new = end_step - start_step

    def checkpoint(step, state, test):
        summary = {"train_loss": last_train.get("train_loss")}
        if test is not None:  # a save on preemption skips the evaluation
            summary.update({f"{split}_{k}": v for k, v in test.items()})
        meta = {**expected_meta, "data_position": schedule.position(step), "train_config": config.to_dict(),
                "summary": {**previous, **summary, **run_stats()}, "early_stopping": early}
        ckpt.save(step, strategy.checkpoint_items(state), meta,
                  metrics=None if test is None else {best_metric: test[task.best_metric]})

    bar = None
    if progress and num_new and primary:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=start_step, desc=f"{config.model} on {config.data}", unit="step",
                   file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    timing = {"seconds": 0.0, "samples": 0}

    def run_stats():
        if timing["samples"] and timing["seconds"] > 0:
            return {"train_samples_per_s": timing["samples"] / timing["seconds"]}
        return {}

    window: list[dict] = []
    last_train: dict = {}
    step, stop = start_step, False
    try:
        t_mark = None
        untimed = 1  # the first step of this run (it compiles) is in the first window but not timed
        for step in range(start_step, end_step):
            state, metrics = train_fn(state, train_batch(dataset, schedule, step, augment, rows=rows))
            window.append(metrics)
            done = step + 1
            if t_mark is None:  # the first step of this run compiles: time from its end
                jax.block_until_ready(metrics)
                t_mark = time.perf_counter()
            stop = guard.requested and done < end_step  # at the last step, just finish
            is_log = done % config.log_every == 0 or done == end_step or stop
            is_ckpt = done % config.checkpoint_every == 0 or done == end_step or stop
            if is_log or is_ckpt:
                window_host = jax.device_get(window)
                intact = f"The newest checkpoint ({ckpt.latest_step()}) is left as it was. "
                window_host = nonfinite.check(window_host, done - len(window) + 1, intact) or window_host
                now = time.perf_counter()
                timed_steps, untimed = len(window) - untimed, 0
                timing["seconds"] += now - t_mark
                timing["samples"] += timed_steps * config.batch_size
                last_train = {("grad_norm" if k == "grad_norm" else f"train_{k}"):
                              float(np.mean([m[k] for m in window_host]))
                              for k in window_host[0] if k not in _NOT_LOGGED}
                last_train["learning_rate"] = float(lr_at(step))
                window = []
                row = {**last_train, **run_stats()}
                if nonfinite.skipped:
                    row["skipped_nonfinite_steps"] = nonfinite.skipped
                if is_ckpt and stop:
                    checkpoint(done, state, None)
                elif is_ckpt:
                    test = evaluate(eval_fn, state, dataset.test, config.eval_batch_size, task)
                    test.update(evaluate_decoded(model, state, dataset, config.eval_batch_size, task, strategy))
                    row.update({f"{split}_{k}": v for k, v in test.items()})
                    if config.early_stopping_patience:
                        if task.better(test[task.best_metric], early["best"]):
                            early = {**early, "best": test[task.best_metric], "since_best": 0}
                        else:
                            early = {**early, "since_best": early["since_best"] + 1}
                        if early["since_best"] >= config.early_stopping_patience:
                            early["stopped_at"] = done
                    checkpoint(done, state, test)
                logger.write(done, row)
                if on_eval is not None and is_ckpt and not stop and done < total_steps:  # the last: the result
                    on_eval(done, {f"{split}_{k}": v for k, v in test.items()})
                if bar is not None:
                    bar.set_postfix(loss=f"{row['train_loss']:.4f}",
                                    samples_s=f"{row.get('train_samples_per_s', float('nan')):.0f}",
                                    **({best_metric: f"{row[best_metric]:.4f}"}
                                       if is_ckpt and best_metric in row else {}))
                t_mark = time.perf_counter()
            if bar is not None:
                bar.update(1)
            if stop or early["stopped_at"] is not None:
                break
    finally:
        if bar is not None:
            bar.close()
        ckpt.wait()
        logger.close()
    if stop:
        ckpt.close()
        raise Preempted(guard.signal_name, ckpt_step(state), workdir)

    final_step = int(ckpt_step(state))
    test = evaluate(eval_fn, state, dataset.test, config.eval_batch_size, task)
    test.update(evaluate_decoded(model, state, dataset, config.eval_batch_size, task, strategy))
    if final_step > total_steps:
        print(f"note: the checkpoint in {workdir} is at step {final_step}, past the requested {total_steps}; "
              "nothing was trained", file=sys.stderr)
    kept_checkpoints = ckpt.all_steps()
    ckpt.close()
    plot_path = os.path.join(workdir, "curves.png")
    if primary:
        plot_metrics(logger.path, plot_path, title=f"{config.model} on {config.data}")
    stats = run_stats() or {"train_samples_per_s": previous.get("train_samples_per_s")}
    reports = {}
    for ext in config.extensions:
        reports.update(ext.report(state, steps=final_step, num_examples=dataset.num_train,
                                  batch_size=config.batch_size))
    return {
        "model": config.model,
        "task": task.name,
        "data": config.data,
        "steps": final_step,
        "new_steps": final_step - start_step,
        "resumed_from": start_step if latest is not None else None,
        **{f"{split}_{k}": v for k, v in test.items()},
        "train_loss": last_train.get("train_loss", previous.get("train_loss")),
        "train_samples_per_s": stats.get("train_samples_per_s"),
        "params": registry.param_count(model),
        "checkpoints": kept_checkpoints,
        "workdir": workdir,
        "checkpoint_dir": os.path.join(workdir, "checkpoints"),
        "metrics": logger.path,
        "tensorboard": logger.tensorboard_dir,
        "plot": plot_path,
        "early_stopped_at": early["stopped_at"],
        **reports,
    }


def load_run(workdir: str, step: int | None = None, parallel: ParallelConfig | None = None,
             key_file: str | None = None):
    """Loads a trained run for inference or inspection.

    Args:
      workdir: a directory written by :func:`train_and_evaluate` (or ``zoo train``).
      step: which checkpoint (default: the newest).
      parallel: restore straight into this strategy's layout (default: one
        device), whatever mesh the checkpoint was written from.
      key_file: the key file of an encrypted run (``TrainConfig.encrypt_key_file``).

    Returns:
      ``(model, state, meta)``: the rebuilt model, its restored ``TrainState``
      and the checkpoint's metadata.
    """
    directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    if not os.path.isdir(directory):  # checked first: a Checkpointer would create the directory
        reason = (not_a_directory(os.path.abspath(workdir))
                  or (f"{workdir} does not exist" if not os.path.lexists(workdir) else None))
        raise CheckpointError(f"no checkpoint in {workdir}" + (f": {reason}" if reason else ""))
    ckpt = Checkpointer(directory, async_save=False, key=load_key(key_file) if key_file is not None else None)
    try:
        step = ckpt.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {workdir}")
        if step not in ckpt.all_steps():
            raise CheckpointError(f"no checkpoint at step {step} in {workdir}; available: {ckpt.all_steps()}")
        meta = ckpt.read_meta(step)
        model = registry.create_model(meta["model"], **meta["model_config"])
        optimizer = {k: v for k, v in meta["optimizer"].items() if k != "horizon"}
        total_steps = meta["optimizer"]["horizon"] or 1
        tx = make_optimizer(OptimizerConfig(**optimizer), total_steps)
        for ext in map(extension_from_dict, meta.get("extensions", [])):
            tx = ext.wrap_optimizer(tx, total_steps)
        train_config = meta["train_config"]
        strategy = make_run_strategy(parallel or ParallelConfig(), model, tx, train_config["seed"],
                                     train_config["batch_size"])
        state = strategy.create_state()
        state = strategy.with_checkpoint_items(state, ckpt.restore(step, strategy.checkpoint_items(state)))
    finally:
        ckpt.close()
    return model, state, meta


def ckpt_step(state) -> int:
    """The step count of a train state (pmap keeps one copy per device)."""
    return int(jax.device_get(state.step).reshape(-1)[0])


__all__ = ["TrainConfig", "train_and_evaluate", "evaluate", "evaluate_decoded", "load_run", "plan_memory", "make_run_strategy"]
