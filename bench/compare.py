"""Backstage, Ansible and pyinfra side by side: the same Django app on the same fleet hosts.

The storefront example is deployed to the same ``--hosts`` fleet hosts (default 2) by

* Backstage (``backstage deploy-act storefront``, the gig on port 80);
* an ansistrano-style Ansible playbook, ``bench/ansible/deploy.yml`` (port 8081): releases dir,
  a venv per requirements hash built by pip from a wheel directory, migrate, collectstatic, the
  uWSGI vassal, the nginx vhost, the ``current`` symlink switch, a health check through nginx;
* pyinfra 3, ``bench/pyinfra/deploy.py`` (port 8082), the same steps.

Each tool has its own directory on the hosts and its own uWSGI Emperor; nginx is shared. The
one-time host preparation (Backstage's ``setup-stage``; for the other two an app user, an
Emperor venv and the Emperor started) is not timed. Every tool installs from the same wheels:
Backstage from its workstation cache, the others from a wheel directory of the same files.

Scenarios, each run ``--runs`` times with the tools interleaved (their order rotates per run):

* cold deploy incl. venv: new fleet hosts every run, after the untimed preparation;
* warm redeploy of a one-line template change (requirements unchanged);
* no-op re-run (same code again);
* rollback to the previous release (after Backstage's old vassal retired: see bench/deploy.py).

Each cell is the median wall time of the tool's command as a user runs it (CLI start
included), with min-max. Needs the ``bench`` extra (``pip install -e .[bench]``: ansible-core
and pyinfra) and root. Run: ``.venv/bin/python bench/compare.py [--runs N] [--hosts N]``.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import edit, fresh_fleet, machine, median, table, timed

from backstage.artefacts import requirements, wheelhouse
from backstage.commands.stage import UWSGI_REQUIREMENT
from tests.support.testbed import DOMAIN, SECRET_KEY, Stage, make_stage

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PREFIX = "bscmp"
PRODUCTION = "cmp"
HOME = "greetings/templates/greetings/home.html"
SCENARIOS = ("warm redeploy, one-line change", "no-op re-run", "cold deploy incl. venv",
             "rollback")


class Tool:
    """One deploy tool: untimed host preparation, then timed deploys and rollbacks."""

    name = ""

    def __init__(self, stage: Stage, wheels: Path, hosts: list[str]):
        self.stage, self.wheels, self.hosts = stage, wheels, hosts

    def prepare(self) -> None:
        """The one-time host preparation, not timed."""

    def deploy(self) -> float:
        raise NotImplementedError

    def rollback(self) -> float:
        raise NotImplementedError

    def stop(self) -> None:
        """End what :meth:`prepare` left running on the workstation."""

    def check(self, marker: str) -> None:
        """Every host serves the page with ``marker`` through this tool's nginx vhost."""
        for host in self.hosts:
            status, body = self.stage.fleet.http(host, "/", port=self.port, host_header=DOMAIN)
            if status != 200 or marker not in body:
                raise AssertionError(f"{self.name} on {host}: {status}, {marker!r} not served")


class Backstage(Tool):
    name, port = "Backstage", 80

    def prepare(self) -> None:
        timed(self.stage, "setup-stage")

    def deploy(self) -> float:
        return timed(self.stage, "deploy-act", "storefront").seconds

    def rollback(self) -> float:
        return timed(self.stage, "rollback", "storefront").seconds


class Classic(Tool):
    """What the Ansible and pyinfra deploys share: their own app root on each host, a user to
    run the app, and an Emperor of their own (the preparation a user would do once)."""

    def __init__(self, stage: Stage, wheels: Path, hosts: list[str], port: int):
        super().__init__(stage, wheels, hosts)
        self.port = port
        self.root = f"/srv/cmp-{self.name.lower()}"
        self.work = stage.work / self.name.lower()
        self.work.mkdir(exist_ok=True)
        self.variables = {
            "app_root": self.root, "app_port": port, "domain": DOMAIN, "secret_key": SECRET_KEY,
            "source": str(stage.source), "wheels_dir": str(wheels),
            "requirements": str(stage.source / "requirements.txt"),
            "tool": self.name.lower(), "work": str(self.work),
        }

    def prepare(self) -> None:
        shared = self.stage.fleet.shared / "wheels"
        if not shared.exists():
            shutil.copytree(self.wheels, shared)
        emperor = f"{self.root}/emperor"
        script = (
            "set -e; id storefront >/dev/null 2>&1 || useradd --system --shell /bin/sh "
            f"--home-dir /nonexistent storefront; mkdir -p {self.root}/vassals {self.root}/run "
            f"{self.root}/log; /usr/bin/python3 -m venv {emperor}; {emperor}/bin/pip install -q "
            f"--no-index --find-links /run/fleet-shared/wheels '{UWSGI_REQUIREMENT}'; "
            f"setsid {emperor}/bin/uwsgi --emperor {self.root}/vassals "
            f"--emperor-graceful-shutdown --daemonize {self.root}/log/emperor.log "
            "</dev/null >/dev/null 2>&1")
        for host in self.hosts:
            self.stage.fleet.run(host, script, timeout=300)

    def run(self, argv: list[str], cwd: Path, env: dict | None = None) -> float:
        started = time.monotonic()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900,
                              env=env, check=False)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            print(done.stdout[-6000:], done.stderr[-4000:], file=sys.stderr, flush=True)
            raise AssertionError(f"{self.name}: {' '.join(argv)} exited {done.returncode}")
        return seconds


