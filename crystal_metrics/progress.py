"""Progress of long loops, and notices: a tqdm bar on a terminal (or in a notebook), plain
periodic lines when the output goes to a file or a pipe, where a bar would fill a log with
carriage returns."""
from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

#: Seconds between two plain progress lines.
LINE_INTERVAL = 30.0


def interactive() -> bool:
    """True on a terminal or in a notebook (where tqdm draws a widget)."""
    in_notebook = any(base.__module__ == "tqdm.notebook" for base in tqdm.__mro__)
    return in_notebook or sys.stderr.isatty()


def progress(total: float | None, desc: str, unit: str = "it", enabled: bool | None = None):
    """A progress display for a loop of `total` steps (None: unknown), used as a context
    manager with `.update(n=1)`.

    `enabled`: None (default): a bar when `interactive()`, else a plain line on stderr every
    `LINE_INTERVAL` seconds (and a last one when the loop ends, if any was printed); True: a bar;
    False: nothing.
    """
    if enabled is False:
        return _Silent()
    if enabled or interactive():
        return tqdm(total=total, desc=desc, unit=unit, leave=False)
    return _Lines(total, desc, unit)


def notice(message: str) -> None:
    """One line on stderr, for the user to know what a long silent step is doing."""
    print(message, file=sys.stderr, flush=True)


class _Silent:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int = 1) -> None:
        pass


class _Lines:
    """Plain lines `desc: done/total unit (p%), t s` every LINE_INTERVAL seconds."""

    def __init__(self, total: float | None, desc: str, unit: str):
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self.start = self.last = time.monotonic()
        self.printed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.printed and exc[0] is None:
            self._line()
        return False

    def update(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self.last >= LINE_INTERVAL:
            self._line()

    def _line(self) -> None:
        self.last = time.monotonic()
        done = f"{self.done:g}/{self.total:g} {self.unit} ({100 * self.done / self.total:.0f}%)" \
            if self.total else f"{self.done:g} {self.unit}"
        notice(f"{self.desc}: {done}, {self.last - self.start:.0f} s")
        self.printed = True
