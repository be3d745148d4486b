"""The user's terminal during an interactive command: raw mode, and its size as it changes."""

import os
import signal
import termios
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from backstage.transport.base import Pty


def pty_of(fd: int) -> Pty:
    """The pseudo-terminal a remote command gets: the user's terminal type and size."""
    size = os.get_terminal_size(fd)
    return Pty(os.environ.get("TERM") or "xterm", size.columns, size.lines)


@contextmanager
def raw_terminal(fd: int, on_resize: Callable[[Pty], None]) -> Iterator[None]:
    """Pass every key to the remote command (Ctrl-C included: it is the remote's to handle),
    and report size changes; the terminal is restored whatever happens. Main thread only."""
    saved = termios.tcgetattr(fd)
    previous = signal.signal(signal.SIGWINCH, lambda *_: on_resize(pty_of(fd)))
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
