"""Backstage's helper on the host: run by the host's Python, standard library only.

Backstage installs this file once per stage as ``stage/hostside-<hash of this text>.py`` and
runs it as ``python3 <path> <verb> <json>`` (see :mod:`backstage.commands`), so every host runs
the helper of the Backstage version that talks to it; read-only runs on a host without it send
the text whole (``python3 -c``) instead. It reads state (``probe``, ``status``) and speaks the uwsgi
protocol to a vassal's own socket (``health``); it prints one JSON document.
"""

import glob
import grp
import hashlib
import json
import os
import pwd
import shutil
import socket
import struct
import sys
import sysconfig
import time


def probe(spec):
    """Everything a plan needs to know about a host, in one round trip."""
    return {
        "user": os.environ.get("USER") or str(os.getuid()),
        "uid": os.getuid(),
        "systemd": os.path.isdir("/run/systemd/system"),
        "python": python_identity(sys.executable),
        "somaxconn": read_int("/proc/sys/net/core/somaxconn"),
        "nginx": shutil.which("nginx") or first_existing(["/usr/sbin/nginx"]),
        "files": {path: file_digest(path) for path in spec.get("files", []) + unbuilt_wheels(spec)},
        "links": {path: link_target(path) for path in spec.get("links", [])},
        "listings": {path: listing(path) for path in spec.get("listings", [])},
        "pids": {path: live_pid(path) for path in spec.get("pidfiles", [])},
        "pythons": {path: python_identity(path) for path in spec.get("pythons", [])},
        "exists": {path: os.path.exists(path) for path in spec.get("exists", [])},
        "texts": {path: read_text(path) for path in spec.get("texts", [])},
        "accounts": {name: account(name) for name in spec.get("users", [])},
        "owners": {path: owner(path) for path in spec.get("owners", [])},
        "globs": {
            pattern: {path: file_digest(path) for path in sorted(glob.glob(pattern))}
            for pattern in spec.get("globs", [])
        },
    }


def unbuilt_wheels(spec):
    """The wheels of a venue to hash, only when it is not built yet (they are shipped then)."""
    venue = spec.get("venue_wheels")
    return venue["paths"] if venue and not os.path.exists(venue["unless"]) else []


def python_identity(executable):
    """Version and ABI tag of an interpreter; the running one, or another one if it exists."""
    path = shutil.which(executable) if "/" not in executable else executable
    if not path or not os.path.exists(path):
        return None
    if os.path.realpath(path) == os.path.realpath(sys.executable) or path == sys.executable:
        return {
            "version": "{}.{}.{}".format(*sys.version_info[:3]),
            "tag": sys.implementation.cache_tag,
            "abi": sysconfig.get_config_var("SOABI"),
            "executable": os.path.realpath(sys.executable),
        }
    import subprocess  # only for interpreters other than the one running us

    out = subprocess.run([path, "-c", IDENTITY], capture_output=True, text=True, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


IDENTITY = (
    "import json,os,sys,sysconfig;print(json.dumps({'version':'%d.%d.%d'%sys.version_info[:3],"
    "'tag':sys.implementation.cache_tag,'abi':sysconfig.get_config_var('SOABI'),"
    "'executable':os.path.realpath(sys.executable)}))"
)


def account(name):
    """A unix user's primary group and supplementary groups, or None if there is no such user."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        group = str(entry.pw_gid)
    return {"uid": entry.pw_uid, "group": group,
            "groups": sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem)}


def owner(path):
    """``user:group:mode`` of a path (mode in octal, with the sticky and setgid bits), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    names = []
    for lookup, ident in ((pwd.getpwuid, st.st_uid), (grp.getgrgid, st.st_gid)):
        try:
            names.append(lookup(ident)[0])
        except KeyError:
            names.append(str(ident))
    return "{}:{}:{:o}".format(*names, st.st_mode & 0o7777)


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def first_existing(paths):
    return next((p for p in paths if os.path.exists(p)), None)


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


def verify(spec):
    """Check that the tree at ``path`` has the digest the workstation computed."""
    found = manifest_digest(tree_manifest(spec["path"]))
    if found == spec["digest"]:
        return {"ok": True}
    error = f"the tree unpacked in {spec['path']} has digest {found}, not {spec['digest']}"
    if spec.get("base"):
        error += (f"; it was built on tree {spec['base']}, which was removed (it may have been "
                  "changed on the host): the next deploy uploads without it")
    return {"ok": False, "error": error}


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


def live_pid(pidfile):
    """The pid in a pidfile if that process is alive, else None."""
    pid = read_int(pidfile)
    if not pid:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def uwsgi_request(sock_path, host, path, timeout):
    """One GET over the uwsgi protocol; returns (status, first bytes of the body)."""
    query = ""
    if "?" in path:
        path, query = path.split("?", 1)
    env = {
        "REQUEST_METHOD": "GET", "REQUEST_URI": path + ("?" + query if query else ""),
        "PATH_INFO": path, "QUERY_STRING": query, "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": host, "SERVER_PORT": "80", "HTTP_HOST": host,
        "REMOTE_ADDR": "127.0.0.1", "REQUEST_SCHEME": "http",
        "HTTP_USER_AGENT": "backstage-health-check",
    }
    body = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
        for k, v in ((k.encode(), v.encode()) for k, v in env.items())
    )
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(sock_path)
        conn.sendall(struct.pack("<BHB", 0, len(body), 0) + body)
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        conn.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) > 1 else 0, rest[:200].decode("utf-8", "replace")


