"""Wheels for each host's platform, once per platform per run, compiled on builder hosts.

A run (``setup-stage``, ``deploy-act``, ``plan``) learns each host's platform from its probe
(:class:`~backstage.artefacts.platforms.Platform`) and asks :class:`PlatformWheels` for the
wheels of that platform: the first host of a platform makes them (downloads on the workstation,
and a source-only package compiled once on a builder), hosts of the same platform wait for it
and reuse them. The builder of a platform is a host with the ``builder`` role whose probe shows
that platform and a compiler, else the host asking, if it has a C compiler and Python headers.
"""

import base64
import dataclasses
import io
import sys
import tarfile
import threading
from collections import defaultdict

from backstage.artefacts import wheelhouse
from backstage.artefacts.locks import Pins, SourceBuild, Unservable, resolve_pins
from backstage.artefacts.platforms import Platform
from backstage.artefacts.requirements import Resolved
from backstage.commands import build as build_cmd
from backstage.commands import venue as venue_cmd
from backstage.engine.hosts import HostRun, Options
from backstage.errors import BackstageError
from backstage.facts.observed import Observed
from backstage.model import Production, servers
from backstage.operations.deploy import DeployInputs, deploy_inputs
from backstage.operations.steps import Step
from backstage.remote.hostside import platform_facts
from backstage.transport.local import LocalTransport

BUILDER_ROLE = "builder"


def can_build(observed: Observed) -> bool:
    facts = observed.platform or {}
    return bool(facts.get("compiler") and facts.get("headers"))


def platform_of(host: str, observed: Observed) -> Platform:
    try:
        return Platform.from_probe(observed.platform)
    except (KeyError, ValueError, BackstageError) as exc:
        raise BackstageError(f"{host}: cannot tell which wheels it installs: {exc}") from None


def builds_here(platform: Platform) -> bool:
    """Whether this workstation can compile for ``platform``: it is its own platform (same
    interpreter, architecture and glibc), and it has a C compiler and the Python headers."""
    facts = platform_facts()
    try:
        mine = Platform.from_probe(facts)
    except (KeyError, ValueError, BackstageError):
        return False
    return mine == platform and bool(facts.get("compiler") and facts.get("headers"))


class PlatformWheels:
    """Per run: one lock per (pins, platform), builds on builders, and who built what."""

    def __init__(self, production: Production, options: Options, compile: bool = True):
        """``compile=False`` (``plan``): a package not compiled yet is an error naming it."""
        self.production, self.options, self.compile = production, options, compile
        self.guard = threading.Lock()
        self.platform_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self.done: dict[tuple[str, str], Resolved] = {}
        self.builders: dict[str, tuple[HostRun, Observed] | None] = {}
        self.builds: list[dict] = []  # what was compiled where, in this run

    def resolved(self, pins: Pins, run: HostRun, observed: Observed) -> Resolved:
        """The wheels of ``pins`` for the platform of the host ``run`` probed."""
        platform = platform_of(run.name, observed)
        with self.guard:
            lock = self.platform_locks[platform.key]
        with lock:
            key = (pins.label, platform.key)
            if key not in self.done:
                try:
                    self.done[key] = pins.for_platform(
                        platform, self.builder(platform, run, observed))
                except Unservable as exc:
                    raise BackstageError(f"{run.name}: {exc}") from None
            return self.done[key]

    def builder(self, platform: Platform, run: HostRun, observed: Observed):
        """A function compiling an sdist on a builder of ``platform``, or None if none can."""
        for name in self.production.hosts:
            if BUILDER_ROLE in self.production.hosts[name].roles:
                found = self.builder_host(name, run, observed)
                if found and platform_of(name, found[1]) == platform and can_build(found[1]):
                    return lambda p, source, found=found: self.build(found[0], p, source)
        if can_build(observed):
            return lambda p, source: self.build(run, p, source)
        if builds_here(platform):
            return lambda p, source: self.build_here(p, source)
        return None

    def builder_host(self, name: str, run: HostRun, observed: Observed):
        """A builder's run and probe (probed once per run; None when it cannot be reached)."""
        if name == run.name:
            return run, observed
        with self.guard:
            if name not in self.builders:
                builder = HostRun(self.production, name, self.options)
                try:
                    self.builders[name] = (builder, builder.probe(install=False))
                except BackstageError as exc:
                    self.options.reporter.failed(name, exc)
                    builder.close()
                    self.builders[name] = None
            return self.builders[name]

    def build(self, run: HostRun, platform: Platform, source: SourceBuild) -> tuple[str, bytes]:
        self.may_compile(platform, source, run.name)
        command = build_cmd.build_wheel(run.host.python, source.sdist.name, list(source.requires))
        summary = f"compile {source.name} {source.version} for {platform.key}"
        out = run.execute(Step("build", summary, command, source.payload))
        return self.built(run.name, platform, out)

    def build_here(self, platform: Platform, source: SourceBuild) -> tuple[str, bytes]:
        """Compile on this workstation, whose platform is the hosts' (a Linux workstation or
        CI runner like them): the same command a builder host runs, run here."""
        self.may_compile(platform, source, "this workstation")
        command = build_cmd.build_wheel(sys.executable, source.sdist.name, list(source.requires))
        done = LocalTransport().run(command, stdin=source.payload())
        if not done.ok:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BackstageError(f"compiling {source.name} {source.version} for {platform.key} "
                                 f"on this workstation failed: {last}")
        return self.built("this workstation", platform, done.stdout)

    def may_compile(self, platform: Platform, source: SourceBuild, where: str) -> None:
        if not self.compile:
            raise Unservable(f"{source.name} {source.version} is not compiled for {platform.key} "
                             f"yet: a deploy compiles it on {where} (plan compiles nothing)")

    def built(self, where: str, platform: Platform, out: str) -> tuple[str, bytes]:
        """The wheel a build printed (a base64 tar), recorded as built ``where``."""
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(out.strip()))) as tar:
            [member] = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".whl")]
            name, data = member.name.rsplit("/", 1)[-1], tar.extractfile(member).read()
        self.builds.append({"host": where, "platform": platform.key, "wheel": name})
        self.options.reporter.info(f"{where}  built {name} for {platform.key}")
        return name, data

    def close(self) -> None:
        for found in self.builders.values():
            if found:
                found[0].close()


