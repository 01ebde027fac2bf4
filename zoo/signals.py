"""Stop signals as a flag: the first SIGTERM / SIGINT is noted, a second one kills the process at once.

Standard library only, so the CLI can install it before anything imports JAX (a
Ctrl-C raised as KeyboardInterrupt from inside XLA gives a traceback, and often a
segfault at exit). ``zoo.train.PreemptionGuard`` is the training loop's kind of it;
an inner guard takes over a signal an outer one already noted.
"""

from __future__ import annotations

import os
import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Context manager: the first of ``signals`` sets :attr:`signal_name`, the second aborts.

    Handlers are installed only from the main thread (Python allows no other);
    elsewhere it is inert and :attr:`active` is False. The previous handlers are
    restored on exit, so library callers keep theirs.
    """

    # what the first signal's one line on stderr says will happen
    first_message = "stopping at the next safe point"

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
        os.write(2, f"\nzoo: received {name}: {self.first_message} (send it again to abort at once)\n".encode())

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                previous = signal.getsignal(signum)
                self._previous[signum] = previous
                # an outer one (the CLI's) that already caught a signal hands it on
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


__all__ = ["SIGNALS", "StopSignals"]
