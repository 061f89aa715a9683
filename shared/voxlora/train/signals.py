"""SIGTERM and SIGINT during training: finish the step, save a checkpoint, exit 143 / 130.

`StopSignals` is installed by lora-train around the whole run. Until the recipe `arm`s it (the
first training step is about to start) a signal acts at once, as usual: SIGINT raises
KeyboardInterrupt, SIGTERM raises `Terminated`, so a long data preparation can still be cut short.
Once armed, the first signal only sets ``requested``; the training loop checks it between steps,
saves a checkpoint and the recipe raises `Stopped`. A second signal stops at once by raising
`Interrupted`, which names the newest checkpoint: those already written are complete (they are
written atomically), and ``--resume`` continues from the newest.
"""

import signal
import threading

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report


class Terminated(Exception):
    """SIGTERM before training started (nothing to save): exit 143."""


class Stopped(Exception):
    """Training stopped on a signal after saving ``checkpoint`` (None: stopped before any step)."""

    def __init__(self, signum: int, step: int, checkpoint):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        if checkpoint is None:
            text = f"stopped by {name} before the first step; nothing to resume, run the same command again"
        else:
            text = (
                f"stopped by {name} after step {step}, saved {checkpoint}; "
                "to continue, run the same command with --resume"
            )
        super().__init__(text)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 128 + self.signum)


class Interrupted(Exception):
    """A second signal once training had started: stopped at once, without saving this step."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped at once by a second {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 128 + self.signum)

    def explain(self, out) -> str:
        """The message for the user, naming the newest checkpoint in ``out`` (all are complete)."""
        from voxlora.train.checkpoint import checkpoints

        saved = checkpoints(out)
        if not saved:
            return f"{self}; no checkpoint saved yet, nothing to resume: run the same command again"
        return f"{self}; newest checkpoint {saved[-1]}; to continue, run the same command with --resume"


class StopSignals:
    """A context manager catching SIGTERM and SIGINT; ``requested`` is the signal number or None.

    >>> with StopSignals() as stop:   # doctest: +SKIP
    ...     stop.arm()
    ...     for step in steps:
    ...         if stop.requested: break
    """

    def __init__(self):
        self.requested: int | None = None
        self.armed = False
        self._before: dict = {}

    def arm(self) -> None:
        self.armed = True

    def _handle(self, signum, frame) -> None:
        if self.armed and self.requested is None:
            self.requested = signum
            return
        signal.signal(signum, self._before.get(signum, signal.SIG_DFL))  # a second signal: at once
        if self.armed:
            raise Interrupted(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated()

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread
            for signum in EXIT_CODES:
                self._before[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._before.items():
            signal.signal(signum, handler)
        self._before.clear()
