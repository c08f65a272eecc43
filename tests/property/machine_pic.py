"""The machine's interrupt input as tests see it (vmm/machine.py set_irq): an unchanged level is dropped, then the
monitor's filter (devices/pvirq.py) may take the change, and the rising edges left are what the interrupt
controller would deliver, by line, in order."""

from __future__ import annotations


class MachinePic:
    def __init__(self) -> None:
        self.irq_filter = None
        self.levels: dict[int, bool] = {}
        self.edges: list[int] = []      # lines of the rising edges the controller saw

    def set_irq(self, line: int, level: bool) -> None:
        if self.levels.get(line) == level:
            return
        self.levels[line] = level
        if self.irq_filter is not None and self.irq_filter(line, level):
            return
        if level:
            self.edges.append(line)
