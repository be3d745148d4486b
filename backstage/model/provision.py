"""What ``setup-stage`` must install and configure on a fresh host: decided from probed facts.

Pure decisions, no shell: :func:`decide` takes what the probe found (:class:`HostFacts`) and
returns a :class:`Provisioning` (the Debian packages to install, the sysctl file to write),
or raises :class:`ProvisionError` with the one line to show when the host lacks something and
has no way to install it. The commands that carry it out are in
:mod:`backstage.commands.provision`.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSCTL_FILE = "/etc/sysctl.d/60-backstage.conf"


class ProvisionError(ValueError):
    """A host lacks a package and has no package source to install it from."""


@dataclass(frozen=True)
class HostFacts:
    """What the probe found about a host's packages and settings.

    ``python`` is the host Python's ``major.minor``; ``default_python`` whether it is the
    distribution's ``python3`` (whose packages are named ``python3-*``, others ``python3.N-*``).
    ``sources``: whether apt has at least one package source configured. ``libpython`` and
    ``libxml2``: whether the shared libraries the Emperor's uWSGI links are there (a uWSGI
    built against Debian's Python embeds it through libpython, and links libxml2 when the
    machine that built it had it).
    """

    python: str
    default_python: bool = True
    nginx: bool = False
    venv: bool = False
    compiler: bool = False
    headers: bool = False
    libpython: bool = True
    libxml2: bool = True
    apt: bool = True
    sources: bool = True
    somaxconn: int | None = None
    sysctl_text: str | None = None
    systemd: bool = False
    nginx_enabled: bool = False


@dataclass(frozen=True)
class Provisioning:
    """What to do: packages to install (in this order), the sysctl file to write (or None),
    whether to raise the running value now, and whether to enable nginx at boot."""

    packages: tuple[str, ...] = ()
    sysctl_text: str | None = None
    raise_somaxconn: bool = False
    enable_nginx: bool = False

    def __bool__(self) -> bool:
        return bool(self.packages or self.sysctl_text or self.raise_somaxconn
                    or self.enable_nginx)

    def changes(self) -> list[str]:
        """One phrase per change, for plans and reports."""
        said = []
        if self.packages:
            said.append(f"install packages {' '.join(self.packages)}")
        if self.sysctl_text:
            said.append(f"write {SYSCTL_FILE}")
        if self.enable_nginx:
            said.append("enable nginx at boot")
        return said


def packages_needed(facts: HostFacts, builder: bool = False) -> tuple[str, ...]:
    """Debian packages the stage needs that the host lacks: nginx, the venv module, the
    libraries of the Emperor's uWSGI, and on a builder host a C compiler and the Python
    headers."""
    python = "python3" if facts.default_python else f"python{facts.python}"
    wanted = [("nginx", facts.nginx), (f"{python}-venv", facts.venv),
              (f"libpython{facts.python}", facts.libpython), ("libxml2", facts.libxml2)]
    if builder:
        wanted += [("gcc", facts.compiler), (f"{python}-dev", facts.headers)]
    return tuple(name for name, present in wanted if not present)


def sysctl_text(facts: HostFacts, backlog: int) -> str | None:
    """The sysctl file to write so ``net.core.somaxconn`` is at least ``backlog`` after a reboot
    too; None when the file there already says so (whatever else it says)."""
    current = configured_somaxconn(facts.sysctl_text)
    if current is not None and current >= backlog:
        return None
    value = max(backlog, facts.somaxconn or 0)
    return f"# Written by Backstage: uWSGI vassals listen with a backlog of {backlog}.\n" \
           f"net.core.somaxconn = {value}\n"


def configured_somaxconn(text: str | None) -> int | None:
    """The value a sysctl file sets for net.core.somaxconn (its last line setting it)."""
    value = None
    for line in (text or "").splitlines():
        key, sep, setting = line.partition("=")
        if sep and key.strip() in ("net.core.somaxconn", "net/core/somaxconn"):
            value = int(setting.strip()) if setting.strip().isdigit() else value
    return value


def decide(host: str, facts: HostFacts, backlog: int, builder: bool = False) -> Provisioning:
    """What to install and write on a host the system layout runs on (as root)."""
    packages = packages_needed(facts, builder)
    if packages and not (facts.apt and facts.sources):
        why = "no apt-get" if not facts.apt else "no apt package source"
        raise ProvisionError(
            f"{host}: {', '.join(packages)} not installed and the host has {why}: install "
            f"them ('apt-get install {' '.join(packages)}') or configure a package source")
    return Provisioning(
        packages=packages,
        sysctl_text=sysctl_text(facts, backlog),
        raise_somaxconn=facts.somaxconn is not None and facts.somaxconn < backlog,
        enable_nginx=facts.systemd and ("nginx" in packages or not facts.nginx_enabled),
    )
