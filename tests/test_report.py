"""Progress for people (backstage/engine/report.py): on a terminal, steps still running show
their elapsed time (a venue build or an upload can take minutes); in a pipe, only lines."""

import io
import re
import time

from rich.console import Console

from backstage.engine.report import Reporter


def test_on_a_terminal_a_running_step_shows_its_elapsed_time_until_it_ends():
    out = io.StringIO()
    reporter = Reporter(Console(file=out, force_terminal=True, width=80))
    reporter.started("h1", "venue", "building venue shop")
    reporter.started("h2", "upload", "")
    time.sleep(0.3)
    assert reporter.running.live.is_started
    reporter.finished("h1", "venue", 0.3, ok=True)
    assert reporter.running.live.is_started  # h2 still uploads
    reporter.ended("h2", "upload")  # raised: no "ok" line, and its live line goes too
    assert not reporter.running.live.is_started
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # colours, cursor moves
    assert "h1  venue" in text and "h2  upload" in text and "0:00:00" in text
    assert "building venue shop" in text and "ok 0.30s" in text


def test_in_a_pipe_there_are_only_lines():
    out = io.StringIO()
    reporter = Reporter(Console(file=out, width=80))
    assert reporter.running is None
    reporter.started("h1", "venue", "building venue shop")
    reporter.finished("h1", "venue", 1.5, ok=True)
    assert out.getvalue() == "h1  venue    building venue shop\nh1  venue    ok 1.50s\n"
