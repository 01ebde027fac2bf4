"""Preemption-safe training: signals, kill -9, corrupt checkpoints, non-finite losses, locks, full disks.

The runs are the tiny ``mlp`` with async checkpoints every 5 steps (see ``torture.py``).
"""

import glob
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import chex
import jax
import numpy as np
import pytest

import torture
from zoo.cli import main
from zoo.train import (CheckpointError, Checkpointer, CheckpointWarning, NonFiniteError, OptimizerConfig,
                       PreemptionGuard, TrainConfig, WorkdirLock, load_run, train_and_evaluate)

STEPS = 40


def snapshot(directory) -> dict:
    """Every file under ``directory``: (size, mtime_ns, bytes) by relative path."""
    out = {}
    for dirpath, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = (st.st_size, st.st_mtime_ns, f.read())
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="module")
def reference(root):
    """The uninterrupted run (in this process): its final train state."""
    workdir = str(root / "reference")
    assert main(torture.train_args(workdir, STEPS)) == 0
    return torture.final_items(workdir)


def test_fast_torture_sigkill_during_saves_and_steps_loses_nothing(root, reference):
    report = torture.torture(str(root / "killed"), str(root / "reference"), kills=3, steps=STEPS, seed=1,
                             launcher="fork", cache_dir=str(root / "jax-cache"), save_delay=0.005,
                             log=lambda *a: None)
    rounds = report["rounds"]
    assert [r.returncode for r in rounds] == [-signal.SIGKILL] * 3
    assert report["during_save"] >= 1, rounds  # a save was cut short and left its tmp directory
    # every restart (each one taking the lock the killed run held) resumed from the newest committed step
    assert all(b.resumed_from >= a.resumed_from for a, b in zip(rounds, rounds[1:]))
    assert report["final_step"] == STEPS
    assert report["identical"], report["differing"]


