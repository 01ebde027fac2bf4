"""Graceful stop on SIGTERM / SIGINT: finish the step, checkpoint, exit.

Cloud machines announce preemption with SIGTERM (and Ctrl-C sends SIGINT).
Inside :class:`PreemptionGuard` the first such signal only sets a flag that
the training loop reads after each step; it then saves a checkpoint, waits
for it to commit and raises :class:`Preempted`. A second signal restores the
default action and re-sends itself, so the process dies at once (as a kill
would: checkpoints are atomic, so this loses at most the steps since the last
one).

A guard entered while an outer one is installed (the ``zoo`` command line installs
its own before importing JAX) takes over a signal the outer one already noted, so
a Ctrl-C during imports or the first compile stops the run at its next check.
"""

from __future__ import annotations

import os
import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """Training stopped on a signal after saving a checkpoint; rerunning resumes.

    Attributes:
      signal_name: "SIGTERM" or "SIGINT".
      step: the step of the checkpoint written before stopping (``saved``), or the step the
        run had restored when the signal came before its first step.
      workdir: the run's work directory.
      saved: False when the signal came before the first step: nothing new was written.
    """

    def __init__(self, signal_name: str, step: int, workdir: str, *, saved: bool = True):
        self.signal_name, self.step, self.workdir, self.saved = signal_name, step, workdir, saved
        if saved:
            where = f"at step {step}; the checkpoint of step {step} is saved in {workdir}"
        elif step:
            where = f"before training from step {step}; {workdir} is as it was (newest checkpoint: step {step})"
        else:
            where = f"before the first step; no checkpoint was written to {workdir}"
        super().__init__(f"stopped by {signal_name} {where}. Rerun the same command to resume.")


class PreemptionGuard:
    """Context manager: the first SIGTERM/SIGINT sets :attr:`signal_name`, the second aborts.

    Handlers are installed only from the main thread (Python allows no other);
    elsewhere the guard is inert and :attr:`active` is False. The previous
    handlers are restored on exit, so library callers keep theirs.
    """

    def __init__(self, signals=SIGNALS):
        self.signals = tuple(signals)
        self.signal_name: str | None = None
        self.active = False
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        """True once a stop signal has arrived."""
        return self.signal_name is not None

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal_name is not None:  # second signal: die of it now
            os.write(2, f"\nzoo: second {name}: aborting now\n".encode())
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.signal_name = name
        # os.write, not print: the handler may interrupt a print to stderr (the progress bar)
        os.write(2, f"\nzoo: received {name}: finishing the current step, saving a checkpoint (none before the "
                    f"first step), then exiting (send it again to abort at once)\n".encode())

    def __enter__(self) -> "PreemptionGuard":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                previous = signal.getsignal(signum)
                self._previous[signum] = previous
                # an outer guard (the CLI's) that already caught a signal hands it on
                noted = getattr(getattr(previous, "__self__", None), "signal_name", None)
                if self.signal_name is None and isinstance(noted, str):
                    self.signal_name = noted
                signal.signal(signum, self._handle)
            self.active = True
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            # None: the previous handler was not installed from Python; the default is the best we can restore
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
        self.active = False


__all__ = ["Preempted", "PreemptionGuard", "SIGNALS"]
