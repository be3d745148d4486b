"""The bake's host side on a written access log (no hosts): which requests count, on which
side of the switch, and when the verdict fails; the access log format nginx is given is the
one the helper parses."""

import json
import os
import re
import time

import pytest

from backstage.operations.bake import batch_bakes, read_bake
from backstage.remote import hostside
from backstage.render import ACCESS_LOG_FORMAT

AGENT = "loadgen/1.0"


def line(began: float, status: int = 200, upstream: str = "200", took: float = 0.004,
         agent: str = AGENT, address: str = "unix:/srv/backstage/p/run/storefront.sock") -> str:
    """One access log line as nginx writes it with ACCESS_LOG_FORMAT."""
    values = {"remote_addr": "127.0.0.1", "remote_user": "-",
              "time_local": "29/Nov/2026:18:00:00 +0000", "request": 'GET /?q=\\x22a\\x22 HTTP/1.1',
              "status": str(status), "body_bytes_sent": "512", "http_referer": "-",
              "http_user_agent": agent, "msec": f"{began + took:.3f}",
              "request_time": f"{took:.3f}", "upstream_status": upstream,
              "upstream_addr": address}
    return re.sub(r"\$([a-z_]+)", lambda m: values[m.group(1)], ACCESS_LOG_FORMAT) + "\n"


def test_the_helper_parses_the_format_nginx_is_given():
    began = 1764439200.5
    assert hostside.access_request(line(began).rstrip("\n")) == pytest.approx((began, False))
    assert hostside.access_request(line(began, 502, "502").rstrip("\n"))[1] is True
    # nginx's own 200 over an upstream's 500 (an error page it served) is an upstream error.
    assert hostside.access_request(line(began, 200, "500").rstrip("\n"))[1] is True
    # Static files (no upstream) and Backstage's own checks are not the release's traffic.
    assert hostside.access_request(line(began, 500, "-", address="-")) is None
    assert hostside.access_request(line(began, agent=hostside.CHECK_AGENT).rstrip("\n")) is None
    assert hostside.access_request('127.0.0.1 - - [x] "GET / HTTP/1.1" 200 5 "-" "curl"') is None


def baked(tmp_path, lines: list[str], seconds=1.0, max_error_rate=0.01, min_errors=5,
          since=None):
    """Run the helper's bake over a log of these lines, the switch at ``since``."""
    tmp_path.mkdir(exist_ok=True)
    log, link = tmp_path / "access.log", tmp_path / "storefront.sock"
    log.write_text("".join(lines))
    link.symlink_to("storefront/r1.sock")
    os.utime(link, (since, since), follow_symlinks=False)
    history = tmp_path / "history.jsonl"
    result = hostside.bake({"logs": [str(log)], "link": str(link), "seconds": seconds,
                            "max_error_rate": max_error_rate, "min_errors": min_errors,
                            "history": str(history), "record": {"event": "bake"}})
    return result, json.loads(history.read_text().splitlines()[-1])


def traffic(since: float, requests: int, failed_every: int | None, start=0.01, span=0.8):
    return [line(since + start + span * i / requests,
                 *((500, "500") if failed_every and i % failed_every == 0 else (200, "200")))
            for i in range(requests)]


def test_a_release_failing_five_percent_fails_a_one_percent_bake_and_passes_ten(tmp_path,
                                                                                capsys):
    since = time.time() - 0.5
    before = traffic(since, 200, None, start=-0.9)  # the old release: no error
    after = traffic(since, 400, 20)  # 20 of 400 fail
    failed, record = baked(tmp_path / "a", before + after, since=since)
    assert failed["ok"] is False and (failed["requests"], failed["errors"]) == (400, 20)
    assert failed["before"] == {"requests": 200, "errors": 0}
    assert "20 of 400 requests failed" in failed["error"] and "past max_error_rate 1.0%" \
        in failed["error"]
    assert record["event"] == "bake" and record["ok"] is False and record["errors"] == 20
    assert read_bake(capsys.readouterr().out) == failed
    passed, _ = baked(tmp_path / "b", before + after, max_error_rate=0.1, since=since)
    assert passed["ok"] is True and passed["error"] is None


def test_errors_the_old_release_had_too_are_not_held_against_the_new(tmp_path):
    since = time.time() - 0.5
    lines = traffic(since, 200, 20, start=-0.9) + traffic(since, 400, 20)
    result, _ = baked(tmp_path, lines, since=since)
    assert result["ok"] is True and result["before"] == {"requests": 200, "errors": 10}


def test_fewer_failures_than_the_minimum_pass_low_traffic(tmp_path):
    since = time.time() - 0.5
    result, _ = baked(tmp_path, traffic(since, 8, 2), since=since)  # 4 of 8 failed
    assert result["ok"] is True and result["errors"] == 4


def test_a_broken_release_fails_early_without_waiting_out_the_window(tmp_path):
    since = time.time() - 0.5
    started = time.monotonic()
    result, _ = baked(tmp_path, traffic(since, 100, 1, span=0.4), seconds=30, since=since)
    assert result["ok"] is False and result["errors"] == 100
    assert time.monotonic() - started < 2


def test_requests_that_began_before_the_switch_count_for_the_old_release(tmp_path):
    since = time.time() - 0.5
    # Logged after the switch, but began 0.1 s before it (a slow request of the old release).
    slow = line(since - 0.1, 500, "500", took=0.3)
    result, _ = baked(tmp_path, [slow] * 10 + traffic(since, 50, None), since=since)
    assert result["ok"] is True
    assert result["before"] == {"requests": 10, "errors": 10} and result["errors"] == 0


def test_batches_add_their_hosts_bakes_up():
    one = {"ok": True, "requests": 10, "errors": 1, "before": {"requests": 9, "errors": 0}}
    two = {"ok": False, "requests": 20, "errors": 9, "before": {"requests": 8, "errors": 1}}
    assert batch_bakes([["h1", "h2"], ["h3"]], {"h1": one, "h2": two, "h3": None}) == [
        {"ok": False, "requests": 30, "errors": 10, "before": {"requests": 17, "errors": 1}},
        None]
    assert read_bake("{}\nnothing here\n") is None


def test_the_summary_prints_each_hosts_and_each_batchs_bake():
    from io import StringIO

    from rich.console import Console

    from backstage.engine.rollout import HostOutcome, RolloutReport
    from backstage.tasks.reports import print_bakes

    one = {"ok": True, "requests": 10, "errors": 0, "before": {"requests": 9, "errors": 0}}
    two = {"ok": False, "requests": 20, "errors": 9, "before": {"requests": 8, "errors": 1}}
    outcomes = {h: HostOutcome(h, bake=b) for h, b in (("h1", one), ("h2", two), ("h3", None))}
    report = RolloutReport("p", "storefront", "r2", outcomes, batches=[["h1", "h2"], ["h3"]])
    out = StringIO()
    print_bakes(Console(file=out, width=200), report)
    assert out.getvalue().splitlines() == [
        "h1  bake: 0 of 10 requests failed since the switch; 0 of 9 before it: passed",
        "h2  bake: 9 of 20 requests failed since the switch; 1 of 8 before it: failed",
        ("batch 1 (h1, h2)  bake: 9 of 30 requests failed since the switch; 1 of 17 before "
         "it: failed")]
