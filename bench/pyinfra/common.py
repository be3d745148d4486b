"""What the pyinfra deploy and rollback of the storefront share (bench/compare.py runs them).

The deploy file's variables come from the inventory's host data (compare.py writes it):
app_root, app_port, domain, secret_key, source, wheels_dir, requirements, tool, work.
"""

import hashlib
import subprocess
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def data() -> dict:
    keys = ("app_root", "app_port", "domain", "secret_key", "source", "wheels_dir",
            "requirements", "tool", "work")
    return {key: host.data.get(key) for key in keys}


def venv(d: dict) -> str:
    digest = hashlib.sha1(Path(d["requirements"]).read_bytes()).hexdigest()[:12]
    return f"{d['app_root']}/venvs/{digest}"


def archive(d: dict) -> tuple[Path, str]:
    """The source tree as a reproducible tar on the workstation, and its content hash."""
    bundle = Path(d["work"]) / f"pyinfra-{host.name}.tar"
    subprocess.run(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0",
                    "--numeric-owner", "--exclude=__pycache__", "--exclude=var",
                    "-cf", str(bundle), "-C", d["source"], "."], check=True)
    return bundle, hashlib.sha1(bundle.read_bytes()).hexdigest()[:12]


def switch(d: dict, release: str, fresh: bool = True) -> None:
    """Point `current` at the release, write its vassal (the Emperor reloads it when it
    changes) and check through nginx that the release answers; a release already live
    (``fresh`` false) only has its vassal checked."""
    if fresh:
        files.link(name="Switch the current symlink", path=f"{d['app_root']}/current",
                   target=f"{d['app_root']}/releases/{release}")
    files.template(name="The uWSGI vassal", src=str(TEMPLATES / "vassal.ini.j2"),
                   dest=f"{d['app_root']}/vassals/storefront.ini", mode="600",
                   venv=venv(d), release=release, **d)
    if fresh:
        server.shell(
            name="Health check through nginx, the release answering",
            commands=[(f"for i in $(seq 60); do curl -fsS --noproxy '*' "
                      f"-H 'Host: {d['domain']}' http://127.0.0.1:{d['app_port']}/ "
                      f"| grep -q {release} && exit 0; sleep 0.25; done; exit 1")])
