"""Run metrics: ``metrics.jsonl``, TensorBoard event files and a PNG of the curves."""

from __future__ import annotations

import json
import math
import os


class MetricsLogger:
    """Appends one JSON object per logged step and mirrors scalars to TensorBoard.

    On resume from ``resume_step`` the rows written after that step by a run
    that was interrupted are dropped, so the files describe exactly the
    training the checkpoint holds.

    Args:
      workdir: run directory; writes ``metrics.jsonl`` and ``tensorboard/``.
      resume_step: the step training restarts from (0 for a new run).
    """

    def __init__(self, workdir: str, *, resume_step: int = 0, tensorboard: bool = True):
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.tensorboard_dir = os.path.join(workdir, "tensorboard")
        self._truncate_after(resume_step)
        self._writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(self.tensorboard_dir, purge_step=resume_step + 1 if resume_step else None)

    def _truncate_after(self, step: int) -> None:
        if not os.path.exists(self.path):
            return
        kept = [row for row in read_metrics(self.path) if row.get("step", 0) <= step]
        # write aside and rename, so that a kill at any moment leaves the old or the new file, never half of one
        with open(self.path + ".tmp", "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in kept)
        os.replace(self.path + ".tmp", self.path)

    def write(self, step: int, metrics: dict) -> None:
        row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(key, value, int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def read_metrics(path: str) -> list[dict]:
    """Rows of a ``metrics.jsonl`` file (a torn last line from a killed run is skipped)."""
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def plot_metrics(metrics_path: str, out_path: str, *, title: str = "") -> str:
    """Draws loss and accuracy (train and test) against step into a PNG; returns ``out_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, keys, label in ((ax_loss, ("train_loss", "test_loss"), "loss"),
                            (ax_acc, ("train_accuracy", "test_accuracy"), "accuracy")):
        for key in keys:
            points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, marker="o" if key.startswith("test") else None, markersize=3, label=key)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