def builders_first(production: Production, names: list[str]) -> list[list[str]]:
    """``setup-stage``'s waves: the hosts with the builder role, then the others (a builder
    gets its compiler in its own setup-stage, before hosts of its platform ask it to compile
    the Emperor's uWSGI). One wave when no or every host is a builder."""
    builders = [n for n in names if BUILDER_ROLE in production.hosts[n].roles]
    others = [n for n in names if n not in builders]
    return [wave for wave in (builders, others) if wave]


def platform_inputs(production: Production, act_name: str,
                    wheels: PlatformWheels) -> DeployInputs:
    """A deploy's inputs (:func:`~backstage.operations.deploy.deploy_inputs`) whose venue is
    made per host, for the host's platform, once its probe tells the platform."""
    inputs = deploy_inputs(production, act_name)
    act = production.acts[act_name]
    venue = production.venues[act.venue]
    pins = resolve_pins(venue.requirements, servers.venue_requirements(production, act.venue))
    inputs.per_host = lambda run, observed: inputs_for_host(
        inputs, pins, wheels, act.venue, venue.python or "", run, observed)
    return inputs


def inputs_for_host(template: DeployInputs, pins: Pins, wheels: PlatformWheels, venue: str,
                    venue_python: str, run: HostRun, observed: Observed) -> DeployInputs:
    """The deploy's inputs on one host: its platform's wheels, lock and venue digest.

    When that venue is not built on the host yet, a second look hashes the wheels of the lock
    the host has under the same names, so only the others are sent.
    """
    resolved = wheels.resolved(pins, run, observed)
    digest = resolved.digest(venue_python)
    text = resolved.text.encode()
    requirements_file = venue_cmd.requirements_file(run.layout, digest).rsplit("/", 1)[1]
    if not observed.venue_built(venue, digest):
        paths = [f"{run.layout.wheelhouse}/{w.name}" for w in resolved.wheels]
        observed.learn_files(run.helper("probe", "probe", {"files": paths}, install=False))
    return dataclasses.replace(
        template, venue_digest=digest, wheels=resolved.hashes,
        venue_wheels=lambda skip: wheelhouse.pack(list(resolved.wheels), skip,
                                                  {requirements_file: text}))
