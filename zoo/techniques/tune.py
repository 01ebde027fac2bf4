"""Hyperparameter search with optuna: TPE sampling, median pruning, a study that resumes.

``tune(base, space, trials, workdir)`` runs ``trials`` training runs of ``base`` (a
:class:`zoo.train.TrainConfig`) with the fields named in ``space`` drawn by optuna's TPE sampler.

* **Held-out tuning.** Every trial trains with ``TrainConfig.holdout``: a fixed part of the
  training set is evaluated instead of the test set (``val_*`` metrics), so nothing is tuned
  on the test set. The best configuration is then trained once on the whole training set
  (``WORKDIR/best``) and only that run is evaluated on the test set.
* **The task's metric.** Trials are scored by the model's task's best-checkpoint metric
  (``val_accuracy``, ``val_perplexity``, ...) at the end of the run, maximised or minimised
  as the task's ``best_mode`` says.
* **Pruning.** Each periodic evaluation is reported to optuna through the loop's ``on_eval``;
  the median pruner stops a trial whose metric is worse than the median of earlier trials at
  the same step (its checkpoint stays).
* **Resume.** The study lives in ``WORKDIR/study.db`` (SQLite). Each trial is an ordinary run in
  ``WORKDIR/trials/<hash of its parameters>``. Rerunning the same search after an interruption
  (a kill, SIGTERM, Ctrl-C) marks the interrupted trial failed and queues its parameters again:
  the retry lands in the same work directory and resumes from its newest checkpoint by the
  loop's exact resume. The search continues until ``trials`` trials have finished (completed,
  pruned or diverged). The sampler's later draws after a restart need not equal those of an
  uninterrupted search (TPE restarts its random stream from ``seed``).

The search space is a TOML file (read with ``tomllib``, never executed), one table per field::

    learning_rate = {type = "float", low = 1e-4, high = 1e-2, log = true}
    schedule = {type = "categorical", choices = ["constant", "cosine"]}
    augment = {type = "categorical", choices = ["none", "shift:1"]}
    [model]
    dropout_rate = {type = "float", low = 0.0, high = 0.3}

Keys are ``zoo train`` settings (``TUNABLE``); ``[model]`` holds model config fields
(``--set``). The best configuration comes back as a ready ``zoo train`` command line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shlex
import sys
import time
import typing

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser as a package
    import tomli as tomllib

from zoo import registry
from zoo.tasks import task_for
from zoo.train import NonFiniteError, OptimizerConfig, TrainConfig, WorkdirLock, read_metrics, train_and_evaluate

# settings a space may tune -> (the config holding them, the `zoo train` flag that sets them)
TUNABLE = {
    "learning_rate": ("optimizer", "--lr"),
    "optimizer": ("optimizer", "--optimizer"),  # OptimizerConfig.name
    "schedule": ("optimizer", "--schedule"),
    "warmup_steps": ("optimizer", "--warmup-steps"),
    "momentum": ("optimizer", "--momentum"),
    "weight_decay": ("optimizer", "--weight-decay"),
    "clip_norm": ("optimizer", "--clip-norm"),
    "augment": ("train", "--augment"),
    "batch_size": ("train", "--batch-size"),
    "steps": ("train", "--steps"),
    "epochs": ("train", "--epochs"),
    "label_smoothing": ("train", "--label-smoothing"),
    "seed": ("train", "--seed"),
}
# the other `zoo train` flags a base configuration may carry into the printed command
_TRAIN_FLAGS = {"dtype": "--dtype", "checkpoint_every": "--checkpoint-every", "keep_checkpoints": "--keep",
                "log_every": "--log-every", "early_stopping_patience": "--early-stopping",
                "on_nonfinite": "--on-nonfinite", "encrypt_key_file": "--encrypt-key-file"}
_KINDS = ("float", "int", "categorical")
_ALLOWED_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
                 "categorical": {"type", "choices"}}


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched setting: ``name`` (``learning_rate``, ``model.dropout_rate``) and its distribution."""

    name: str
    kind: str  # "float", "int" or "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    @property
    def encoded(self) -> bool:
        """Whether optuna stores the choices as JSON text: it takes only None, bools, numbers and strings."""
        return any(not isinstance(c, (type(None), bool, int, float, str)) for c in self.choices)

    def suggest(self, trial):
        if self.kind == "categorical":
            if self.encoded:
                return self.decode(trial.suggest_categorical(self.name, [json.dumps(c) for c in self.choices]))
            return trial.suggest_categorical(self.name, list(self.choices))
        suggest = trial.suggest_float if self.kind == "float" else trial.suggest_int
        kwargs = {"log": self.log} if self.step is None else {"step": self.step, "log": self.log}
        return suggest(self.name, self.low, self.high, **kwargs)

    def decode(self, stored):
        """The value of this setting that optuna stored as ``stored``."""
        return json.loads(stored) if self.encoded else stored

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, **({"choices": list(self.choices)} if self.kind == "categorical"
                                                         else {"low": self.low, "high": self.high, "log": self.log,
                                                               "step": self.step})}


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The searched settings, checked against the base configuration they change."""

    params: tuple[Param, ...]

    def suggest(self, trial) -> dict:
        return {p.name: p.suggest(trial) for p in self.params}

    def decode(self, stored: dict) -> dict:
        """The settings of a trial from optuna's ``trial.params``."""
        return {p.name: p.decode(stored[p.name]) for p in self.params if p.name in stored}

    def to_dict(self) -> list:
        return [p.to_dict() for p in self.params]


