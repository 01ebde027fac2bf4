"""Torture test: kill `zoo train` at random moments, restart it, compare with an uninterrupted run.

    python tests/train/torture.py --kills 20          # the full run; prints a report (README "Reliability")

Each round starts ``python -m zoo.cli train mlp ...`` (async checkpoints every
5 steps) on the same work directory and sends it SIGKILL at a random moment:
alternately just after a checkpoint save has started (its
``<step>.orbax-checkpoint-tmp`` directory appeared) and after a random delay
once training has progressed. A last run trains to the end; its final train
state (parameters, optimizer state, RNG, step) must equal, bit for bit, that of
one uninterrupted run of the same command. ``tests/train/test_reliability.py``
runs a few rounds of this in ``make test``; to stay fast it forks the runs
(``launcher="fork"``) from a server process that has imported zoo once, which
saves ~5 s of imports per start; a SIGKILL ends a forked run exactly as it
ends an exec'd one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

TMP_MARK = ".orbax-checkpoint-tmp"


def train_args(workdir: str, steps: int) -> list[str]:
    return ["train", "mlp", "--data", "digits", "--steps", str(steps), "--batch-size", "32", "--checkpoint-every",
            "5", "--log-every", "1", "--keep", "2", "--no-progress", "--workdir", workdir]


def command(workdir: str, steps: int) -> list[str]:
    return [sys.executable, "-m", "zoo.cli", *train_args(workdir, steps)]


class _ForkedRun:
    """The part of ``subprocess.Popen``'s interface used here, for a run forked from a preloaded server."""

    _context = None

    def __init__(self, argv: list[str], log: str, cache_dir: str | None):
        if _ForkedRun._context is None:
            _ForkedRun._context = multiprocessing.get_context("forkserver")
            _ForkedRun._context.set_forkserver_preload(["zoo.cli", "zoo.train", "sklearn.datasets",
                                                        "matplotlib.pyplot"])
        self._process = _ForkedRun._context.Process(target=_forked_main, args=(argv, log, cache_dir))
        self._process.start()
        self.pid = self._process.pid

    def poll(self):
        return self._process.exitcode

    def wait(self, timeout=None):
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired("forked zoo train", timeout)
        return self._process.exitcode

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)


def _forked_main(argv, log, cache_dir):
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    if cache_dir:
        import jax

        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    from zoo.cli import main

    sys.exit(main(argv))


