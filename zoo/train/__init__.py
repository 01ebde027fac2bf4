"""Training library: state, steps, optimizers, checkpoints, the loop, metrics."""

from zoo.train.checkpoint import CheckpointError, CheckpointKeyError, Checkpointer
from zoo.train.extension import Extension, extension_from_dict, register_extension
from zoo.train.integrity import CheckpointWarning, NonFiniteError
from zoo.train.loop import TrainConfig, evaluate, load_run, make_run_strategy, plan_memory, train_and_evaluate
from zoo.train.metrics import MetricsLogger, plot_metrics, read_metrics
from zoo.train.optim import OPTIMIZERS, SCHEDULES, OptimizerConfig, make_optimizer, make_schedule
from zoo.train.preemption import Preempted, PreemptionGuard
from zoo.train.state import TrainState, create_train_state
from zoo.train.steps import accuracy, cross_entropy_loss, eval_step, train_step
from zoo.train.workdir import WorkdirBusyError, WorkdirError, WorkdirLock

__all__ = [
    "CheckpointError", "CheckpointKeyError", "Checkpointer", "Extension", "extension_from_dict", "register_extension", "TrainConfig",
    "evaluate", "load_run", "make_run_strategy", "plan_memory", "train_and_evaluate", "MetricsLogger",
    "plot_metrics", "read_metrics", "OPTIMIZERS", "SCHEDULES", "OptimizerConfig", "make_optimizer",
    "make_schedule", "TrainState", "create_train_state", "accuracy", "cross_entropy_loss", "eval_step", "train_step",
    "CheckpointWarning", "NonFiniteError", "Preempted", "PreemptionGuard", "WorkdirBusyError", "WorkdirError",
    "WorkdirLock",
]
