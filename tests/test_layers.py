"""Layers depend downwards only, in the order docs/architecture.md gives (read from there).

Every module of the package is read (not imported) and each of its imports of ``backstage.*``,
at any depth of the module, is checked against the layer table in docs/architecture.md. The
package is ``backstage/`` plus the folders pyproject.toml installs into it (``tasks/``).
"""

import ast
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "backstage"
ARCHITECTURE = REPO / "docs" / "architecture.md"
# A row of the layer table: | N | `backstage.a`, `backstage.b` | ...
ROW = re.compile(r"^\|\s*(\d+)\s*\|([^|]*)\|")


def layer_table() -> dict[str, int]:
    """Module prefix -> rank, from the table under "## Layers" in docs/architecture.md."""
    table = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            for name in re.findall(r"`(backstage[\w.]*)`", match.group(2)):
                table[name] = int(match.group(1))
    return table


def rank_of(module: str, table: dict[str, int]) -> int:
    """The rank of the longest table prefix of ``module``."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in table:
            return table[prefix]
    raise AssertionError(f"{module}: no layer in docs/architecture.md covers it")


def package_folders() -> dict[str, Path]:
    """Package -> folder: ``backstage`` and those pyproject.toml's package-dir maps elsewhere."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    mapped = config["tool"]["setuptools"]["package-dir"]
    return {"backstage": PACKAGE, **{name: REPO / folder for name, folder in mapped.items()}}


def module_name(path: Path) -> str:
    package, folder = next((name, folder) for name, folder in package_folders().items()
                           if path.is_relative_to(folder))
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> list[str]:
    """The ``backstage`` modules a file imports, anywhere in it."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [f"{node.module}.{a.name}" for a in node.names]
    return [n for n in names if n == "backstage" or n.startswith("backstage.")]


def modules() -> list[Path]:
    return sorted(path for folder in package_folders().values() for path in folder.rglob("*.py")
                  if path.name != "__main__.py")


def test_the_table_covers_every_module():
    table = layer_table()
    assert len(table) >= 10, "docs/architecture.md lost its layer table"
    for path in modules():
        rank_of(module_name(path), table)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_imports_an_upper_layer(path):
    table = layer_table()
    mine = rank_of(module_name(path), table)
    upward = [name for name in imported(path)
              if name != "backstage" and rank_of(name, table) > mine]
    assert not upward, f"{module_name(path)} (layer {mine}) imports upper layers: {upward}"


def test_the_check_catches_an_upward_import(tmp_path):
    """The test above can fail: a model module importing the engine is reported."""
    table = layer_table()
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from backstage.engine.hosts import HostRun\n")
    assert rank_of("backstage.engine.hosts", table) > rank_of("backstage.model.layout", table)
    assert imported(bad) == ["backstage.engine.hosts.HostRun"]


def test_the_reports_module_lists_every_report_the_api_returns():
    """``backstage.reports`` is where the Python API's return types live, listed once."""
    import inspect

    from backstage import reports

    defined = {name for name, value in vars(reports).items()
               if inspect.isclass(value) and name.endswith("Report")}
    assert set(reports.__all__) == defined