def apply_params(base: TrainConfig, params: dict) -> TrainConfig:
    """``base`` with the searched settings ``params`` (``{"learning_rate": 3e-3, "model.dropout_rate": 0.1}``)."""
    optimizer, train, model = {}, {}, dict(base.model_overrides)
    for name, value in params.items():
        if name.startswith("model."):
            model[name[len("model."):]] = value
        elif TUNABLE[name][0] == "optimizer":
            optimizer["name" if name == "optimizer" else name] = value
        else:
            train[name] = value
    if "steps" in train:
        train.setdefault("epochs", None)
    if "epochs" in train:
        train.setdefault("steps", None)
    return dataclasses.replace(base, optimizer=dataclasses.replace(base.optimizer, **optimizer),
                               model_overrides=model, **train)


def load_space(path: str, base: TrainConfig) -> SearchSpace:
    """Reads and checks a TOML search space (see the module docstring) for runs of ``base``.

    Raises:
      ValueError: one line naming the file and the key: an unknown setting, a wrong type, an
        empty range (``low >= high``), a choice the setting refuses, a malformed file.
    """
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"search space {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"search space {path} is not valid TOML: {e}") from None
    return parse_space(table, base, source=path)


def parse_space(table: dict, base: TrainConfig, *, source: str = "search space") -> SearchSpace:
    """A :class:`SearchSpace` from a parsed TOML table (``load_space`` without the file)."""
    entries = [(k, v) for k, v in table.items() if k != "model"]
    model_table = table.get("model", {})
    if not isinstance(model_table, dict):
        raise ValueError(f"{source}: [model] must be a table of model config fields, got {model_table!r}")
    model_config = registry.get_config(base.model, **base.model_overrides)
    model_fields = {f.name for f in dataclasses.fields(model_config)}
    params = []
    for key, spec in entries:
        if key not in TUNABLE:
            raise ValueError(f"{source}: {key!r} is not a setting zoo tune can search; searchable: "
                             f"{', '.join(TUNABLE)}, or model config fields under [model]")
        params.append(_parse_param(key, spec, source))
    for key, spec in model_table.items():
        if key not in model_fields:
            raise ValueError(f"{source}: [model] {key!r} is not a field of {base.model}'s config "
                             f"({type(model_config).__name__}: {', '.join(sorted(model_fields))})")
        params.append(_parse_param(f"model.{key}", spec, source))
    if not params:
        raise ValueError(f"{source}: no settings to search (expected e.g. "
                         "learning_rate = {type = \"float\", low = 1e-4, high = 1e-2, log = true})")
    space = SearchSpace(tuple(params))
    for param in space.params:  # each bound and each choice must make a configuration the run accepts
        values = param.choices if param.kind == "categorical" else (param.low, param.high)
        for value in values:
            try:
                check_config(apply_params(base, {param.name: value}))
            except (ValueError, TypeError) as e:
                raise ValueError(f"{source}: {param.name}: {value!r} is refused: {e}") from None
    return space


