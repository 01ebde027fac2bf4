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

from zoo.signals import SIGNALS, StopSignals


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


class PreemptionGuard(StopSignals):
    """Context manager: the first SIGTERM/SIGINT sets :attr:`signal_name`, the second aborts.

    Handlers are installed only from the main thread (Python allows no other);
    elsewhere the guard is inert and :attr:`active` is False. The previous
    handlers are restored on exit, so library callers keep theirs.
    """

    first_message = "finishing the current step, saving a checkpoint (none before the first step), then exiting"


__all__ = ["Preempted", "PreemptionGuard", "SIGNALS"]
