"""Where ``rekindle run`` writes: log lines, plus a live bar on a terminal.

On a TTY the bar of the epoch in progress is redrawn in place under the log
lines; anywhere else (a pipe, CI, a file) only whole lines are written, so the
output reads the same in a log.
"""

from __future__ import annotations

import shutil
from typing import TextIO

_CLEAR_LINE = "\r\x1b[K"


class Console:
    """Writes lines, and on a terminal a bar that stays below them."""

    def __init__(self, stream: TextIO, *, live: bool) -> None:
        """``live``: redraw a bar in place (only sensible on a terminal)."""
        self._stream = stream
        self._live = live
        self._bar: str | None = None

    @classmethod
    def for_stream(cls, stream: TextIO, *, progress: bool = True) -> Console:
        """A console that shows bars only when ``stream`` is a terminal and ``progress`` is on."""
        is_tty = hasattr(stream, "isatty") and stream.isatty()
        return cls(stream, live=progress and is_tty)

    @property
    def live(self) -> bool:
        """Whether bars are drawn."""
        return self._live

    def line(self, text: str) -> None:
        """Write one line above the bar."""
        if self._live and self._bar is not None:
            self._stream.write(_CLEAR_LINE)
        self._stream.write(text + "\n")
        if self._live and self._bar is not None:
            self._stream.write(self._fit(self._bar))
        self._stream.flush()

    def bar(self, text: str | None) -> None:
        """Show ``text`` as the bar (``None`` removes it); ignored when not live."""
        if not self._live or text == self._bar:
            return
        self._bar = text
        self._stream.write(_CLEAR_LINE + (self._fit(text) if text is not None else ""))
        self._stream.flush()

    def close(self) -> None:
        """Remove the bar so that what follows starts on a clean line."""
        self.bar(None)

    def _fit(self, text: str) -> str:
        """Cut ``text`` to the terminal width so that it never wraps."""
        width = shutil.get_terminal_size((100, 24)).columns
        return text if len(text) < width else text[: max(width - 1, 1)]
