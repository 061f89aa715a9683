"""lora-train's progress bars: tqdm on stderr (clips encoded, steps trained), only on a terminal."""


class Bars:
    """tqdm bars on stderr (clips encoded, steps trained: total, rate and ETA), only on a terminal."""

    def __init__(self, enabled: bool, file=None):
        self.enabled, self.bars, self.file = enabled, {}, file

    def _update(self, name: str, unit: str, total=None, initial=0, n=1) -> None:
        if self.enabled:
            from tqdm import tqdm

            if name not in self.bars:
                self.bars[name] = tqdm(desc=name, unit=unit, leave=False, total=total, initial=initial,
                                       file=self.file, dynamic_ncols=True)  # fmt: skip
            self.bars[name].update(n)

    def total(self, steps: int, done: int) -> None:
        """The steps bar knows the run's length (and a resumed run's steps done): rate and ETA."""
        self._update("train", "step", total=steps, initial=done, n=0)

    def clip(self, n: int) -> None:
        self._update("codes", "clip")

    def step(self, state) -> None:
        self._update("train", "step")

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
