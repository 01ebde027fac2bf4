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
from typing import Any

import numpy as np

from zoo.data.augment import augment_batch


_HOLDOUT_SEED = 20260421  # fixed: the held-out examples must not change with a run's seed


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """A dataset held in memory, as named arrays of its task's batch schema (``zoo.tasks``).

    Attributes:
      name: dataset name (``digits``, ``synthetic``, ...).
      train / test: ``{entry: [N, ...]}`` arrays with one leading example axis, e.g.
        ``{"inputs", "label"}`` for classification or ``{"tokens"}`` for causal LM.
      num_classes: label count (None for tasks without classes).
      layout: the model layout the inputs are shaped for.
      text: for text-generation data, what evaluation by decoding needs: an object with
        ``decode(ids) -> str`` (the tokenizer's) and ``test_targets`` (the reference texts, one
        per test example), e.g. ``zoo.data.seq2seq.TextPairs``; None otherwise.
    """

    name: str
    train: dict
    test: dict
    num_classes: int | None
    layout: str
    text: Any = None

    def __post_init__(self):
        for split in ("train", "test"):
            arrays = getattr(self, split)
            if not isinstance(arrays, dict) or not arrays:
                raise ValueError(f"dataset {self.name!r}: {split} must be a non-empty dict of arrays, got "
                                 f"{type(arrays).__name__}")
            sizes = {k: len(v) for k, v in arrays.items()}
            if len(set(sizes.values())) != 1:
                raise ValueError(f"dataset {self.name!r}: the {split} arrays hold different numbers of examples "
                                 f"{sizes}")

    @classmethod
    def labelled(cls, name: str, x_train, y_train, x_test, y_test, num_classes: int, layout: str) -> "ArrayDataset":
        """A classification dataset: ``{"inputs", "label"}`` splits."""
        return cls(name, {"inputs": x_train, "label": y_train}, {"inputs": x_test, "label": y_test}, num_classes,
                   layout)

    def hold_out(self, fraction: float) -> "ArrayDataset":
        """This dataset with ``fraction`` of its training examples as the evaluation split in place of the test set.

        The held-out examples are a fixed random choice (the same for every run seed), so runs that
        differ in their seed or hyperparameters are compared on the same examples; the test set is
        dropped, so whatever is tuned on the result never sees it.
        """
        if self.text is not None:
            raise ValueError(f"dataset {self.name!r} is evaluated by decoding against its test texts; holding out "
                             "part of its training set is not supported")
        n = self.num_train
        k = round(n * fraction)
        if not 0 < k < n:
            raise ValueError(f"holding out {fraction!r} of {self.name!r}'s {n} training examples leaves "
                             f"{k} to evaluate and {n - k} to train on; both must be at least 1")
        order = np.random.default_rng(_HOLDOUT_SEED).permutation(n)
        held, kept = np.sort(order[:k]), np.sort(order[k:])
        return dataclasses.replace(self, train={key: v[kept] for key, v in self.train.items()},
                                   test={key: v[held] for key, v in self.train.items()})

    @property
    def num_train(self) -> int:
        return len(next(iter(self.train.values())))

    @property
    def num_test(self) -> int:
        return len(next(iter(self.test.values())))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-example shape of the main input (``inputs``, else the first entry)."""
        arrays = self.train.get("inputs", next(iter(self.train.values())))
        return tuple(arrays.shape[1:])


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


# entries that host-side augmentation (shifts of images / row sequences) applies to
AUGMENTED_KEY = "inputs"


def train_batch(dataset: ArrayDataset, schedule: BatchSchedule, step: int, augment: str = "none",
                rows: np.ndarray | None = None) -> dict:
    """The training batch of global step ``step`` (every entry of ``dataset.train``), augmented.

    ``rows``: only these rows of the global batch (``[R]`` indices; a process of a
    multi-host run loads just its own), augmented exactly as in the whole batch.
    Host augmentation applies to the ``inputs`` entry.
    """
    idx = schedule.indices(step)
    if rows is not None:
        idx = idx[rows]
    batch = {k: v[idx] for k, v in dataset.train.items()}
    if augment != "none" and AUGMENTED_KEY in batch:
        batch[AUGMENTED_KEY] = augment_batch(batch[AUGMENTED_KEY], augment, seed=schedule.seed, step=step, rows=rows,
                                             batch_size=schedule.batch_size)
    return batch


def eval_batches(split: dict, batch_size: int):
    """Yields batches of ``split``'s entries plus ``"mask" [B]`` covering every example once.

    The last batch is padded with zero rows, which the mask marks 0.
    """
    n = len(next(iter(split.values())))
    for start in range(0, n, batch_size):
        batch = {k: v[start:start + batch_size] for k, v in split.items()}
        real = len(next(iter(batch.values())))
        mask = np.ones(batch_size, np.float32)
        if real < batch_size:
            pad = batch_size - real
            batch = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in batch.items()}
            mask[real:] = 0
        yield {**batch, "mask": mask}
