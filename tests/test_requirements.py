"""Requirements files are resolved on the workstation (issue 12, finding 10): includes and
constraints are followed here, options (``--index-url``, ``--find-links``) are honoured here,
and a host receives only the resolved list, ``name==version --hash=sha256:...`` a line. The
venue's digest is a hash of that list: a change in an included file changes it, a comment
does not. An editable, VCS or URL requirement that cannot be built here is refused in one line
naming its file and line, before any host is contacted. On a fleet host:
tests/fleet/test_requirements.py."""

import re
from pathlib import Path

import pytest

from backstage.artefacts import requirements
from backstage.errors import InventoryError
from tests.support.testbed import make_wheel

RESOLVED_LINE = re.compile(r"^[a-z0-9][a-z0-9.-]*==\S+ --hash=sha256:[0-9a-f]{64}$")
# Options pip honours on the workstation; a host that saw them would try the network.
OPTIONS = ("--index-url http://127.0.0.1:9/simple\n"
           "--find-links http://127.0.0.1:9/links\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A wheel cache of this test's own."""
    monkeypatch.setenv("BACKSTAGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def project(folder: Path, top: str, **files: str) -> Path:
    """A folder with ``requirements.txt`` (``top``), other files, and local wheels in
    ``wheels/``: alpha 1.0 and 2.0, beta 0.1."""
    for name, version in (("alpha", "1.0"), ("alpha", "2.0"), ("beta", "0.1")):
        make_wheel(folder / "wheels", name, version)
    for name, text in files.items():
        (folder / name.replace("_", ".")).write_text(text)
    (folder / "requirements.txt").write_text(top)
    return folder / "requirements.txt"


OFFLINE = "--no-index\n--find-links wheels\n"


def test_includes_constraints_and_options_resolve_into_an_option_free_list(tmp_path, cache):
    top = project(tmp_path, OFFLINE + OPTIONS.replace("--find-links", "--extra-index-url")
                  + "-r base.txt\n-c constraints.txt  # the pins\n",
                  base_txt="alpha\n", constraints_txt="alpha==1.0\nbeta==0.1\n")
    resolved = requirements.resolve(top)
    lines = resolved.text.splitlines()
    assert all(RESOLVED_LINE.match(line) for line in lines), resolved.text
    assert [line.split(" ")[0] for line in lines] == ["alpha==1.0"]  # a constraint installs nothing
    assert sorted(resolved.hashes) == ["alpha-1.0-py3-none-any.whl"]


def test_venue_digest_changes_when_only_an_included_file_changes(tmp_path, cache):
    top = project(tmp_path, OFFLINE + "-r base.txt\n-c constraints.txt\n",
                  base_txt="alpha\n", constraints_txt="alpha==1.0\n")
    first = requirements.resolve(top).digest("python3")
    (tmp_path / "base.txt").write_text("alpha\nbeta\n")
    second = requirements.resolve(top).digest("python3")
    (tmp_path / "constraints.txt").write_text("alpha==2.0\n")
    third = requirements.resolve(top).digest("python3")
    assert len({first, second, third}) == 3
    (tmp_path / "base.txt").write_text("alpha  # what the venue needs\nbeta\n")
    assert requirements.resolve(top).digest("python3") == third  # same wheels, same venue


def test_a_local_project_is_built_into_a_wheel_and_again_when_it_changes(tmp_path, cache):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mylib"\nversion = "0.1"\n')
    (lib / "mylib.py").write_text("X = 1\n")
    top = project(tmp_path, "--find-links wheels\nalpha==1.0\n-e ./lib\n")
    first = requirements.resolve(top)
    assert "mylib==0.1 --hash=sha256:" in first.text
    assert requirements.resolve(top) == first  # built once: what pip left in lib/ is no change
    (lib / "mylib.py").write_text("X = 2\n")
    assert requirements.resolve(top).digest("") != first.digest("")


@pytest.mark.parametrize("line", ["git+file:///nonexistent/repo.git#egg=nothing",
                                  "-e git+file:///nonexistent/repo.git#egg=nothing",
                                  "nothing @ file:///nonexistent/nothing-1.0.tar.gz"])
def test_a_requirement_that_cannot_be_built_here_is_refused_naming_file_and_line(
        tmp_path, cache, line):
    top = project(tmp_path, OFFLINE + "-r base.txt\n", base_txt=f"alpha==1.0\n{line}\n")
    with pytest.raises(InventoryError) as caught:
        requirements.resolve(top)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'base.txt'}: line 2: {line}: cannot be built into a "
                              "wheel on this workstation: "), message
    assert "\n" not in message and caught.value.exit_code == 2


@pytest.mark.parametrize("text, reason", [
    ("-r missing.txt\n", "line 3: -r missing.txt: no such file: "),
    ("alpha\n-c https://example.invalid/c.txt\n",
     "line 4: -c https://example.invalid/c.txt: includes must be local files"),
    ("alpha==9.9\n", "building its wheels failed: ERROR: "),
])
def test_bad_requirements_files_are_one_line_naming_the_file(tmp_path, cache, text, reason):
    top = project(tmp_path, OFFLINE + text)
    with pytest.raises(InventoryError) as caught:
        requirements.resolve(top)
    assert str(caught.value).startswith(f"{top}: {reason}"), caught.value
    assert "\n" not in str(caught.value)


def test_continuations_comments_and_per_requirement_options_read_as_pip_reads_them(tmp_path):
    top = project(tmp_path, "alpha \\\n  >=1.0  # comment\nbeta==0.1 --hash=sha256:00\n"
                            "#-r nothing.txt\nurl#fragment-is-not-a-comment\n")
    inputs = requirements.read(top)
    assert inputs.names == {"alpha", "beta"}
    assert [(line.number, line.text) for line, _ in inputs.direct] == [
        (5, "url#fragment-is-not-a-comment")]
    assert inputs.files == [top]


def test_the_workstation_build_key_follows_every_file_read(tmp_path):
    """Not only the top file: the cache key of the wheels covers its includes too."""
    top = project(tmp_path, "-r base.txt\n", base_txt="alpha\n")
    key = requirements.read(top).key(())
    (tmp_path / "base.txt").write_text("beta\n")
    assert requirements.read(top).key(()) != key
