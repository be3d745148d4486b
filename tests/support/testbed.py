"""A testbed for tests and benchmarks: a fleet, a copy of the example act, an inventory, load.

Everything here runs real parts: the ``backstage`` program in a subprocess, real fleet hosts,
and load generated from inside a host's network namespace against its loopback only.
"""

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from backstage.sandbox.fleet import Fleet
from backstage.sandbox.images import Image
from backstage.sandbox.machines import SystemdFleet

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE = REPO / "examples" / "storefront"
DOMAIN = "shop.example.test"
SECRET_KEY = "test-secret-key-" + "k" * 50


@dataclass
class Stage:
    """A started fleet, a copy of the example act and an inventory pointing at both."""

    fleet: Fleet
    work: Path
    source: Path
    inventory: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return backstage(*args, "--inventory", str(self.inventory), cwd=self.work, check=check)

    def give_tool(self, host: str, binary: Path) -> None:
        """Put a program on root's PATH on one host only (its /root is its own): how tests
        give a host ``uv`` without installing it for the whole machine."""
        home = self.fleet.host(host).workdir / "root"
        (home / ".local" / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, home / ".local" / "bin" / binary.name)
        (home / ".bashrc").write_text('export PATH="$HOME/.local/bin:$PATH"\n')

    def page(self, path: str = "/", host: str = "h1", port: int = 80) -> tuple[int, str]:
        return self.fleet.http(host, path, port=port, host_header=DOMAIN)

    def post(self, path: str, data: str, host: str = "h1", port: int = 80) -> str:
        return self.fleet.run(host, ["curl", "-sS", "--noproxy", "*", "-H", f"Host: {DOMAIN}",
                                     "--data", data, f"http://127.0.0.1:{port}{path}"]).stdout


def backstage(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``backstage`` program as a user would, capturing its output.

    A Python traceback in its output is an error whatever the exit code: Backstage says what
    went wrong in one line (an act's own traceback is shown indented, as a step's output).
    """
    done = subprocess.run([sys.executable, "-m", "backstage", *args], cwd=cwd, text=True, check=False,
                          capture_output=True, timeout=600)
    output = done.stdout + done.stderr
    if re.search(r"^Traceback \(most recent call last\):", output, re.MULTILINE):
        raise AssertionError(f"backstage {' '.join(args)} printed a traceback:\n{done.stderr}")
    if check and done.returncode != 0:
        raise AssertionError(f"backstage {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


SQLITE_DATABASES = "[databases.users]\n[databases.greetings]\n"


def inventory_text(fleet: Fleet, source: Path, secrets: Path, hosts: dict[str, str],
                   databases: str = SQLITE_DATABASES) -> str:
    host_tables = "\n".join(f"[hosts.{name}]\n{body}\n" for name, body in hosts.items())
    return f"""
[ssh]
config = "{fleet.ssh_config}"

{host_tables}
# The suite's deploys do not watch traffic after their switch (3 s each by default):
# tests/fleet/test_bake.py and test_lease_converge.py give the act its own bake.
[defaults.acts]
bake = 0

[venues.storefront]
requirements = "{source}/requirements.txt"

[acts.storefront]
venue = "storefront"
source = "{source}"
settings = "storefront.settings"
databases = ["users", "greetings"]
secrets = "{secrets}"
health = {{ path = "/healthz" }}

{databases}
[gigs.shop]
act = "storefront"
domains = ["{DOMAIN}"]
"""


def make_stage(work: Path, production: str, hosts: dict[str, str], users=(),
               prefix: str = "bs", databases: str = SQLITE_DATABASES,
               secrets: dict[str, str] | None = None, requirements: tuple[str, ...] = (),
               shared: Path | None = None, userlands: dict[str, Path] | None = None,
               image: Image | None = None, images: dict[str, Image] | None = None) -> Stage:
    """Start a fleet with the given hosts (name -> TOML body) and write the inventory.

    ``databases`` replaces the inventory's database tables, ``secrets`` adds to the secrets
    file, ``requirements`` to the act's requirements, ``shared`` is the fleet's shared
    directory and ``userlands`` the hosts running another Debian release (see :class:`Fleet`).
    With an ``image``, hosts are systemd hosts booted from it, or from their own in
    ``images`` (see :mod:`backstage.sandbox.machines`).
    """
    if image:
        fleet = SystemdFleet(work / "fleet", image, prefix=prefix, shared=shared)
        fleet.start(list(hosts), users=users, images=images)
    else:
        fleet = Fleet(work / "fleet", prefix=prefix, shared=shared)
        fleet.start(list(hosts), users=users, userlands=userlands)
    source = work / "storefront"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("var", "__pycache__"))
    if requirements:
        with (source / "requirements.txt").open("a") as f:
            f.write("".join(f"{line}\n" for line in requirements))
    secrets_file = work / "secrets.env"
    values = {"DJANGO_SECRET_KEY": SECRET_KEY, **(secrets or {})}
    secrets_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    (work / "inventories").mkdir()
    inventory = work / "inventories" / f"{production}.toml"
    inventory.write_text(inventory_text(fleet, source, secrets_file, hosts, databases))
    return Stage(fleet, work, source, inventory)


def make_wheel(folder: Path, name: str, version: str) -> Path:
    """A small pure-Python wheel in ``folder``: a package ``name`` (a module of that name,
    ``VERSION = version``), for requirements that must resolve without any index."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}"
    files = {
        f"{module}.py": f"VERSION = {version!r}\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: backstage-testbed\n"
                                    "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},sha256={record_digest(text)},{len(text.encode())}"
              for path, text in files.items()]
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    return wheel


def record_digest(text: str) -> str:
    """A file's hash as a wheel's RECORD writes it."""
    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def processes(stage: Stage, host: str, needle: str) -> list[str]:
    """Command lines of the host's processes that contain ``needle``."""
    out = stage.fleet.run(host, ["ps", "-eo", "pid,args"]).stdout
    return [line for line in out.splitlines()[1:] if needle in line and "ps -eo" not in line]


class Load:
    """Closed-loop HTTP load on a host's gig, from inside the host's network namespace."""

    def __init__(self, stage: Stage, host: str = "h1", connections: int = 10,
                 path: str = "/", port: int = 80):
        self.stop_file = stage.work / f"load-stop-{host}"
        ready = stage.work / f"load-ready-{host}"
        self.stop_file.unlink(missing_ok=True)
        ready.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", stage.fleet.host(host).netns, sys.executable, "-m",
             "tests.support.loadgen", "--host", DOMAIN, "--path", path, "--port", str(port),
             "--connections", str(connections), "--stop-file", str(self.stop_file),
             "--ready-file", str(ready)],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
        )
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def finish(self) -> dict:
        self.stop_file.touch()
        out, _ = self.process.communicate(timeout=60)
        return json.loads(out)
