"""What Backstage's host-side programs share: digests of files and trees, reading state, and
connecting to unix sockets without following links. Standard library only.

Never sent alone: :func:`backstage.remote.program` joins it into each program, in place of the
program's ``from backstage.remote.core import ...`` line, so what runs on a host is one file.
On the workstation the programs import it as usual (``artefacts`` computes tree digests with
the very functions the host uses to verify them).
"""

import errno
import hashlib
import json
import os
import socket
import stat


def file_digest(path):
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def tree_entry(path):
    """What a tree's digest records of one path: a link and its target, or a file, whether it
    is executable (other mode bits depend on the umask that unpacked it) and its content."""
    if os.path.islink(path):
        return ["link", os.readlink(path)]
    return ["exec" if os.stat(path).st_mode & 0o111 else "file", file_digest(path)]


def tree_manifest(root, paths=None):
    """Relative path -> entry, for ``paths`` or every file and link under ``root``.

    Directories are not entries: a tree holds the directories its files need, no others.
    """
    if paths is None:
        paths = []
        for folder, dirs, files in os.walk(root):
            links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            paths += [os.path.relpath(os.path.join(folder, n), root) for n in files + links]
    return {path: tree_entry(os.path.join(root, path)) for path in paths}


def manifest_digest(manifest):
    """The content digest of a tree: its sorted entries (extra fields, such as sizes, aside)."""
    digest = hashlib.sha256()
    for path in sorted(manifest):
        digest.update(json.dumps([path, *manifest[path][:2]]).encode() + b"\n")
    return digest.hexdigest()


def read_text(path, limit=65536):
    """The last ``limit`` bytes of a small state file, or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def link_target(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return None


def connect_unix(sock_path, timeout):
    """A connection to a unix socket, never through a link: socket folders may be an act's
    (its stats sockets), and a link it planted must not send root's connection elsewhere.

    The socket is opened as a path (``O_PATH|O_NOFOLLOW``), checked, and connected to through
    that very file (``/proc/self/fd/N``), so nothing can be swapped in between.
    """
    fd = os.open(sock_path, os.O_PATH | os.O_NOFOLLOW)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise ConnectionRefusedError(errno.ECONNREFUSED, "not a socket", sock_path)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        try:
            conn.connect(f"/proc/self/fd/{fd}")
        except BaseException:
            conn.close()
            raise
        return conn
    finally:
        os.close(fd)


def stats(path):
    """The JSON a uWSGI stats socket dumps on connect, or None."""
    try:
        conn = connect_unix(path, 2)
    except OSError:
        return None
    try:
        return json.loads(read_all(conn).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def read_all(conn, limit=None):
    """Everything a connection sends until the other side closes it (or ``limit`` bytes)."""
    chunks, size = [], 0
    while (limit is None or size < limit) and (chunk := conn.recv(65536)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
