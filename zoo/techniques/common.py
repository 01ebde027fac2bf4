"""What the post-training techniques share: a trained run with its data and a jitted evaluation."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from zoo.data import ArrayDataset, load_dataset
from zoo.train.loop import evaluate, load_run
from zoo.train.state import TrainState
from zoo.train.steps import eval_step


@dataclasses.dataclass
class TrainedRun:
    """A run loaded by :func:`load_trained`.

    Attributes:
      model: the registry model; state: its restored train state; meta: checkpoint metadata;
      dataset: the run's dataset, shaped for the model; key_file: the key of an encrypted run.
    """

    model: Any
    state: TrainState
    meta: dict
    dataset: ArrayDataset
    eval_batch_size: int = 256
    key_file: str | None = None

    def __post_init__(self):
        self._eval = jax.jit(eval_step)

    def evaluate(self, params=None, apply_fn=None) -> dict:
        """Test metrics of the run's task (``loss``, ``accuracy``, ...) of ``params`` (default: the run's)
        under ``apply_fn`` (default: the model's)."""
        # apply_fn is a static field of the state: another one compiles another program
        state = self.state.replace(params=self.state.params if params is None else params,
                                   apply_fn=self.state.apply_fn if apply_fn is None else apply_fn)
        return evaluate(self._eval, state, self.dataset.test, self.eval_batch_size)

    def accuracy(self, params=None, apply_fn=None) -> float:
        return self.evaluate(params, apply_fn)["accuracy"]


def load_trained(workdir: str, *, step: int | None = None, eval_batch_size: int = 256,
                 key_file: str | None = None) -> TrainedRun:
    """Loads a run written by ``zoo train`` with the test split of its dataset (``key_file``: if encrypted)."""
    model, state, meta = load_run(workdir, step=step, key_file=key_file)
    dataset = load_dataset(meta["data"], model.config, seed=meta["train_config"]["seed"])
    return TrainedRun(model, state, meta, dataset, eval_batch_size, key_file)



def save_as_run(run: TrainedRun, params, workdir: str, note: dict) -> str:
    """Writes ``run`` with ``params`` replaced as a new run in ``workdir`` (``load_run`` reads it back).

    ``note`` (e.g. ``{"pruned": {...}}``) is added to the checkpoint's metadata.  The run of an
    encrypted one is encrypted with the same key.
    """
    import os

    from zoo.train.checkpoint import Checkpointer
    from zoo.train.encryption import load_key

    directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    key = load_key(run.key_file) if run.key_file is not None else None
    with Checkpointer(directory, best_metric=None, async_save=False, key=key) as ckpt:
        if ckpt.latest_step() is not None:
            raise ValueError(f"{workdir} already holds a run; write to a new directory")
        ckpt.save(int(run.state.step), run.state.replace(params=params).checkpoint_items(), {**run.meta, **note})
    return os.path.abspath(workdir)


__all__ = ["TrainedRun", "load_trained", "save_as_run"]
