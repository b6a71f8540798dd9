"""A training run killed right after a checkpoint was written, for every family's resume tests."""

from __future__ import annotations

from transformers import TrainerCallback


class SimulatedKill(Exception):
    """Raised by :class:`KillAfterSave`: the run stops as a node failure would stop it."""


class KillAfterSave(TrainerCallback):
    """Stops training right after the checkpoint of optimiser step ``step`` is on disk."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise SimulatedKill(f"killed after checkpoint-{self.step}")