def http_request(port, host, path, timeout, tls=False):
    """One GET through the host's nginx on loopback; returns (status, first bytes of the body).

    With ``tls`` the certificate is not verified: this checks the act behind nginx, on
    127.0.0.1, not the certificate (which is made for the gig's domains).
    """
    import http.client

    if tls:
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "backstage-health-check"})
        response = conn.getresponse()
        return response.status, response.read(200).decode("utf-8", "replace")
    finally:
        conn.close()


def health(spec):
    """Retry a GET until it answers the expected status.

    Through a vassal's own socket (``socket``: the uwsgi protocol) before it gets traffic, or
    through nginx (``port``) once a gig points at it.
    """
    last = "no answer"
    where = spec.get("socket") or f"127.0.0.1:{spec.get('port')}"
    for attempt in range(spec["retries"]):
        if attempt:
            time.sleep(spec.get("interval", 0.5))
        try:
            if "socket" in spec:
                status, body = uwsgi_request(spec["socket"], spec["host"], spec["path"], spec["timeout"])
            else:
                status, body = http_request(spec["port"], spec["host"], spec["path"],
                                            spec["timeout"], spec.get("tls", False))
        except FileNotFoundError:
            last = f"{where}: the vassal never opened its socket (see its log above)"
            continue
        except OSError as exc:
            last = f"{where}: {exc.strerror or exc}"
            continue
        if status == spec["status"]:
            return {"ok": True, "status": status, "attempts": attempt + 1}
        last = f"{where}{spec['path']} answered {status} (expected {spec['status']}): {body}"
    return {"ok": False, "error": last}


def stats(path):
    """The JSON a uWSGI stats socket dumps on connect, or None."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(2)
    try:
        conn.connect(path)
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return json.loads(data.decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def status(spec):
    """State of each sess of the given acts: vassal files, pids, sockets, ports, uptime."""
    clock = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        boot = time.time() - float(f.read().split()[0])
    acts = {}
    for act, info in spec["acts"].items():
        sesses = []
        for ini in sorted(glob.glob(os.path.join(spec["vassals"], act + "@*.ini*"))):
            name = os.path.basename(ini)
            release = name[len(act) + 1 :].split(".ini")[0]
            data = stats(info["stats"].replace("{release}", release)) or {}
            master = data.get("pid")
            started = process_start(master, clock, boot) if master else None
            sesses.append({
                "release": release,
                "enabled": name.endswith(".ini"),
                "master": master,
                "workers": [w["pid"] for w in data.get("workers", [])],
                "socket": info["socket"].replace("{release}", release),
                "uptime": round(time.time() - started) if started else None,
            })
        acts[act] = {
            "current": link_target(info["current"]),
            "live": link_target(info["stable"]),
            "sesses": sesses,
        }
    return {"acts": acts}


def process_start(pid, clock, boot):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return boot + int(fields[19]) / clock
    except (OSError, IndexError, ValueError):
        return None


def reloaded(spec):
    """Wait until every worker of a vassal was replaced after a graceful reload."""
    deadline = time.time() + spec["timeout"]
    while time.time() < deadline:
        data = stats(spec["stats"]) or {}
        workers = [w["pid"] for w in data.get("workers", [])]
        if workers and not set(workers) & set(spec["old"]) and all(w["pid"] > 0 for w in data["workers"]):
            return {"ok": True, "workers": workers}
        time.sleep(0.1)
    return {"ok": False, "error": f"workers were not replaced within {spec['timeout']}s"}


VERBS = {"probe": probe, "health": health, "status": status, "reloaded": reloaded,
         "verify": verify}

if __name__ == "__main__":
    result = VERBS[sys.argv[1]](json.loads(sys.argv[2]))
    if not result.get("ok", True):
        sys.exit(result["error"])
    print(json.dumps(result))
