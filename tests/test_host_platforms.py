"""Artefacts for the host, not the workstation (issue 15, item 1): a host's wheel tags come
from what its probe reports (interpreter, ABI, architecture, glibc), derived with
``packaging.tags``; each pin becomes a wheel that host accepts, whatever the workstation runs,
and a package with no wheel for the host's platform is compiled on a builder of that platform,
once, or refused in one line naming the package and the platform."""

import io
import shutil
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging import tags
from packaging.utils import parse_wheel_filename

from backstage.artefacts.locks import Pins, Unservable, is_built, resolve_pins
from backstage.artefacts.platforms import Platform, abi_tag
from backstage.engine.builders import PlatformWheels, inputs_for_host
from backstage.errors import BackstageError, InventoryError
from backstage.facts.observed import Observed
from backstage.operations.deploy import DeployInputs
from backstage.remote import hostside
from tests.support.testbed import make_wheel
from tests.test_requirements import OFFLINE, project

DEBIAN_13 = Platform("cp", (3, 13), "cp313", "x86_64", (2, 41))
DEBIAN_12 = Platform("cp", (3, 11), "cp311", "x86_64", (2, 36))
OLD_GLIBC = Platform("cp", (3, 13), "cp313", "x86_64", (2, 17))
ARM = Platform("cp", (3, 13), "cp313", "aarch64", (2, 36))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKSTAGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tagged(folder: Path, name: str, version: str, tag: str) -> Path:
    """A small wheel of ``name`` whose file name carries ``tag`` (all pip reads to pick it)."""
    wheel = make_wheel(folder / ".pure", name, version)
    target = folder / f"{name.replace('-', '_')}-{version}-{tag}.whl"
    shutil.move(wheel, target)
    return target


def sdist(folder: Path, name: str, version: str) -> Path:
    """A source distribution with an in-tree build backend and no build requirements."""
    base = f"{name}-{version}"
    backend = (
        "import os\n"
        "def _meta(d):\n"
        f"    info = os.path.join(d, '{base}.dist-info'); os.makedirs(info, exist_ok=True)\n"
        "    with open(os.path.join(info, 'METADATA'), 'w') as f:\n"
        f"        f.write('Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n')\n"
        f"    return '{base}.dist-info'\n"
        "def prepare_metadata_for_build_wheel(d, config_settings=None): return _meta(d)\n"
        "def build_wheel(d, config_settings=None, metadata_directory=None):\n"
        "    raise RuntimeError('built only on builders')\n")
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                          'backend-path = ["."]\n',
        "backend.py": backend,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for file, text in files.items():
            info = tarfile.TarInfo(f"{base}/{file}")
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


def index(folder: Path) -> tuple[str, ...]:
    """pip options that read only ``folder``."""
    return ("--no-index", "--find-links", str(folder))


# --- tags ------------------------------------------------------------------------------------


def test_this_machines_tags_from_its_probe_are_packagings_own():
    """The probe's facts about this machine give exactly the tags packaging computes for it."""
    platform = Platform.from_probe(hostside.platform_facts())
    assert set(platform.tags()) == set(tags.sys_tags())


@pytest.mark.parametrize("soabi, abi", [
    ("cpython-311-x86_64-linux-gnu", "cp311"),
    ("cpython-313t-x86_64-linux-gnu", "cp313t"),
    ("pypy310-pp73-x86_64-linux-gnu", "pypy310_pp73"),
])
def test_the_abi_tag_comes_from_the_hosts_soabi(soabi, abi):
    assert abi_tag(soabi) == abi


