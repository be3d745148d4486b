"""Roll the pyinfra-deployed storefront back to the release completed before the current one
(the same steps as bench/ansible/rollback.yml). Run by bench/compare.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data, switch
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files

d = data()
root = d["app_root"]
release = host.get_fact(
    Command,
    f"cd {root}/releases && current=$(basename \"$(readlink {root}/current)\") && "
    "ls -1t */.deployed | cut -d/ -f1 | grep -vx \"$current\" | head -n 1")
if not release:
    raise SystemExit(f"{host.name}: no earlier completed release to roll back to")
switch(d, release)
files.file(name="Mark it the newest completed release",
           path=f"{root}/releases/{release}/.deployed", touch=True)
