"""Run metrics: ``metrics.jsonl``, TensorBoard event files and a PNG of the curves."""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import sys
import time
import warnings

from zoo.train.workdir import WorkdirError


class MetricsWarning(UserWarning):
    """Rows of ``metrics.jsonl`` that could not be read, or history without a checkpoint, were moved aside."""


class MetricsLogger:
    """Appends one JSON object per logged step and mirrors scalars to TensorBoard.

    On resume from ``resume_step`` the rows written after that step by a run
    that was interrupted are dropped (with a note: the resumed run writes them
    again), so the files describe exactly the training the checkpoint holds.
    Nothing else is dropped or rewritten silently: unreadable rows (a torn last
    line, bytes that are not UTF-8 JSON objects with a ``step``) go to
    ``metrics.jsonl.corrupt-<time>``, a ``metrics.jsonl`` that is no file is moved
    there, and rows found with nothing to resume from (``resume_step`` 0: the
    checkpoints were deleted) move to ``metrics.jsonl.no-checkpoint-<time>``, each
    with a :class:`MetricsWarning` naming the file.

    Args:
      workdir: run directory; writes ``metrics.jsonl`` and ``tensorboard/``.
      resume_step: the step training restarts from (0 for a new run).
      tensorboard: also write TensorBoard event files (without importing torch or TensorFlow).
      enabled: False writes nothing (every process but the first of a multi-host run).
    """

    def __init__(self, workdir: str, *, resume_step: int = 0, tensorboard: bool = True, enabled: bool = True):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.tensorboard_dir = os.path.join(workdir, "tensorboard")
        self.enabled = enabled  # False: write nothing (the other processes of a multi-host run)
        self._writer = None
        if not enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        self._truncate_after(resume_step)
        if tensorboard:
            self._writer = EventWriter(self.tensorboard_dir, purge_step=resume_step + 1)

    def _aside(self, kind: str) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, n = f"{self.path}.{kind}-{stamp}", 1
        while os.path.lexists(path):
            n += 1
            path = f"{self.path}.{kind}-{stamp}.{n}"
        return path

    def _truncate_after(self, step: int) -> None:
        if not os.path.lexists(self.path):
            return
        if not os.path.isfile(self.path):  # a directory, a dangling link, ...: keep it, start a new file
            aside = self._aside("corrupt")
            os.rename(self.path, aside)
            open(self.path, "x").close()
            warnings.warn(f"{self.path} is not a readable file; moved it to {aside} and started a new one",
                          MetricsWarning, stacklevel=3)
            return
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise WorkdirError(f"cannot read {self.path} ({e.strerror or e}); fix its permissions or move it "
                               "away") from e
        lines = data.split(b"\n")
        unended = lines[-1]  # the bytes after the last newline: a write a kill cut short
        rows = [(raw, _parse_row(raw)) for raw in lines if raw.strip()]
        if not rows:
            return
        torn = bool(unended.strip()) and rows[-1][1] is None
        if step == 0:  # history, but nothing to resume it from: a new training starts
            good = [row["step"] for _, row in rows if row is not None]
            aside = self._aside("no-checkpoint")
            os.rename(self.path, aside)
            open(self.path, "x").close()
            warnings.warn(
                f"{self.path} holds metrics"
                + (f" up to step {max(good)}" if good else "")
                + f" but there is no checkpoint to resume from; training starts at step 0 and the old metrics "
                f"are kept in {aside}", MetricsWarning, stacklevel=3)
            return
        bad = [raw for raw, row in rows if row is None]
        later = [row["step"] for _, row in rows if row is not None and row["step"] > step]
        if not bad and not later and not unended:
            return
        if bad:
            aside = self._aside("corrupt")
            with open(aside, "wb") as f:
                f.writelines(raw + b"\n" for raw in bad)
                f.flush()
                os.fsync(f.fileno())
            what = f"{len(bad)} unreadable row(s)" + (" (a torn last line)" if torn and len(bad) == 1 else
                                                      ", the last one torn" if torn else "")
            warnings.warn(f"{self.path}: {what} moved to {aside}", MetricsWarning, stacklevel=3)
        if later:
            print(f"note: {self.path}: dropped {len(later)} row(s) of steps {min(later)}-{max(later)}, written "
                  f"after the checkpoint of step {step} that this run resumes from; they are trained again",
                  file=sys.stderr)
        kept = [raw for raw, row in rows if row is not None and row["step"] <= step]
        # write aside and rename, so that a kill at any moment leaves the old or the new file, never half of one
        with open(self.path + ".tmp", "wb") as f:
            f.writelines(raw + b"\n" for raw in kept)
        os.replace(self.path + ".tmp", self.path)

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._writer is not None:
            self._writer.add_scalars({key: value for key, value in row.items()
                                      if key != "step" and isinstance(value, (int, float))
                                      and math.isfinite(value)}, int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _parse_row(raw: bytes) -> dict | None:
    """The row a line of ``metrics.jsonl`` holds; None unless it is a UTF-8 JSON object with an int ``step``."""
    try:
        row = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(row, dict) or isinstance(row.get("step"), bool) or not isinstance(row.get("step"), int):
        return None
    return row


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def read_metrics(path: str) -> list[dict]:
    """Rows of a ``metrics.jsonl`` file (lines that are no JSON object with a ``step``, such as a torn
    last line from a killed run, are skipped)."""
    with open(path, "rb") as f:
        return [row for row in map(_parse_row, f.read().split(b"\n")) if row is not None]


# --- TensorBoard event files, written directly: tensorboardX imports torch when it is installed (seconds) ----

def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, body: bytes) -> bytes:
    """A tensorflow ``Event`` proto: wall_time (1), step (2) and one of file_version (3), summary (5),
    session_log (7), already encoded in ``body``."""
    return b"\x09" + struct.pack("<d", time.time()) + b"\x10" + _varint(max(int(step), 0)) + body


class EventWriter:
    """Appends scalar summaries to a TensorBoard ``events.out.tfevents.*`` file (TFRecord of ``Event`` protos).

    ``purge_step``: TensorBoard forgets the events of earlier files at this step and after (a resumed run
    writes them again), as tensorboardX's ``SummaryWriter(purge_step=...)``.
    """

    def __init__(self, directory: str, *, purge_step: int | None = None):
        os.makedirs(directory, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(directory, name)
        self._file = open(self.path, "ab")
        self._record(_event(0, _field(3, b"brain.Event:2")))
        if purge_step is not None:
            self._record(_event(purge_step, _field(7, b"\x08\x01")))  # SessionLog{status: START}
        self._file.flush()

    def _record(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._file.write(header + struct.pack("<I", _masked_crc32c(header)) + data
                         + struct.pack("<I", _masked_crc32c(data)))

    def add_scalars(self, values: dict, step: int) -> None:
        """One event holding a ``simple_value`` per tag."""
        if not values:
            return
        summary = b"".join(_field(1, _field(1, tag.encode()) + b"\x15" + struct.pack("<f", value))
                           for tag, value in values.items())
        self._record(_event(step, _field(5, summary)))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def plot_metrics(metrics_path: str, out_path: str, *, title: str = "") -> str:
    """Draws loss and accuracy (train and test, or validation) against step into a PNG; returns ``out_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, keys, label in ((ax_loss, ("train_loss", "test_loss", "val_loss"), "loss"),
                            (ax_acc, ("train_accuracy", "test_accuracy", "val_accuracy"), "accuracy")):
        for key in keys:
            points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, marker=None if key.startswith("train") else "o", markersize=3, label=key)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_lines():  # no rows yet (e.g. the history was moved aside): no legend to draw
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
