"""When lora-train keeps a checkpoint: every ``save_every`` steps or ``save_minutes`` of training,
whichever comes first, so an OOM kill or a preempted machine loses minutes, not the run.

The clock restarts at each checkpoint. Under torchrun every process must save after the same
step (process 0 writes, the others wait), so the time test is agreed: the step is due on every
process when it is due on any (one `World.max` per step, as the stop signal already is).

    due = Due(save_every=0, save_minutes=10)   # checkpoint every 10 minutes of training
    due(step)                                  # -> True when a checkpoint is due after ``step``
"""

import time


class Due:
    def __init__(self, save_every: int = 0, save_minutes: float = 0.0, world=None, clock=time.monotonic):
        self.save_every, self.seconds = save_every, save_minutes * 60
        self.world, self.clock = world, clock
        self.last = clock()

    def __call__(self, step: int) -> bool:
        due = bool(self.save_every) and step % self.save_every == 0
        if self.seconds:
            late = self.clock() - self.last >= self.seconds
            if self.world is not None and self.world.size > 1:
                late = bool(self.world.max(int(late)))
            due = due or late
        if due:
            self.last = self.clock()
        return due