def test_a_host_accepts_manylinux_wheels_up_to_its_glibc_and_never_another_platforms():
    assert DEBIAN_13.accepts("x-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert DEBIAN_13.accepts("x-1-cp39-abi3-manylinux_2_28_x86_64.whl")
    assert DEBIAN_13.accepts("x-1-py3-none-any.whl")
    assert not OLD_GLIBC.accepts("x-1-cp313-cp313-manylinux_2_28_x86_64.whl")
    assert OLD_GLIBC.accepts("x-1-cp313-cp313-manylinux2014_x86_64.whl")
    assert not DEBIAN_12.accepts("x-1-cp313-cp313-manylinux_2_17_x86_64.whl")
    assert not ARM.accepts("x-1-cp313-cp313-manylinux_2_17_x86_64.whl")
    for foreign in ("x-1-cp313-cp313-macosx_11_0_arm64.whl", "x-1-cp313-cp313-win_amd64.whl",
                    "x-1-cp313-cp313-musllinux_1_2_x86_64.whl"):
        assert not DEBIAN_13.accepts(foreign)
    # Built for one machine's C library: only from a builder of the platform (see below).
    assert not DEBIAN_13.accepts("x-1-cp313-cp313-linux_x86_64.whl")
    assert DEBIAN_13.accepts("x-1-cp313-cp313-linux_x86_64.whl", portable_only=False)


# --- picking wheels, whatever the workstation ------------------------------------------------


WORKSTATIONS = {
    "macOS arm64": "cp313-cp313-macosx_14_0_arm64",
    "Windows": "cp313-cp313-win_amd64",
    "Linux, another Python": "cp311-cp311-manylinux_2_17_x86_64",
}


@pytest.mark.parametrize("workstation", WORKSTATIONS)
def test_a_workstation_never_ships_a_wheel_whose_tags_the_host_rejects(tmp_path, cache,
                                                                       workstation):
    """The pins a macOS or Windows workstation resolved (its own binary wheel first in the
    index) become the host's wheels: the manylinux one for the host's Python, the pure one."""
    folder = tmp_path / "index"
    tagged(folder, "fastlib", "2.0", WORKSTATIONS[workstation])
    for tag in WORKSTATIONS.values():
        tagged(folder, "fastlib", "2.0", tag)
    tagged(folder, "fastlib", "2.0", "cp313-cp313-manylinux_2_17_x86_64")
    tagged(folder, "fastlib", "2.0", "cp313-cp313-manylinux_2_34_aarch64")
    tagged(folder, "fastlib", "2.0", "cp313-cp313-linux_x86_64")  # someone's own build
    tagged(folder, "purelib", "1.0", "py3-none-any")
    pins = Pins("requirements.txt", (("fastlib", "2.0"), ("purelib", "1.0")), options=index(folder))

    resolved = pins.for_platform(DEBIAN_13, build=None)
    names = sorted(w.name for w in resolved.wheels)
    assert names == ["fastlib-2.0-cp313-cp313-manylinux_2_17_x86_64.whl",
                     "purelib-1.0-py3-none-any.whl"]
    host_tags = set(DEBIAN_13.tags())
    assert all(parse_wheel_filename(n)[3] & host_tags for n in names)
    assert resolved.text.splitlines()[0].startswith("fastlib==2.0 --hash=sha256:")
    arm = pins.for_platform(ARM, build=None)
    assert "fastlib-2.0-cp313-cp313-manylinux_2_34_aarch64.whl" in {w.name for w in arm.wheels}


def test_a_wheel_built_on_the_workstation_for_its_own_platform_is_refused_naming_it(
        tmp_path, cache):
    """An editable or VCS requirement is built on the workstation: fine when pure, refused in
    one line when the host cannot install what came out."""
    own = tagged(tmp_path / "built", "mylib", "1.0", "cp313-cp313-macosx_14_0_arm64")
    pins = Pins("requirements.txt", (), direct=(own,), options=index(tmp_path / "built"))
    with pytest.raises(Unservable) as refused:
        pins.for_platform(DEBIAN_13, build=None)
    assert str(refused.value).splitlines() == [str(refused.value)]
    assert own.name in str(refused.value) and "Linux x86_64" in str(refused.value)
    pure = tagged(tmp_path / "built", "mylib", "1.0", "py3-none-any")
    shipped = Pins("r", (), direct=(pure,), options=index(tmp_path / "built"))
    assert shipped.for_platform(DEBIAN_13, build=None).wheels == (pure,)


def test_pins_follow_includes_constraints_and_options_and_downloads_read_the_same_index(
        tmp_path, cache):
    """What a deploy resolves: includes and constraints followed, index options (relative
    ``--find-links`` made absolute) kept for the per-platform downloads, the pins exact."""
    top = project(tmp_path, OFFLINE + "-r base.txt\n-c constraints.txt\n",
                  base_txt="alpha\nbeta\n", constraints_txt="alpha==1.0\n")
    pins = resolve_pins(top)
    assert pins.index == (("alpha", "1.0"), ("beta", "0.1"))
    assert pins.options == ("--no-index", "--find-links", str(tmp_path / "wheels"))
    lock = pins.for_platform(DEBIAN_13, build=None)
    assert [line.split(" ")[0] for line in lock.text.splitlines()] == ["alpha==1.0", "beta==0.1"]


def test_a_direct_requirement_that_cannot_be_built_is_refused_naming_file_and_line(
        tmp_path, cache):
    top = project(tmp_path, OFFLINE + "-r base.txt\n",
                  base_txt="git+file:///nonexistent/repo.git#egg=nothing\n")
    with pytest.raises(InventoryError) as refused:
        resolve_pins(top)
    assert str(refused.value).startswith(
        f"{tmp_path / 'base.txt'}: line 1: git+file:///nonexistent/repo.git#egg=nothing: cannot "
        "be built into a wheel on this workstation: fatal:"), str(refused.value)


# --- source-only packages --------------------------------------------------------------------


def test_an_sdist_only_requirement_is_compiled_on_a_builder_once_per_platform(tmp_path, cache):
    folder = tmp_path / "index"
    source = sdist(folder, "srconly", "1.0")
    tagged(folder, "purelib", "1.0", "py3-none-any")
    pins = Pins("requirements.txt", (("purelib", "1.0"), ("srconly", "1.0")),
                options=index(folder))
    builds = []

    def builder(platform, build):
        builds.append((platform, build.name, build.version, build.sdist.read_bytes()))
        wheel = tagged(tmp_path / "out" / platform.key, "srconly", "1.0",
                       f"{platform.abi}-{platform.abi}-linux_{platform.arch}")
        return wheel.name, wheel.read_bytes()

    first = pins.for_platform(DEBIAN_13, builder)
    again = pins.for_platform(DEBIAN_13, builder)
    other = pins.for_platform(DEBIAN_12, builder)
    assert [(p, n, v, data) for p, n, v, data in builds] == [
        (DEBIAN_13, "srconly", "1.0", source.read_bytes()),
        (DEBIAN_12, "srconly", "1.0", source.read_bytes())]
    assert first.wheels == again.wheels
    built = [w for w in first.wheels if w.name.startswith("srconly")]
    assert [w.name for w in built] == ["srconly-1.0-cp313-cp313-linux_x86_64.whl"]
    assert is_built(built[0]) and built[0].is_relative_to(cache / "platforms" / DEBIAN_13.key)
    assert "srconly-1.0-cp311-cp311-linux_x86_64.whl" in {w.name for w in other.wheels}


def test_a_builder_handing_back_a_wheel_of_another_platform_is_refused(tmp_path, cache):
    folder = tmp_path / "index"
    sdist(folder, "srconly", "1.0")
    pins = Pins("r", (("srconly", "1.0"),), options=index(folder))

    def wrong(platform, build):
        wheel = tagged(tmp_path / "out", "srconly", "1.0", "cp311-cp311-linux_x86_64")
        return wheel.name, wheel.read_bytes()

    with pytest.raises(Unservable, match="not a wheel CPython 3.13"):
        pins.for_platform(DEBIAN_13, wrong)


def fake_run(name: str, answers: list | None = None):
    """What PlatformWheels and inputs_for_host use of a HostRun."""
    calls = [] if answers is None else answers
    return SimpleNamespace(name=name, layout=SimpleNamespace(wheelhouse="/w"),
                           helper=lambda *a, **k: calls.append(a) or {"files": {}}), calls


def observed_with(facts: dict, venues: dict | None = None) -> Observed:
    return Observed(None, {"platform": facts, "files": {}, "venues": venues or {}})


def facts_of(platform: Platform, compiler: bool) -> dict:
    return {"implementation": "cpython", "version": "{}.{}.1".format(*platform.version),
            "soabi": f"cpython-{platform.abi[2:]}-{platform.arch}-linux-gnu",
            "sysplatform": f"linux-{platform.arch}", "is64bit": True, "libc": "glibc",
            "libc_version": "{}.{}".format(*platform.glibc),
            "compiler": "/usr/bin/cc" if compiler else None, "headers": compiler}


def test_a_platform_with_no_builder_fails_in_one_line_naming_package_and_platform(
        tmp_path, cache):
    folder = tmp_path / "index"
    sdist(folder, "srconly", "1.0")
    pins = Pins("r", (("srconly", "1.0"),), options=index(folder))
    production = SimpleNamespace(hosts={"h2": SimpleNamespace(roles=("web",))})
    wheels = PlatformWheels(production, options=None)
    run, _ = fake_run("h2")
    with pytest.raises(BackstageError) as refused:
        wheels.resolved(pins, run, observed_with(facts_of(DEBIAN_13, compiler=False)))
    assert str(refused.value) == (
        "h2: srconly 1.0: no wheel for CPython 3.13 (cp313, Linux x86_64, glibc 2.41), and no "
        "builder host of that platform has a C compiler and Python headers")


def test_plan_compiles_nothing_and_says_what_a_deploy_would_compile_where(tmp_path, cache):
    folder = tmp_path / "index"
    sdist(folder, "srconly", "1.0")
    pins = Pins("r", (("srconly", "1.0"),), options=index(folder))
    production = SimpleNamespace(hosts={"h1": SimpleNamespace(roles=())})
    run, calls = fake_run("h1")
    with pytest.raises(BackstageError) as refused:
        PlatformWheels(production, options=None, compile=False).resolved(
            pins, run, observed_with(facts_of(DEBIAN_13, compiler=True)))
    assert str(refused.value) == (
        f"h1: srconly 1.0 is not compiled for {DEBIAN_13.key} yet: a deploy compiles it on h1 "
        "(plan compiles nothing)")
    assert calls == []


def test_the_host_hashes_its_wheels_only_for_a_venue_it_has_not_built(tmp_path, cache):
    """A host's wheel of the same name but other content is sent again (the lock pins
    hashes): a second look hashes the host's copies, only when the venue is to be built."""
    folder = tmp_path / "index"
    tagged(folder, "purelib", "1.0", "py3-none-any")
    pins = Pins("r", (("purelib", "1.0"),), options=index(folder))
    production = SimpleNamespace(hosts={"h1": SimpleNamespace(roles=())})
    wheels = PlatformWheels(production, options=None)
    facts = facts_of(DEBIAN_13, compiler=True)
    run, calls = fake_run("h1")
    template = DeployInputs("shop", None, "", lambda skip: b"", {})
    built = inputs_for_host(template, pins, wheels, "shop", "python3", run, observed_with(facts))
    assert calls == [("probe", "probe", {"files": ["/w/purelib-1.0-py3-none-any.whl"]})]
    assert list(built.wheels) == ["purelib-1.0-py3-none-any.whl"]
    calls.clear()
    venues = {f"shop-{built.venue_digest}": {"complete": True}}
    again = inputs_for_host(template, pins, wheels, "shop", "python3", run,
                            observed_with(facts, venues))
    assert calls == [] and again.venue_digest == built.venue_digest


def test_a_workstation_compiles_only_for_its_own_platform():
    """A Linux workstation or CI runner like the hosts compiles what no builder host can (a
    fresh server has no compiler); never for another interpreter, architecture or glibc."""
    from backstage.engine.builders import builds_here

    own = Platform.from_probe(hostside.platform_facts())
    assert builds_here(own) == bool(shutil.which("gcc") or shutil.which("cc"))
    for other in (DEBIAN_13, OLD_GLIBC, ARM):
        if other != own:
            assert not builds_here(other)
