"""Zero-downtime benchmark: 100 concurrent connections on a gig through four changes.

Stages the example act on one fleet host, then keeps a closed-loop load of 100 connections on
its gig (from inside the host's network namespace, on its loopback) through a good deploy, a
deploy whose code fails to import, a deploy whose health check answers 500, a rollback, and
a deploy whose home page raises while its health check answers 200 (no smoke requests: the
bake after the switch sees the 500s and reverts; its non-2xx are what visitors saw).
Prints, per scenario: the command's exit code and wall time, requests served, socket errors and
non-2xx responses. Also prints how fast a concurrent second deploy is refused.

Run as root: ``.venv/bin/python bench/zero_downtime.py`` (about a minute). With ``--systemd``
the host is a fresh Debian 12 systemd host (see ``backstage/sandbox/machines.py``) that
``setup-stage`` provisions from its local apt repository first; with ``--systemd trixie`` a
fresh Debian 13 one (Python 3.13), with the builder role: ``setup-stage`` gives it a compiler
and compiles the Emperor's uWSGI there. ``--server gunicorn`` (or ``granian``) runs the act on
that server instead of uWSGI.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import edit

from backstage.sandbox.images import Image
from tests.support.testbed import Load, make_stage

CONNECTIONS = 100
HOME = "greetings/templates/greetings/home.html"
URLS = "storefront/urls.py"
VIEWS = "greetings/views.py"
BROKEN_IMPORT = "import no_such_module  # noqa\n"
BROKEN_HEALTH = "    return HttpResponse('broken', status=500)\n"
DOCSTRING = '    """The landing page; reads both logical databases."""\n'
BROKEN_PAGE = '    raise RuntimeError("the home page is broken")\n'


def measured(stage, label, change, *command):
    change()
    load = Load(stage, connections=CONNECTIONS)
    started = time.monotonic()
    done = stage.cli(*command, check=False)
    seconds = time.monotonic() - started
    result = load.finish()
    return [label, str(done.returncode), f"{seconds:.2f}", str(result["requests"]),
            str(result["socket_errors"]), str(result["non_2xx"])]


def concurrent_refusal(stage) -> float:
    edit(stage, HOME, "<h1>", "<h1>Again ")
    first = subprocess.Popen([sys.executable, "-m", "backstage", "deploy-act", "storefront",
                              "--inventory", str(stage.inventory)], cwd=stage.work,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = f"/srv/backstage/{stage.inventory.stem}/state/locks/act/storefront/info.json"
    while stage.fleet.run("h1", ["test", "-e", lock], check=False).returncode != 0:
        time.sleep(0.02)
    started = time.monotonic()
    refused = stage.cli("deploy-act", "storefront", check=False)
    seconds = time.monotonic() - started
    first.wait()
    assert refused.returncode != 0 and "deploy lock held" in refused.stderr
    return seconds


RELEASES = {"bookworm": "Debian 12", "trixie": "Debian 13"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systemd", nargs="?", const="bookworm", choices=list(RELEASES))
    parser.add_argument("--server", choices=["uwsgi", "gunicorn", "granian"], default="uwsgi")
    args = parser.parse_args()
    systemd, release = args.systemd is not None, args.systemd or "bookworm"
    # Debian 13's Python is not this workstation's: its host compiles uWSGI for itself.
    roles = '["web", "builder"]' if systemd and release != "bookworm" else '["web"]'
    with tempfile.TemporaryDirectory(prefix="bs-bench-") as work:
        stage = make_stage(Path(work), "bench", {"h1": f"roles = {roles}"}, prefix="bsbench",
                           image=Image(release) if systemd else None)
        try:
            if systemd:
                stage.fleet.add_apt_source("h1")
            stage.inventory.write_text(stage.inventory.read_text().replace(
                "[acts.storefront]\n", f'[acts.storefront]\nserver = "{args.server}"\n', 1))
            stage.cli("setup-stage")
            stage.cli("deploy-act", "storefront")
            rows = [
                measured(stage, "good deploy", lambda: edit(stage, HOME, "<h1>", "<h1>New "),
                         "deploy-act", "storefront"),
                measured(stage, "deploy, import error",
                         lambda: edit(stage, URLS, "from greetings", BROKEN_IMPORT + "from greetings"),
                         "deploy-act", "storefront"),
                measured(stage, "deploy, health 500",
                         lambda: (edit(stage, URLS, BROKEN_IMPORT, ""),
                                  edit(stage, VIEWS, "    for model in", BROKEN_HEALTH + "    for model in")),
                         "deploy-act", "storefront"),
                measured(stage, "rollback", lambda: edit(stage, VIEWS, BROKEN_HEALTH, ""),
                         "rollback", "storefront"),
                measured(stage, "broken page, health OK",
                         lambda: edit(stage, VIEWS, DOCSTRING, DOCSTRING + BROKEN_PAGE),
                         "deploy-act", "storefront"),
            ]
            edit(stage, VIEWS, BROKEN_PAGE, "")
            refusal = concurrent_refusal(stage)
        finally:
            stage.fleet.stop()
    header = ["scenario", "exit", "seconds", "requests", "socket errors", "non-2xx"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    host = f"a fresh {RELEASES[release]} systemd host" if systemd else "a namespace host"
    print(f"\nload: {CONNECTIONS} concurrent connections from inside {host}, GET / via nginx "
          f"to the act on {args.server}")
    print(f"concurrent second deploy refused after {refusal:.2f}s (CLI start included)")


if __name__ == "__main__":
    main()