class Ansible(Classic):
    name = "Ansible"

    def __init__(self, stage: Stage, wheels: Path, hosts: list[str], port: int):
        super().__init__(stage, wheels, hosts, port)
        hosts = "\n".join(self.hosts)
        (self.work / "inventory.ini").write_text(
            f"[web]\n{hosts}\n\n[web:vars]\nansible_ssh_common_args='-F {stage.fleet.ssh_config}'\n")
        (self.work / "vars.json").write_text(json.dumps(self.variables))

    def playbook(self, name: str) -> float:
        env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(self.work), "LANG": "C.UTF-8",
               "ANSIBLE_CONFIG": str(BENCH / "ansible" / "ansible.cfg"),
               "ANSIBLE_HOME": str(self.work / "ansible-home")}
        return self.run([str(BIN / "ansible-playbook"), "-i", str(self.work / "inventory.ini"),
                         "-e", f"@{self.work / 'vars.json'}", name],
                        cwd=BENCH / "ansible", env=env)

    def deploy(self) -> float:
        return self.playbook("deploy.yml")

    def rollback(self) -> float:
        return self.playbook("rollback.yml")


class Pyinfra(Classic):
    """pyinfra connects over TCP to a loopback port per host that socat forwards into the
    host's namespace: its paramiko ProxyCommand under gevent breaks the pipe on large uploads
    (an 8 MB wheel), which a real network does not have."""

    name = "pyinfra"
    FIRST_PORT = 22900

    def __init__(self, stage: Stage, wheels: Path, hosts: list[str], port: int):
        super().__init__(stage, wheels, hosts, port)
        self.forwarders: list[subprocess.Popen] = []

    def prepare(self) -> None:
        super().prepare()
        self.stop()
        fleet, known, inventory = self.stage.fleet, [], []
        keys = dict(line.split(" ", 1) for line in fleet.known_hosts.read_text().splitlines())
        for i, host in enumerate(self.hosts):
            port = self.FIRST_PORT + i
            self.forwarders.append(subprocess.Popen(
                ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                 f"EXEC:ip netns exec {fleet.host(host).netns} socat - TCP\\:127.0.0.1\\:22"]))
            known.append(f"[127.0.0.1]:{port} {keys[host]}\n")
            data = {**self.variables, "ssh_hostname": "127.0.0.1", "ssh_port": port,
                    "ssh_user": "root", "ssh_key": str(fleet.identity),
                    "ssh_known_hosts_file": str(self.work / "known_hosts"),
                    "ssh_strict_host_key_checking": "yes"}
            inventory.append(f"({host!r}, {data!r})")
        (self.work / "known_hosts").write_text("".join(known))
        (self.work / "inventory.py").write_text(f"web = [{', '.join(inventory)}]\n")
        time.sleep(0.2)  # socat listening

    def stop(self) -> None:
        for forwarder in self.forwarders:
            forwarder.terminate()
            forwarder.wait()
        self.forwarders = []

    def apply(self, name: str) -> float:
        return self.run([str(BIN / "pyinfra"), "-y", str(self.work / "inventory.py"),
                         str(BENCH / "pyinfra" / name)], cwd=self.work)

    def deploy(self) -> float:
        return self.apply("deploy.py")

    def rollback(self) -> float:
        return self.apply("rollback.py")


def wheel_directory(stage: Stage, folder: Path) -> Path:
    """The wheels Backstage ships (the act's and uWSGI's), as one folder for the others."""
    folder.mkdir()
    wanted = requirements.resolve(stage.source / "requirements.txt").wheels
    for wheel in [*wanted, *wheelhouse.for_uwsgi(UWSGI_REQUIREMENT)]:
        shutil.copy2(wheel, folder / wheel.name)
    return folder