def _parse_param(name: str, spec, source: str) -> Param:
    where = f"{source}: {name}"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a table such as {{type = \"float\", low = 1e-4, high = 1e-2}} or "
                         f"{{type = \"categorical\", choices = [...]}}, got {spec!r}")
    kind = spec.get("type")
    if kind not in _KINDS:
        raise ValueError(f"{where}: type must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
    unknown = set(spec) - _ALLOWED_KEYS[kind]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for type {kind!r} "
                         f"(allowed: {', '.join(sorted(_ALLOWED_KEYS[kind]))})")
    expected = _field_types(name)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: choices must be a non-empty list, got {choices!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"{where}: choices repeat a value: {choices!r}")
        for choice in choices:
            if not _fits(choice, expected):
                raise ValueError(f"{where}: choice {choice!r} is a {type(choice).__name__}; the setting takes "
                                 f"{_type_names(expected)}")
        return Param(name, kind, choices=tuple(choices))
    if expected is not None and (int if kind == "int" else float) not in expected:
        raise ValueError(f"{where}: type {kind!r} does not fit the setting, which takes {_type_names(expected)}")
    number = int if kind == "int" else (int, float)
    for bound in ("low", "high"):
        value = spec.get(bound)
        if isinstance(value, bool) or not isinstance(value, number):
            raise ValueError(f"{where}: {bound} must be {'an integer' if kind == 'int' else 'a number'}, "
                             f"got {value!r}")
    low, high = spec["low"], spec["high"]
    if not low < high:
        raise ValueError(f"{where}: low must be < high, got low={low!r}, high={high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"{where}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ValueError(f"{where}: a log range needs low > 0, got low={low!r}")
    step = spec.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, number) or step <= 0:
            raise ValueError(f"{where}: step must be a positive {'integer' if kind == 'int' else 'number'}, "
                             f"got {step!r}")
        if log:
            raise ValueError(f"{where}: give log or step, not both")
    if kind == "float":
        low, high = float(low), float(high)
    return Param(name, kind, low=low, high=high, log=log, step=step)


def _field_types(name: str) -> tuple | None:
    """The Python types a setting accepts (None: a model field, checked by the model's config)."""
    if name.startswith("model."):
        return None
    owner, _ = TUNABLE[name]
    cls, field = (OptimizerConfig, "name" if name == "optimizer" else name) if owner == "optimizer" else (
        TrainConfig, name)
    hint = typing.get_type_hints(cls)[field]
    return tuple(t for t in typing.get_args(hint) or (hint,) if t is not type(None))


def _fits(value, expected: tuple | None) -> bool:
    if expected is None:
        return True
    if isinstance(value, bool):
        return bool in expected
    return isinstance(value, expected) or (isinstance(value, int) and float in expected)


def _type_names(types: tuple) -> str:
    return " or ".join(t.__name__ for t in types)


def check_config(config: TrainConfig) -> None:
    """ValueError if ``config`` could not start: its model config and augmentation are checked too."""
    from zoo.data import resolve_augment
    from zoo.data.images import parse_augment

    model_config = registry.get_config(config.model, **config.model_overrides)
    parse_augment(resolve_augment(config.augment, model_config.layout, config.data))


def search_target(base: TrainConfig) -> tuple[str, str]:
    """What trials of ``base`` are scored by: ``(metric, direction)``, the task's best-checkpoint metric on the
    held-out split and ``"maximize"`` or ``"minimize"`` (``("val_accuracy", "maximize")`` for classification)."""
    task = task_for(registry.get_config(base.model, **base.model_overrides))
    return f"val_{task.best_metric}", "maximize" if task.best_mode == "max" else "minimize"


def trial_dir(workdir: str, params: dict) -> str:
    """The work directory of the trial with ``params``: the same parameters, the same directory."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return os.path.join(workdir, "trials", digest)


def train_command(config: TrainConfig, workdir: str) -> str:
    """The ``zoo train`` command line that trains ``config`` in ``workdir``.

    Raises ValueError for a setting ``zoo train`` has no flag for (extensions, a parallel strategy).
    """
    default_train = TrainConfig(model=config.model, steps=1)
    default_opt = OptimizerConfig()
    if config.extensions or config.parallel != default_train.parallel or config.holdout:
        raise ValueError("the configuration has extensions, a parallel strategy or a holdout: zoo tune prints "
                         "commands for plain runs only")
    args = ["zoo", "train", config.model, "--data", config.data]
    args += ["--steps", str(config.steps)] if config.steps is not None else ["--epochs", repr(config.epochs)]
    flags = {name: flag for name, (owner, flag) in TUNABLE.items() if owner == "train"} | _TRAIN_FLAGS
    for name, flag in flags.items():
        if name in ("steps", "epochs"):
            continue
        value = getattr(config, name)
        if value != getattr(default_train, name):
            args += [flag, value if isinstance(value, str) else repr(value)]
    for name, (owner, flag) in TUNABLE.items():
        if owner != "optimizer":
            continue
        field = "name" if name == "optimizer" else name
        value = getattr(config.optimizer, field)
        if value != getattr(default_opt, field):
            args += [flag, value if isinstance(value, str) else repr(value)]
    others = [f.name for f in dataclasses.fields(OptimizerConfig) if f.name not in
              {"name" if n == "optimizer" else n for n, (o, _) in TUNABLE.items() if o == "optimizer"}
              and getattr(config.optimizer, f.name) != getattr(default_opt, f.name)]
    if others:
        raise ValueError(f"zoo train has no flag for the optimizer setting(s) {', '.join(others)}")
    for field, value in config.model_overrides.items():
        args += ["--set", f"{field}={json.dumps(value)}"]
    args += ["--workdir", workdir]
    return shlex.join(args)


def tune(base: TrainConfig, space: SearchSpace, trials: int, workdir: str, *, holdout: float = 0.1,
         seed: int = 0, random_trials: int = 4, final: bool = True, progress=None) -> dict:
    """Searches ``space`` around ``base`` for ``trials`` trials; resumable in ``workdir``.

    Args:
      base: the settings every trial shares (``steps``, ``batch_size``, ...); ``space`` changes the rest.
      space: see :func:`load_space`.
      trials: finished trials (completed, pruned or diverged) the search ends with, counting those
        of earlier calls on the same ``workdir``.
      workdir: holds ``study.db``, ``trials/``, ``best/``, ``summary.json``, ``history.png`` and
        ``importance.png``.
      holdout: the fraction of the training set the trials are scored on (``TrainConfig.holdout``).
      seed: the TPE sampler's seed.
      random_trials: trials drawn at random before TPE models the results; no trial is pruned
        before this many have completed.
      final: train the best configuration on the whole training set in ``workdir/best`` and
        evaluate it on the test set.
      progress: ``progress(line)`` for one line per finished trial (default: print to stderr).

    Returns:
      the summary written to ``workdir/summary.json``: ``metric``, ``direction``, every trial's
      state, parameters, value and work directory, and ``best`` (parameters, value, the
      ``zoo train`` command, and with ``final`` the test metrics of ``workdir/best``).
    """
    import optuna

    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout!r}")
    if base.holdout:
        raise ValueError("the base configuration has a holdout already; zoo tune sets it (holdout=)")
    show = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    metric, direction = search_target(base)
    workdir = os.path.abspath(workdir)
    search = {"base": base.to_dict(), "space": space.to_dict(), "holdout": holdout, "metric": metric}
    # one line per trial comes from `show`; optuna's own warnings would repeat failures with tracebacks
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    with WorkdirLock(workdir) as lock:  # one search at a time; the trials lock their own directories
        lock.claim()
        study = optuna.create_study(
            storage=f"sqlite:///{os.path.join(workdir, 'study.db')}", study_name="zoo", direction=direction,
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=random_trials),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=random_trials), load_if_exists=True)
        saved = study.user_attrs.get("search")
        if saved is None:
            study.set_user_attr("search", search)
        elif saved != json.loads(json.dumps(search)):
            changed = [k for k in search if json.loads(json.dumps(search[k])) != saved.get(k)]
            raise ValueError(f"{workdir} holds a search with other settings ({', '.join(changed)} differ); "
                             "resume it with the same command, or use another --workdir")
        requeued = _requeue_interrupted(study)
        if requeued:
            show(f"resuming: trial(s) {', '.join(map(str, requeued))} were interrupted; their parameters are "
                 "queued again and resume from their checkpoints")
        remaining = trials - sum(_counts(t) for t in study.trials)

        def objective(trial):
            params = space.suggest(trial)
            config = dataclasses.replace(apply_params(base, params), holdout=holdout)
            run_dir = trial_dir(workdir, params)
            trial.set_user_attr("workdir", run_dir)
            reported = set()

            def report(step, value):
                if step not in reported:
                    reported.add(step)
                    trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"{metric} {value:.4f} at step {step}")

            # a resumed run reports only its new evaluations; the earlier ones come from its metrics log
            for row in read_metrics(os.path.join(run_dir, "metrics.jsonl")) if os.path.exists(
                    os.path.join(run_dir, "metrics.jsonl")) else ():
                if isinstance(row.get(metric), (int, float)):
                    report(row["step"], row[metric])
            try:
                result = train_and_evaluate(config, run_dir, progress=False,
                                            on_eval=lambda step, metrics: report(step, metrics[metric]))
            except NonFiniteError as e:  # a diverging setting is a finished, failed trial, not a crash
                trial.set_user_attr("diverged", str(e).splitlines()[0])
                return float("nan")
            return result[metric]

        def after(study, frozen):
            show(_trial_line(frozen, study, space, trials, metric))

        start = time.perf_counter()
        if remaining > 0:
            study.optimize(objective, n_trials=remaining, callbacks=[after], catch=())
        summary = _summary(study, base, space, metric, direction, workdir)
        summary["search_seconds_this_call"] = time.perf_counter() - start
        best = summary["best"]
        if best is not None and final:
            config = apply_params(base, best["params"])
            result = train_and_evaluate(config, os.path.join(workdir, "best"), progress=False)
            best["test"] = {k: v for k, v in result.items() if k.startswith("test_")}
        summary["figures"] = _figures(study, workdir, metric)
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    return summary


def _counts(trial) -> bool:
    """Whether a trial counts toward the budget: it completed, was pruned or diverged."""
    import optuna

    state = trial.state
    return state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) or (
        state == optuna.trial.TrialState.FAIL and "diverged" in trial.user_attrs)


def _requeue_interrupted(study) -> list[int]:
    """Marks trials a dead process left running as failed and queues every interrupted trial's parameters
    once more (the retry resumes in the same work directory); returns their numbers."""
    import optuna

    states = optuna.trial.TrialState
    retried = {t.user_attrs.get("retry_of") for t in study.trials}
    requeued = []
    for trial in study.trials:
        if trial.state == states.RUNNING:  # its process died: the lock on the search says none runs now
            study.tell(trial.number, state=states.FAIL)
        elif not (trial.state == states.FAIL and "diverged" not in trial.user_attrs):
            continue
        if trial.number in retried or not trial.params:
            continue
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        requeued.append(trial.number)
    return requeued


def _format_params(params: dict) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _trial_line(trial, study, space: SearchSpace, trials: int, metric: str) -> str:
    import optuna

    done = sum(_counts(t) for t in study.trials)
    state = trial.state
    if state == optuna.trial.TrialState.COMPLETE:
        outcome = f"{metric} {trial.value:.4f}"
    elif state == optuna.trial.TrialState.PRUNED:
        step = trial.last_step
        outcome = f"pruned at step {step} ({metric} {trial.intermediate_values[step]:.4f})"
    else:
        outcome = "diverged" if "diverged" in trial.user_attrs else "failed"
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else 0
    try:
        best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:
        best = "no completed trial yet"
    params = _format_params(space.decode(trial.params))
    return f"trial {trial.number} [{done}/{trials}] {params}: {outcome} in {seconds:.0f} s; {best}"


def _summary(study, base: TrainConfig, space: SearchSpace, metric: str, direction: str, workdir: str) -> dict:
    import optuna

    rows = []
    for t in study.trials:
        rows.append({"number": t.number, "state": t.state.name, "params": space.decode(t.params),
                     "value": t.value if t.value is not None and math.isfinite(t.value) else None,
                     "last_step": t.last_step, "workdir": t.user_attrs.get("workdir"),
                     **{k: t.user_attrs[k] for k in ("diverged", "retry_of") if k in t.user_attrs}})
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = None
    if complete:
        trial = study.best_trial
        params = space.decode(trial.params)
        command = train_command(apply_params(base, params), os.path.join(workdir, "best"))
        best = {"number": trial.number, "params": params, metric: trial.value,
                "workdir": trial.user_attrs.get("workdir"), "command": command}
    return {"metric": metric, "direction": direction, "trials": rows, "best": best}


def _figures(study, workdir: str, metric: str) -> dict:
    """The optimisation history and parameter importance PNGs (importance needs two completed trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    figures = {}
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return figures
    def save(name, ax):
        figures[name] = os.path.join(workdir, f"{name}.png")
        ax.figure.tight_layout()
        ax.figure.savefig(figures[name], dpi=100)
        plt.close(ax.figure)

    with _quiet_experimental():
        save("history", ovm.plot_optimization_history(study, target_name=metric))
        varied = {k for t in complete for k in t.params if len({repr(c.params.get(k)) for c in complete}) > 1}
        if len(complete) >= 2 and varied:  # PED-ANOVA (optuna's default evaluator): no extra package
            save("importance", ovm.plot_param_importances(study, target_name=metric))
    return figures


class _quiet_experimental:
    """Silences optuna's warnings on every plot call (its matplotlib plots are experimental)."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        import optuna

        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # few trials with near-equal values: PED-ANOVA says their importances come out equal, as the plot shows
        warnings.filterwarnings("ignore", message="Target and region quantiles select the same set")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


__all__ = ["TUNABLE", "Param", "SearchSpace", "apply_params", "check_config", "load_space", "parse_space",
           "search_target", "train_command", "trial_dir", "tune"]
