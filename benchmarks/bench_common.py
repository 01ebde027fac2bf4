"""What every benchmark script shares: the machine line, the load average, the zoo batch, the BENCHMARKS.md block.

The scripts run as ``python benchmarks/<script>.py``, so this folder is first on
the import path and they ``import bench_common``; no script here is named like
an installed package.  ``example_batch`` / ``batch_arrays`` are the only code in
``benchmarks/`` that knows the layout of a zoo training batch.
"""

from __future__ import annotations

import os
import platform
import subprocess


def cpu_name() -> str:
    """The CPU model (``lscpu``'s "Model name"), else what ``platform`` knows."""
    name = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return name


def versions(packages=("keras", "torch")) -> str:
    """``Python x, jax y (backend), <package> <version>...`` for the installed ones of ``packages``."""
    import jax

    parts = [f"Python {platform.python_version()}", f"jax {jax.__version__} ({jax.default_backend()})"]
    for name in packages:
        try:
            module = __import__(name)
        except ImportError:
            continue
        part = f"{name} {module.__version__}"
        if name == "torch":
            part += f" ({module.get_num_threads()} threads)"
        parts.append(part)
    return ", ".join(parts)


def machine(packages=("keras", "torch")) -> str:
    """One line naming the CPU, cores, OS and the versions that matter to a benchmark."""
    return f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; {versions(packages)}"


def load_average() -> str:
    """``"1-minute load average 1.23"`` (``"n/a"`` where the OS has none): how busy the machine was."""
    try:
        return f"1-minute load average {os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return "1-minute load average n/a"


def header(packages=("keras", "torch")) -> str:
    """The line each script prints first and writes into its block: machine and load at the start."""
    return f"{machine(packages)}; {load_average()} at the start"


def markers(script: str) -> tuple[str, str]:
    """The begin / end comments around ``script``'s block in BENCHMARKS.md."""
    return f"<!-- {script}: begin -->", f"<!-- {script}: end -->"


def write_block(path: str, block: str, begin: str, end: str) -> None:
    """Replaces the text from ``begin`` to ``end`` in ``path`` with ``block`` (the rest kept), or appends it.

    ``block`` must start with ``begin`` and end with ``end``.
    """
    if not (block.startswith(begin) and block.endswith(end)):
        raise ValueError(f"the block must start with {begin!r} and end with {end!r}")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def command(script: str, argv: list[str], prose=("--note",)) -> str:
    """The command line that reproduces a run: ``python benchmarks/<script> <argv>`` without the ``prose`` options."""
    argv = list(argv)
    for option in prose:
        if option in argv:
            i = argv.index(option)
            argv = argv[:i] + argv[i + 2:]
    return " ".join([f"python benchmarks/{script}", *argv])


def write_section(path: str, script: str, *, title: str, measured_on: str, method: str, tables: str,
                  note: str = "") -> None:
    """Writes ``script``'s block into ``path``: a title, when and where it was measured, ``note``, the method
    (what the run did: it starts with how to reproduce it) and the tables."""
    import datetime

    begin, end = markers(script)
    note = f" {note}" if note else ""
    block = (f"{begin}\n## {title}\n\nMeasured {datetime.date.today().isoformat()} on {measured_on}.{note}\n\n"
             f"{method}\n\n{tables}\n{end}")
    write_block(path, block, begin, end)
    print(f"wrote {path}")


def example_batch(model, key, batch_size: int, *, padding: float = 0.0) -> dict:
    """A random training batch for ``model`` (valid inputs and labels for its task), as ``train_step`` takes it.

    Args:
      model: a zoo model (``zoo.create_model``).
      key: a JAX PRNG key.
      batch_size: B.
      padding: for token models that take an ``attention_mask`` (not causal LMs): the fraction of each
        sequence, at its end, that is padding (mask 0, id 0).

    Returns:
      a batch of the model's task schema (``zoo.tasks``: ``{"inputs", "label"}``, ``{"tokens"}``, ...),
      plus ``"attention_mask"`` ``[B, T]`` for token models that take one.
    """
    import jax.numpy as jnp

    from zoo.tasks import task_for

    config = model.config
    task = task_for(model)
    batch = dict(task.example_batch(config, key, batch_size))
    if config.layout == "tokens" and task.name != "causal_lm":
        length = batch["inputs"].shape[1]
        mask = (jnp.arange(length) < length - int(length * padding)).astype(jnp.int32)
        batch["attention_mask"] = jnp.broadcast_to(mask, batch["inputs"].shape)
        batch["inputs"] = batch["inputs"] * batch["attention_mask"]
    elif padding:
        raise ValueError(f"padding applies to token models with an attention mask, not {getattr(config, 'variant', type(config).__name__)!r}")
    return batch


def batch_arrays(batch: dict):
    """``(model input, labels, other model inputs)`` of an :func:`example_batch`, e.g. to feed a peer framework.

    For a causal-LM batch ``{"tokens" [B, T + 1]}`` the model input is ``tokens[:, :-1]`` and the
    labels are ``tokens[:, 1:]``.
    """
    if "tokens" in batch:
        extras = {k: v[:, :-1] for k, v in batch.items() if k != "tokens"}
        return batch["tokens"][:, :-1], batch["tokens"][:, 1:], extras
    extras = {k: v for k, v in batch.items() if k not in ("inputs", "label")}
    return batch["inputs"], batch["label"], extras


def zoo_train_runner(name: str, batches: list, *, donate: bool = False):
    """``(run, param_count)``: ``run(n)`` takes ``n`` jitted Adam ``train_step`` s of zoo model ``name`` over
    ``batches`` in turn (the first call compiles) and waits for the result."""
    import zoo
    from zoo.train import OptimizerConfig, create_train_state, make_optimizer, train_step

    import jax

    model = zoo.create_model(name)
    state = create_train_state(model, make_optimizer(OptimizerConfig(name="adam"), 1), seed=0)
    step = jax.jit(train_step, donate_argnums=0 if donate else ())
    holder = {"state": state}

    def run(n: int) -> None:
        s = holder["state"]
        for i in range(n):
            s, metrics = step(s, batches[i % len(batches)])
        jax.block_until_ready(metrics)
        holder["state"] = s

    return run, zoo.param_count(name)


def torch_seed_model(name: str):
    """The PyTorch peer of ``seed_cnn`` (NCHW input) or ``seed_lstm``: the same layers and output logits."""
    from torch import nn

    if name == "seed_cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    if name != "seed_lstm":
        raise ValueError(f"no PyTorch seed model {name!r}; there are 'seed_cnn' and 'seed_lstm'")

    class SeedLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm_0 = nn.LSTM(10, 128, batch_first=True)
            self.lstm_1 = nn.LSTM(128, 128, batch_first=True)
            self.head = nn.Linear(128, 10)

        def forward(self, inputs):
            h, _ = self.lstm_0(inputs)
            h, _ = self.lstm_1(h)
            return self.head(h[:, -1])

    return SeedLSTM()


__all__ = ["batch_arrays", "command", "cpu_name", "example_batch", "header", "load_average", "machine", "markers",
           "torch_seed_model", "versions", "write_block", "write_section", "zoo_train_runner"]