def retired(stage: Stage, names: list[str]) -> None:
    """Wait until Backstage runs only the live release's vassal on every host (the old one
    retires about a second after a switch; before, a rollback has nothing to revive)."""
    deadline = time.monotonic() + 15
    vassals = f"/srv/backstage/{PRODUCTION}/vassals"
    for host in names:
        while sum(name.endswith(".ini") for name in
                  stage.fleet.run(host, ["ls", vassals]).stdout.split()) != 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"{host}: Backstage's old vassal not retired")
            time.sleep(0.1)


def rotated(tools: list[Tool], i: int) -> list[Tool]:
    return tools[i % len(tools):] + tools[:i % len(tools)]


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def ratio(numerator: list[float], denominator: list[float]) -> str:
    return f"{median(numerator) / median(denominator):.2f}" if numerator and denominator else "-"


def measure(stage: Stage, tools: list[Tool], runs: int, names: list[str]) -> dict:
    """Every scenario, ``runs`` times, tools interleaved; seconds per (scenario, tool)."""
    seconds = Seconds()
    for i in range(runs):
        if i:
            fresh_fleet(stage, names, PREFIX)
        for tool in tools:
            tool.prepare()
        for tool in rotated(tools, i):
            seconds["cold deploy incl. venv", tool.name].append(tool.deploy())
            tool.check("Welcome")
    retired(stage, names)
    for i in range(runs):
        edit(stage, HOME, "<h1>", f"<h1>Run {i} ")
        for tool in rotated(tools, i):
            seconds["warm redeploy, one-line change", tool.name].append(tool.deploy())
            tool.check(f"Run {i} ")
        for tool in rotated(tools, i):
            seconds["no-op re-run", tool.name].append(tool.deploy())
        retired(stage, names)
        for tool in rotated(tools, i):
            seconds["rollback", tool.name].append(tool.rollback())
        retired(stage, names)
        for tool in tools:
            tool.check("Welcome")
    return seconds


class Seconds(dict):
    """(scenario, tool) -> seconds of each run, each shown on stderr as it is measured."""

    def __missing__(self, key):
        self[key] = Progress(key)
        return self[key]


class Progress(list):
    def __init__(self, key):
        super().__init__()
        self.key = key

    def append(self, value: float) -> None:
        super().append(value)
        print(f"{self.key[0]}: {self.key[1]} {value:.2f} s", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=2)
    args = parser.parse_args()
    missing = [tool for tool in ("ansible-playbook", "pyinfra") if not (BIN / tool).exists()]
    if missing:
        sys.exit(f"bench/compare.py: {' and '.join(missing)} missing from {BIN}: install the "
                 "bench extra (.venv/bin/pip install -e '.[bench]')")
    started = time.monotonic()
    names = [f"h{i}" for i in range(1, args.hosts + 1)]
    with tempfile.TemporaryDirectory(prefix="bs-compare-") as work:
        stage = make_stage(Path(work), PRODUCTION, {h: 'roles = ["web"]' for h in names},
                           prefix=PREFIX)
        tools = []
        try:
            wheels = wheel_directory(stage, Path(work) / "wheels")
            tools = [Backstage(stage, wheels, names), Ansible(stage, wheels, names, 8081),
                     Pyinfra(stage, wheels, names, 8082)]
            seconds = measure(stage, tools, args.runs, names)
        finally:
            for tool in tools:
                tool.stop()
            stage.fleet.stop()
    header = ["scenario", *(t.name for t in tools), "Backstage / Ansible",
              "Backstage / pyinfra"]
    rows = [[s, *(cell(seconds[s, t.name]) for t in tools),
             ratio(seconds[s, "Backstage"], seconds[s, "Ansible"]),
             ratio(seconds[s, "Backstage"], seconds[s, "pyinfra"])] for s in SCENARIOS]
    print(table(header, rows))
    print(f"\n{args.runs} runs per cell on {args.hosts} fleet hosts, tools interleaved; wall "
          "seconds of each tool's command (CLI start included), median (min-max).")
    print("Ansible: pipelining on, facts off, SSH ControlPersist 60 s (its default: a re-run "
          "within a minute reuses connections); pyinfra: its SSH connector (paramiko).")
    print("Ansible and pyinfra name a release by its archive's content hash and mark it complete,"
          " so a no-op re-run unpacks, migrates and switches nothing.")
    print(machine() + f"; benchmark took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
