"""The host-side programs are single files: the shared core joined in, nothing of Backstage
imported, runnable by a bare Python (as on a host)."""

import json
import socket
import subprocess
import sys
import time

import pytest

from backstage.remote import core, program


@pytest.mark.parametrize("name", ["hostside", "venueside"])
def test_a_program_is_one_file_that_needs_nothing_installed(name, tmp_path):
    text = program(name)
    assert "backstage" not in [line.split()[1].split(".")[0] for line in text.splitlines()
                               if line.startswith(("import ", "from "))]
    assert "def manifest_digest(" in text and text.count("def listing(") == 1
    compile(text, f"{name}.py", "exec")
    # -I: isolated, so neither this checkout nor the virtualenv's packages are importable.
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("a\n")
    digest = core.manifest_digest(core.tree_manifest(str(tree)))
    if name == "hostside":
        run = subprocess.run([sys.executable, "-I", "-c", text, "verify",
                              json.dumps({"path": str(tree), "digest": digest})],
                             capture_output=True, text=True, check=True)
        assert json.loads(run.stdout) == {"ok": True}
    else:
        run = subprocess.run([sys.executable, "-I", "-c", text, "describe",
                              json.dumps({"root": str(tree), "pidfile": str(tmp_path / "p"),
                                          "emperor_ini": str(tmp_path / "i")})],
                             capture_output=True, text=True, check=True)
        assert json.loads(run.stdout)["entries"] == ["a.txt"]


def test_a_program_without_exactly_one_core_import_is_refused(monkeypatch):
    from backstage import remote

    monkeypatch.setattr(remote, "_source", lambda name: "import os\n")
    remote.program.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="expected one import of the core"):
            remote.program("hostside")
    finally:
        remote.program.cache_clear()


def test_drained_waits_for_the_connections_queued_on_a_socket(tmp_path):
    """What a retire waits for after the switch: the connections nginx queued on the old
    release's socket (accepted by no one yet) are served before its vassal stops."""
    from backstage.remote import hostside

    path = str(tmp_path / "old.sock")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen(8)
        client.connect(path)  # queued: nobody accepted it
        assert hostside.unix_queues()[path] == 1
        started = time.monotonic()
        assert hostside.drained({"sockets": [path], "timeout": 0.3}) == {"drained": False}
        assert time.monotonic() - started >= 0.3
        server.accept()[0].close()
        assert hostside.drained({"sockets": [path], "timeout": 5}) == {"drained": True}
    # A socket that is gone has nothing queued.
    assert hostside.drained({"sockets": [path], "timeout": 5}) == {"drained": True}
