"""In-memory datasets and a deterministic, resumable batch order.

The batch served at global step ``s`` is a pure function of ``(seed, s)``:
epoch ``e = s // steps_per_epoch`` shuffles the training set with
``np.random.default_rng([seed, e])`` and step ``s`` takes slice
``s % steps_per_epoch`` of it (the ragged tail of each epoch is dropped so
every batch has the same shape).  The data position saved in a checkpoint is
therefore just ``(seed, batch_size, step)``, and resuming at step ``s``
replays exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from zoo.data.augment import augment_batch


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """A supervised dataset held in memory.

    Attributes:
      name: dataset name (``digits``, ``synthetic``).
      x_train / y_train: ``[N, ...]`` inputs and int32 labels.
      x_test / y_test: held-out split.
      num_classes: label count.
      layout: the model layout the inputs are shaped for.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    layout: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@dataclasses.dataclass(frozen=True)
class BatchSchedule:
    """Which training examples form the batch at each global step."""

    num_examples: int
    batch_size: int
    seed: int

    def __post_init__(self):
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.batch_size > self.num_examples:
            raise ValueError(
                f"batch_size {self.batch_size} is larger than the training set ({self.num_examples} examples)"
            )

    @property
    def steps_per_epoch(self) -> int:
        return self.num_examples // self.batch_size

    def indices(self, step: int) -> np.ndarray:
        """Example indices ``[batch_size]`` of global step ``step`` (0-based)."""
        epoch, offset = divmod(int(step), self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
        return order[offset * self.batch_size:(offset + 1) * self.batch_size]

    def position(self, step: int) -> dict:
        """JSON-friendly data position after ``step`` batches (saved in checkpoints)."""
        epoch, offset = divmod(int(step), self.steps_per_epoch)
        return {"step": int(step), "epoch": epoch, "batch_in_epoch": offset, "seed": self.seed,
                "batch_size": self.batch_size, "num_examples": self.num_examples}

    def check_position(self, position: dict) -> None:
        """ValueError if a saved position came from a different data order."""
        for key in ("seed", "batch_size", "num_examples"):
            saved, now = position.get(key), getattr(self, key)
            if saved != now:
                raise ValueError(
                    f"the checkpoint's data order used {key}={saved}, this run uses {key}={now}; resuming would "
                    f"not replay the same batches. Use {key}={saved} or a new work directory."
                )


def train_batch(dataset: ArrayDataset, schedule: BatchSchedule, step: int, augment: str = "none") -> dict:
    """The training batch ``{"x": [B, ...], "y": [B]}`` of global step ``step``, augmented."""
    idx = schedule.indices(step)
    x = augment_batch(dataset.x_train[idx], augment, seed=schedule.seed, step=step)
    return {"x": x, "y": dataset.y_train[idx]}


def eval_batches(x: np.ndarray, y: np.ndarray, batch_size: int):
    """Yields ``{"x", "y", "mask"}`` covering every example once; the last batch is padded and masked."""
    n = x.shape[0]
    for start in range(0, n, batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        real = xb.shape[0]
        mask = np.ones(batch_size, np.float32)
        if real < batch_size:
            pad = batch_size - real
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros((pad, *yb.shape[1:]), yb.dtype)])
            mask[real:] = 0
        yield {"x": xb, "y": yb, "mask": mask}