def start(workdir: str, steps: int, log: str, *, launcher: str = "exec", cache_dir: str | None = None):
    """Starts ``zoo train`` on ``workdir``: "exec" runs ``python -m zoo.cli``, "fork" forks a preloaded server."""
    if launcher == "fork":
        return _ForkedRun(train_args(workdir, steps), log, cache_dir)
    env = dict(os.environ)
    if cache_dir:
        env.update(JAX_COMPILATION_CACHE_DIR=cache_dir, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    with open(log, "w") as err:
        return subprocess.Popen(command(workdir, steps), stdout=subprocess.DEVNULL, stderr=err, env=env)


def complete_steps(workdir: str) -> list[int]:
    """Committed checkpoint steps (orbax renames a step's tmp directory to its number on commit)."""
    ckpt_dir = os.path.join(workdir, "checkpoints")
    return sorted(int(n) for n in os.listdir(ckpt_dir) if n.isdigit()) if os.path.isdir(ckpt_dir) else []


def partial_saves(workdir: str, since_ns: int = 0) -> list[str]:
    """Uncommitted step directories created at or after ``since_ns`` (time.time_ns())."""
    ckpt_dir = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(ckpt_dir):
        return []
    out = []
    for name in os.listdir(ckpt_dir):
        try:
            if TMP_MARK in name and os.stat(os.path.join(ckpt_dir, name)).st_ctime_ns >= since_ns:
                out.append(name)
        except FileNotFoundError:  # committed (renamed) meanwhile
            pass
    return out


def logged_step(workdir: str) -> int:
    """The last step in metrics.jsonl (the run logs every step)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return 0
    step = 0
    with open(path) as f:
        for line in f:
            try:
                step = max(step, int(json.loads(line)["step"]))
            except (ValueError, KeyError):
                continue
    return step


@dataclasses.dataclass
class Round:
    target: str  # "save" or "step": what the signal was aimed at
    signal: str
    resumed_from: int  # newest committed step when the round started
    reached: int  # last step the run logged before the signal
    during_save: bool  # an uncommitted save of this round was left behind
    returncode: int
    stderr: str


def _wait(predicate, proc, timeout: float, what: str, log: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise RuntimeError(f"the run exited ({proc.returncode}) before {what}:\n{_read(log)}")
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"no {what} within {timeout} s:\n{_read(log)}")
        time.sleep(0.002)


def _read(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()


def interrupt(workdir: str, steps: int, rng: random.Random, target: str, sig=signal.SIGKILL, *,
              launcher: str = "exec", cache_dir: str | None = None, save_delay: float = 0.03,
              timeout: float = 300) -> Round:
    """Starts the run, waits for ``target`` ("save" or "step"), sends ``sig``, waits for the process to end.

    The run first trains 0-15 (random) steps past the step it resumed from;
    then a "save" round is signalled 0-30 ms after the next checkpoint save
    starts (``save_delay``), a "step" round 0-100 ms later.
    """
    resumed_from = max(complete_steps(workdir), default=0)
    log = workdir.rstrip("/") + ".stderr"
    start_ns = time.time_ns()
    proc = start(workdir, steps, log, launcher=launcher, cache_dir=cache_dir)
    try:
        progress = resumed_from + rng.randint(1, 15)
        _wait(lambda: logged_step(workdir) >= progress, proc, timeout, f"step {progress}", log)
        if target == "save":
            since = time.time_ns()
            _wait(lambda: partial_saves(workdir, since), proc, timeout, "checkpoint save", log)
            time.sleep(rng.uniform(0, save_delay))
        else:
            time.sleep(rng.uniform(0, 0.1))
        reached = logged_step(workdir)
        proc.send_signal(sig)
        returncode = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Round(target=target, signal=signal.Signals(sig).name, resumed_from=resumed_from,
                 reached=max(reached, logged_step(workdir)), during_save=bool(partial_saves(workdir, start_ns)),
                 returncode=returncode, stderr=_read(log))


def run_to_end(workdir: str, steps: int, *, launcher: str = "exec", cache_dir: str | None = None,
               timeout: float = 600) -> dict:
    """Runs the command uninterrupted; returns the run's summary (read from its checkpoint)."""
    log = workdir.rstrip("/") + ".stderr"
    proc = start(workdir, steps, log, launcher=launcher, cache_dir=cache_dir)
    code = proc.wait(timeout)
    if code != 0:
        raise RuntimeError(f"run exited {code}:\n{_read(log)}")
    return {"steps": max(complete_steps(workdir)), "stderr": _read(log)}


def final_items(workdir: str) -> dict:
    """The newest checkpoint's train-state arrays as numpy (loaded in this process)."""
    import jax

    from zoo.train import load_run

    _, state, _ = load_run(workdir)
    return jax.tree.map(lambda x: jax.device_get(x), state.checkpoint_items())


def differing_leaves(a: dict, b: dict) -> list[str]:
    import jax
    import numpy as np

    flat_a = jax.tree_util.tree_flatten_with_path(a)[0]
    flat_b = jax.tree.leaves(b)
    if len(flat_a) != len(flat_b):
        return ["<tree structure>"]
    return [jax.tree_util.keystr(p) for (p, x), y in zip(flat_a, flat_b) if not np.array_equal(x, y)]


def torture(workdir: str, reference: str | None, *, kills: int, steps: int, seed: int = 0, launcher: str = "exec",
            cache_dir: str | None = None, save_delay: float = 0.03, log=print) -> dict:
    """``kills`` SIGKILL rounds on ``workdir``, a final run, and the comparison with ``reference``.

    ``reference`` is a work directory holding the uninterrupted run (run here if it has no checkpoint).
    """
    rng = random.Random(seed)
    opts = dict(launcher=launcher, cache_dir=cache_dir)
    if not complete_steps(reference):
        run_to_end(reference, steps, **opts)
    rounds = []
    for i in range(kills):
        r = interrupt(workdir, steps, rng, "save" if i % 2 == 0 else "step", save_delay=save_delay, **opts)
        rounds.append(r)
        log(f"kill {i + 1:2d}/{kills}: aimed at a {r.target:4s}  resumed from {r.resumed_from:4d}  reached "
            f"{r.reached:4d}  {'during a save' if r.during_save else 'between saves'}  "
            f"newest complete now {max(complete_steps(workdir), default=0)}")
        if r.returncode != -signal.SIGKILL:
            raise RuntimeError(f"round {i + 1} ended with {r.returncode}, not by SIGKILL:\n{r.stderr}")
    final_resume = max(complete_steps(workdir), default=0)
    summary = run_to_end(workdir, steps, **opts)
    # each restart resumes from the newest committed step: what the killed run had done past it is redone
    resumes = [r.resumed_from for r in rounds[1:]] + [final_resume]
    recomputed = sum(max(0, r.reached - nxt) for r, nxt in zip(rounds, resumes))
    diff = differing_leaves(final_items(workdir), final_items(reference))
    return {"kills": kills, "during_save": sum(r.during_save for r in rounds), "steps": steps,
            "steps_recomputed": recomputed, "final_step": summary["steps"], "identical": not diff,
            "differing": diff, "rounds": rounds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=None, help="training length (default 40 + 25 per kill)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--launcher", choices=["exec", "fork"], default="exec",
                        help="exec: each run is `python -m zoo.cli train` (default); fork: forked from a preloaded server")
    parser.add_argument("--dir", default=None, help="where to put the two work directories (default: a temp dir)")
    args = parser.parse_args(argv)
    steps = args.steps or 40 + 25 * args.kills
    root = args.dir or tempfile.mkdtemp(prefix="zoo-torture-")
    os.makedirs(root, exist_ok=True)
    t0 = time.time()
    report = torture(os.path.join(root, "killed"), os.path.join(root, "reference"), kills=args.kills, steps=steps,
                     seed=args.seed, launcher=args.launcher, cache_dir=os.path.join(root, "jax-cache"))
    print(f"\n{report['kills']} SIGKILLs, {report['during_save']} of them during a checkpoint save; "
          f"{report['steps_recomputed']} steps recomputed in all; final step {report['final_step']} of {steps}; "
          f"final parameters, optimizer state and RNG identical to the uninterrupted run: {report['identical']} "
          f"({time.time() - t0:.0f} s)")
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