def test_sigterm_finishes_the_step_saves_and_exits_75_then_resumes_exactly(root, reference, capsys):
    workdir = str(root / "sigterm")
    log = str(root / "sigterm.stderr")
    proc = torture.start(workdir, STEPS, log, cache_dir=str(root / "jax-cache"))  # a real `python -m zoo.cli train`
    try:
        torture._wait(lambda: torture.logged_step(workdir) >= 12, proc, 300, "step 12", log)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = pathlib.Path(log).read_text()
    assert code == 75, err
    assert "received SIGTERM: finishing the current step, saving a checkpoint" in err
    stopped_at = int(err.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert 12 <= stopped_at < STEPS
    # the checkpoint of that exact step committed before the exit: no partial save is left
    assert torture.complete_steps(workdir)[-1] == stopped_at
    assert torture.partial_saves(workdir) == []

    assert main(torture.train_args(workdir, STEPS)) == 0
    assert '"resumed_from": %d' % stopped_at in capsys.readouterr().out
    chex.assert_trees_all_equal(torture.final_items(workdir), reference)


def test_a_signal_during_the_first_compile_exits_75_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the train state compiles (before the loop's first step) used to raise KeyboardInterrupt
    from inside it: a traceback, often a segfault at exit."""
    import zoo.train.loop

    create = zoo.train.loop.create_train_state

    def interrupted(*args, **kwargs):  # runs while the strategy traces and compiles the state's creation
        os.kill(os.getpid(), signal.SIGINT)
        return create(*args, **kwargs)

    monkeypatch.setattr(zoo.train.loop, "create_train_state", interrupted)
    workdir = tmp_path / "run"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = main(["train", *SMALL, "--workdir", str(workdir)])
    except KeyboardInterrupt:  # what it did before: fail this test, not the whole session
        pytest.fail("the SIGINT escaped as KeyboardInterrupt")
    err = capsys.readouterr().err
    assert code == 75, err
    assert err.strip().splitlines()[-1] == (f"zoo: stopped by SIGINT before the first step; no checkpoint was "
                                            f"written to {workdir}. Rerun the same command to resume.")
    assert not workdir.exists()
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the caller's (pytest's) Ctrl-C works again


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``sig`` (Linux: SigCgt in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(caught >> (sig - 1) & 1)


def test_sigterm_during_imports_exits_75_in_one_line(tmp_path):
    """A real `python -m zoo.cli train`, signalled as soon as its handler is in: during the imports of JAX."""
    workdir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "zoo.cli", "train", *SMALL, "--workdir", str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _catches(proc.pid, signal.SIGTERM):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 75, err
    assert "Traceback" not in err and out == ""
    assert err.strip().splitlines()[-1].startswith("zoo: stopped by SIGTERM before the first step"), err
    assert not workdir.exists()


def _run_python(code: str) -> subprocess.CompletedProcess:
    # preemption.py needs only the standard library: load it by path, skipping zoo's (slow) imports
    path = os.path.join(os.path.dirname(__file__), "..", "..", "zoo", "train", "preemption.py")
    prelude = textwrap.dedent(f"""
        import importlib.util, os, signal, sys, time
        spec = importlib.util.spec_from_file_location("preemption", {os.path.abspath(path)!r})
        preemption = importlib.util.module_from_spec(spec); spec.loader.exec_module(preemption)
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_second_signal_aborts_at_once(sig):
    out = _run_python(f"""
        with preemption.PreemptionGuard() as guard:
            os.kill(os.getpid(), {int(sig)})
            assert guard.requested and guard.signal_name == {sig.name!r}
            print("first signal noted", flush=True)
            start = time.time()
            os.kill(os.getpid(), {int(sig)})
            time.sleep(20)
            print("still alive", flush=True)
    """)
    assert out.returncode == -sig, out
    assert out.stdout == "first signal noted\n"
    assert f"second {sig.name}: aborting now" in out.stderr


def test_guard_restores_handlers_and_is_inert_off_the_main_thread():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with PreemptionGuard() as guard:
        assert guard.active and signal.getsignal(signal.SIGTERM) == guard._handle
    assert {s: signal.getsignal(s) for s in before} == before
    seen = {}
    thread = threading.Thread(target=lambda: seen.update(active=PreemptionGuard().__enter__().active))
    thread.start()
    thread.join()
    assert seen == {"active": False}
    assert {s: signal.getsignal(s) for s in before} == before


# --- checkpoints corrupted on disk -----------------------------------------------------------------------

CORRUPT_CONFIG = dict(model="mlp", steps=20, batch_size=32, checkpoint_every=5, log_every=5, keep_checkpoints=4,
                      optimizer=OptimizerConfig(), async_checkpointing=False)


@pytest.fixture(scope="module")
def four_checkpoints(root):
    """A 20-step run with checkpoints at 5, 10, 15, 20, and its final train state."""
    workdir = str(root / "four")
    train_and_evaluate(TrainConfig(**CORRUPT_CONFIG), workdir, progress=False)
    return workdir, torture.final_items(workdir)


def _largest_array_file(step_dir):
    return max(glob.glob(os.path.join(step_dir, "state", "**", "d", "*"), recursive=True), key=os.path.getsize)


def _flip_a_bit(step_dir):
    path = _largest_array_file(step_dir)
    data = bytearray(pathlib.Path(path).read_bytes())
    data[len(data) // 3] ^= 0x04
    pathlib.Path(path).write_bytes(data)


def _truncate(step_dir):
    path = _largest_array_file(step_dir)
    os.truncate(path, os.path.getsize(path) // 2)


# orbax leaves the coroutines of a failed restore to the garbage collector, which reports them as unraisable
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", [_flip_a_bit, _truncate], ids=["bit flip", "truncated file"])
def test_corrupt_newest_checkpoint_is_skipped_with_a_warning_and_the_older_one_used(four_checkpoints, tmp_path,
                                                                                   damage):
    source, final = four_checkpoints
    workdir = str(tmp_path / "run")
    shutil.copytree(source, workdir)
    damage(os.path.join(workdir, "checkpoints", "20"))
    with pytest.warns(CheckpointWarning) as caught:
        summary = train_and_evaluate(TrainConfig(**CORRUPT_CONFIG), workdir, progress=False)
    messages = [str(w.message) for w in caught]
    assert any(f"skipping checkpoint {workdir}/checkpoints/20:" in m for m in messages), messages
    if damage is _flip_a_bit:  # orbax restores a flipped bit silently; the checksums catch it
        assert any("is corrupt: the arrays" in m for m in messages), messages
    assert summary["resumed_from"] == 15 and summary["new_steps"] == 5
    # the bad step is moved aside, not deleted, and the step is recomputed exactly
    assert len(glob.glob(os.path.join(workdir, "checkpoints", "20.corrupt-*"))) == 1
    chex.assert_trees_all_equal(torture.final_items(workdir), final)


def test_when_no_checkpoint_is_usable_the_error_lists_each_and_nothing_changes(four_checkpoints, tmp_path):
    source, _ = four_checkpoints
    workdir = str(tmp_path / "run")
    shutil.copytree(source, workdir)
    for step in (5, 10, 15, 20):
        _flip_a_bit(os.path.join(workdir, "checkpoints", str(step)))
    before = snapshot(workdir)
    with pytest.raises(CheckpointError, match=r"no usable checkpoint in .*\(nothing was deleted\)") as e:
        train_and_evaluate(TrainConfig(**CORRUPT_CONFIG), workdir, progress=False)
    for step in (5, 10, 15, 20):
        assert f"checkpoints/{step}: checkpoint step {step}" in str(e.value)
    assert snapshot(workdir) == before


def test_an_uncommitted_save_is_ignored(four_checkpoints, tmp_path):
    """What a kill during a save leaves (the torture test makes real ones): a tmp dir, never a step."""
    source, final = four_checkpoints
    workdir = str(tmp_path / "run")
    shutil.copytree(source, workdir)
    partial = os.path.join(workdir, "checkpoints", "25.orbax-checkpoint-tmp")
    shutil.copytree(os.path.join(workdir, "checkpoints", "20"), partial)
    os.remove(_largest_array_file(partial))
    assert Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False).all_steps() == [5, 10, 15, 20]
    _, state, _ = load_run(workdir)
    assert int(state.step) == 20


def test_uncommitted_saves_are_removed_by_the_next_run_but_not_by_a_refused_one(four_checkpoints, tmp_path,
                                                                               capsys):
    source, _ = four_checkpoints
    workdir = str(tmp_path / "run")
    shutil.copytree(source, workdir)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    partial = ["25.orbax-checkpoint-tmp", "30.orbax-checkpoint-tmp-1796187016"]
    for name in partial:
        shutil.copytree(os.path.join(ckpt_dir, "20"), os.path.join(ckpt_dir, name))
    with pytest.raises(CheckpointError, match="other optimizer settings"):  # refused: leaves them
        train_and_evaluate(TrainConfig(**{**CORRUPT_CONFIG, "optimizer": OptimizerConfig(learning_rate=0.5)}),
                           workdir, progress=False)
    assert sorted(n for n in os.listdir(ckpt_dir) if "tmp" in n) == partial
    summary = train_and_evaluate(TrainConfig(**CORRUPT_CONFIG), workdir, progress=False)
    assert summary["resumed_from"] == 20
    assert sorted(os.listdir(ckpt_dir)) == ["10", "15", "20", "5"]
    assert f"removed 2 unfinished checkpoint save(s) left by an interrupted run: {', '.join(partial)}" in \
        capsys.readouterr().err


# --- non-finite losses ---------------------------------------------------------------------------------

# SGD at 1e30: the first update is finite, the second step's logits overflow (loss and gradients NaN)
DIVERGING = dict(model="mlp", steps=8, batch_size=32, checkpoint_every=1, log_every=1, keep_checkpoints=20,
                 optimizer=OptimizerConfig(name="sgd", learning_rate=1e30, momentum=0.0))


def test_nonfinite_loss_stops_naming_the_step_and_writes_no_checkpoint_of_it(tmp_path, capsys):
    workdir = str(tmp_path)
    code = main(["train", "mlp", "--optimizer", "sgd", "--momentum", "0", "--lr", "1e30", "--steps", "8",
                 "--batch-size", "32", "--checkpoint-every", "1", "--log-every", "1", "--no-progress",
                 "--workdir", workdir])
    err = capsys.readouterr().err
    assert code == 4, err
    assert ("zoo: error: non-finite loss or gradient in the update to step 2 (loss=nan, grad_norm=nan); training "
            "stopped without saving it. The newest checkpoint (1) is left as it was.") in err
    assert torture.complete_steps(workdir) == [1]
    chex.assert_tree_all_finite(load_run(workdir)[1].params)


def test_skip_keeps_the_last_finite_state_and_stops_after_n_in_a_row(tmp_path):
    workdir = str(tmp_path)
    with pytest.raises(NonFiniteError, match="4 consecutive non-finite updates .* more than the 3"):
        train_and_evaluate(TrainConfig(**DIVERGING, on_nonfinite="skip:3"), workdir, progress=False)
    # steps 2-4 skipped their updates: their checkpoints hold step 1's (finite) parameters
    assert torture.complete_steps(workdir) == [1, 2, 3, 4]
    _, first, _ = load_run(workdir, 1)
    _, last, _ = load_run(workdir, 4)
    assert int(last.step) == 4
    chex.assert_trees_all_equal(last.params, first.params)
    chex.assert_tree_all_finite(last.params)


def test_checkpointer_refuses_to_save_nan(tmp_path):
    ckpt = Checkpointer(tmp_path, async_save=False)
    with pytest.raises(NonFiniteError, match=r"refusing to save checkpoint step 3: NaN or Inf in \[\"\['w'\]\"\]"):
        ckpt.save(3, {"w": np.array([1.0, np.nan], np.float32), "b": np.zeros(2, np.float32)}, {"model": "x"})
    assert ckpt.all_steps() == []
    ckpt.close()


# --- the work directory: one run at a time, unwritable, full disk ----------------------------------------

SMALL = ["mlp", "--steps", "10", "--batch-size", "32", "--checkpoint-every", "10", "--no-progress"]


def test_a_second_run_on_a_busy_workdir_fails_at_once(four_checkpoints, capsys):
    workdir, _ = four_checkpoints
    before = snapshot(workdir)
    with WorkdirLock(workdir) as held:  # as a running `zoo train` holds it
        held.claim()
        start = time.perf_counter()
        code = main(["train", *SMALL, "--workdir", workdir])
        elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 5, err
    assert f"work directory {workdir} is in use by another training run (pid {os.getpid()}" in err
    assert elapsed < 30
    lock = os.path.join(workdir, ".lock")
    assert {k: v for k, v in snapshot(workdir).items() if k != ".lock"} == \
        {k: v for k, v in before.items() if k != ".lock"}
    assert os.path.exists(lock)


def test_unwritable_workdir_is_a_clear_error_at_start(tmp_path, capsys):
    code = main(["train", *SMALL, "--workdir", "/sys/zoo-test-run"])
    assert code == 2 and "cannot create work directory /sys/zoo-test-run" in capsys.readouterr().err
    assert not os.path.exists("/sys/zoo-test-run")

    workdir = tmp_path / "readonly"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    before = snapshot(workdir)
    if os.geteuid() == 0:  # root writes through permission bits; the immutable flag stops it too
        subprocess.run(["chattr", "+i", str(workdir)], check=True)
    else:
        workdir.chmod(0o555)
    try:
        code = main(["train", *SMALL, "--workdir", str(workdir)])
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(workdir)], check=True)
        workdir.chmod(0o755)
    assert code == 2 and f"work directory {workdir} is not writable" in capsys.readouterr().err
    assert snapshot(workdir) == before


def test_full_disk_at_save_is_a_clear_error_and_the_previous_checkpoint_stays(tmp_path, capsys):
    """The save's array file hits the file-size limit (RLIMIT_FSIZE): the OS fails the write, as on a full disk."""
    workdir = str(tmp_path)
    assert main(["train", *SMALL, "--workdir", workdir]) == 0
    step10 = snapshot(os.path.join(workdir, "checkpoints", "10"))
    _, saved, _ = load_run(workdir)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))  # mlp's array file is ~0.5 MB
    try:
        code = main(["train", *SMALL[:2], "20", *SMALL[3:], "--workdir", workdir])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = capsys.readouterr().err
    assert code == 3, err
    assert "could not write checkpoint step 20" in err and "File too large" in err
    assert "the newest complete checkpoint, step 10, is intact" in err
    assert torture.complete_steps(workdir) == [10]
    assert snapshot(os.path.join(workdir, "checkpoints", "10")) == step10
    _, state, _ = load_run(workdir)
    chex.assert_trees_all_equal(jax.device_get(state.params), jax.device_get(saved.params))
