"""Backstage's helper on the host: run by the host's Python, standard library only.

Backstage installs this file once per stage as ``stage/hostside-<hash of this text>.py`` and
runs it as ``python3 <path> <verb> <json>`` (see :mod:`backstage.commands`; the text sent is
this file joined with :mod:`backstage.remote.core`), so every host runs
the helper of the Backstage version that talks to it; read-only runs on a host without it send
the text whole (``python3 -c``) instead. It reads state (``probe``, ``status``) and speaks the uwsgi
protocol to a vassal's own socket (``health``); it prints one JSON document.
"""

import glob
import grp
import hashlib
import importlib.util
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import sys
import sysconfig
import time

from backstage.remote.core import (  # joined into this file when sent: backstage.remote.program
    connect_unix,
    file_digest,
    link_target,
    listing,
    manifest_digest,
    read_all,
    read_text,
    stats,
    tree_manifest,
)


def probe(spec):
    """Everything a plan needs to know about a host, in one round trip."""
    return {
        "user": os.environ.get("USER") or str(os.getuid()),
        "uid": os.getuid(),
        "systemd": os.path.isdir("/run/systemd/system"),
        "python": python_identity(sys.executable),
        "platform": platform_facts(),
        "somaxconn": read_int("/proc/sys/net/core/somaxconn"),
        "nginx": shutil.which("nginx") or first_existing(["/usr/sbin/nginx"]),
        "files": {path: file_digest(path) for path in spec.get("files", [])},
        "links": {path: link_target(path) for path in spec.get("links", [])},
        "listings": {path: listing(path) for path in spec.get("listings", [])},
        "pids": {path: live_pid(path) for path in spec.get("pidfiles", [])},
        "pythons": {path: python_identity(path) for path in spec.get("pythons", [])},
        "exists": {path: os.path.exists(path) for path in spec.get("exists", [])},
        "texts": {path: read_text(path) for path in spec.get("texts", [])},
        "ages": {path: age(path) for path in spec.get("ages", [])},
        "accounts": {name: account(name) for name in spec.get("users", [])},
        "owners": {path: owner(path) for path in spec.get("owners", [])},
        "processes": {name: processes(args) for name, args in spec.get("processes", {}).items()},
        "globs": {
            pattern: {path: file_digest(path) for path in sorted(glob.glob(pattern))}
            for pattern in spec.get("globs", [])
        },
        "live": {act: live(paths) for act, paths in spec.get("live", {}).items()},
        "venues": venues(spec["venues"]) if "venues" in spec else {},
        "provision": provision_facts(spec.get("sysctl_file", "")),
    }


def provision_facts(sysctl_file):
    """What a fresh host has of what a stage needs (see backstage.model.provision.HostFacts):
    the packages, whether apt has a source, the sysctl file Backstage writes."""
    include = sysconfig.get_paths()["include"]
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    soname = sysconfig.get_config_var("INSTSONAME") or ""
    python3 = shutil.which("python3")
    return {
        "python": "{}.{}".format(*sys.version_info[:2]),
        "default_python": bool(python3) and os.path.realpath(python3) == os.path.realpath(
            sys.executable),
        "venv": importlib.util.find_spec("ensurepip") is not None,
        "compiler": bool(shutil.which("gcc") or shutil.which("cc")),
        "headers": os.path.exists(os.path.join(include, "Python.h")),
        "libpython": not soname.endswith(".so.1.0") or os.path.exists(os.path.join(libdir, soname)),
        "libxml2": bool(glob.glob(os.path.join(libdir, "libxml2.so.2*"))
                        or glob.glob("/usr/lib/*/libxml2.so.2*")),
        "apt": bool(shutil.which("apt-get")),
        "sources": apt_sources(),
        "sysctl_text": read_text(sysctl_file) if sysctl_file else None,
        "nginx_enabled": os.path.exists(
            "/etc/systemd/system/multi-user.target.wants/nginx.service"),
    }


def apt_sources():
    """Whether apt has a package source: a ``deb`` line or a deb822 stanza of ``Types: deb``."""
    for path in ["/etc/apt/sources.list", *glob.glob("/etc/apt/sources.list.d/*.list"),
                 *glob.glob("/etc/apt/sources.list.d/*.sources")]:
        for line in (read_text(path) or "").splitlines():
            words = line.split()
            if words[:1] == ["deb"] or (words[:1] == ["Types:"] and "deb" in words[1:]):
                return True
    return False


def venues(spec):
    """Each venue folder (``<venue>-<hash>``) in ``dir``: whether it is complete (its marker
    was written last) and linked (``<venue>`` points to it), when it was completed, and the
    vassal files (enabled, stopped or retired) that name it: what cleanup must not remove."""
    names = [n for n in listing(spec["dir"]) or [] if not n.startswith(".")]
    folders = [n for n in names if not os.path.islink(os.path.join(spec["dir"], n))]
    linked = {link_target(os.path.join(spec["dir"], n)) for n in names} - {None}
    vassals = {}
    for path in glob.glob(os.path.join(spec["vassals"], "*.ini*")):
        with open(path, encoding="utf-8", errors="replace") as f:
            vassals[os.path.basename(path)] = f.read()
    found = {}
    for name in folders:
        folder = os.path.join(spec["dir"], name)
        marker = os.path.join(folder, spec["marker"])
        found[name] = {
            "complete": os.path.exists(marker),
            "completed": os.path.getmtime(marker) if os.path.exists(marker) else None,
            "linked": name in linked or folder in linked,
            # The folder's path, not one it begins (a venue named like "<venue>-<hash>-x").
            "used_by": sorted(v for v, text in vassals.items()
                              if re.search(re.escape(folder) + r"(?![A-Za-z0-9_.-])", text)),
        }
    return found


def live(paths):
    """Whether what is recorded as an act's live release is there and serving.

    ``paths``: the ``current`` link, the stable socket link, and the release's socket and
    vassal file with ``{release}`` in place of the id. The answer says whether the release's
    directory exists, what the stable link holds and whether a connection through it is
    accepted, whether the release's own socket accepts one, and the state of its vassal file.
    """
    target = link_target(paths["current"])
    release = target.rstrip("/").rsplit("/", 1)[-1] if target else None
    found = {"release": release, "stable": link_target(paths["stable"]),
             "stable_socket": socket_state(paths["stable"])}
    if release:
        vassal = paths["vassal"].replace("{release}", release)
        found.update(
            release_dir=os.path.isdir(paths["current"]),
            socket=socket_state(paths["socket"].replace("{release}", release)),
            vassal=next((state for state, suffix in VASSAL_STATES
                         if os.path.exists(vassal + suffix)), None))
    return found


# A vassal file's state by its name: the Emperor runs only ``*.ini``.
VASSAL_STATES = (("enabled", ""), ("stopped", ".stopped"), ("retired", ".retired"))


def socket_state(path):
    """Whether a unix socket (links followed) takes connections: ``listening``, ``busy`` (its
    backlog is full: something listens), ``refused`` (nothing listens: its process is gone),
    ``missing`` or ``not a socket``. Connecting and closing costs a vassal nothing (no log)."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return "not a socket"
    except OSError:
        return "missing"
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(1)
    try:
        conn.connect(path)
        return "listening"
    except (TimeoutError, BlockingIOError):
        return "busy"
    except OSError:
        return "refused"
    finally:
        conn.close()


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


def platform_facts():
    """What decides which wheels this host installs (the workstation derives its tags from
    these, see ``backstage.artefacts.platforms``) and whether it can build one from source: a C
    compiler and the interpreter's headers."""
    libc, libc_version = platform.libc_ver()
    include = sysconfig.get_paths().get("include") or ""
    return {
        "implementation": sys.implementation.name,
        "version": "{}.{}.{}".format(*sys.version_info[:3]),
        "soabi": sysconfig.get_config_var("SOABI"),
        "sysplatform": sysconfig.get_platform(),
        "is64bit": sys.maxsize > 2 ** 32,
        "libc": libc,
        "libc_version": libc_version,
        "compiler": shutil.which("cc") or shutil.which("gcc"),
        "headers": os.path.exists(os.path.join(include, "Python.h")),
    }


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


def age(path):
    """Seconds since a file was last modified (a lock's lease: its holder renews it), by this
    host's clock; None if it is missing."""
    try:
        return round(time.time() - os.stat(path).st_mtime, 1)
    except OSError:
        return None


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def first_existing(paths):
    return next((p for p in paths if os.path.exists(p)), None)


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


def processes(args):
    """Pids of this user's processes whose command line ends with ``args``: how the helper
    finds the Emperor (``--ini <its emperor.ini>``), from the kernel's process table, which
    no act can forge, rather than from a file."""
    tail = "\0".join(args).encode() + b"\0"
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if cmdline.endswith(b"\0" + tail) and os.stat(f"/proc/{pid}").st_uid == os.getuid():
                found.append(int(pid))
        except OSError:
            continue
    return sorted(found)


def children(pid):
    """Pids whose parent is ``pid``, from the kernel's process table."""
    found = []
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{child}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(child))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


def server_pids(pidfile):
    """(vassal master, server, server's workers) of a release on an HTTP server. The
    master's pidfile is root's (in root's socket folder) and the server is the master's one
    child (the launcher execs it): nothing an act writes names a pid root signals."""
    master = live_pid(pidfile)
    server = next(iter(children(master)), None) if master else None
    return master, server, children(server) if server else []


def reload_server(spec):
    """Have a release's HTTP server replace its workers (SIGHUP: gunicorn and granian start
    new ones, then stop the old ones gracefully) and wait until none of the old is left."""
    _, server, old = server_pids(spec["pidfile"])
    if not server:
        return {"ok": False, "error": f"no server runs for {spec['pidfile']}"}
    os.kill(server, signal.SIGHUP)
    deadline = time.time() + spec["timeout"]
    while time.time() < deadline:
        time.sleep(0.2)
        _, now, workers = server_pids(spec["pidfile"])
        if now == server and workers and not set(workers) & set(old):
            return {"ok": True, "workers": workers}
    return {"ok": False, "error": f"workers were not replaced within {spec['timeout']}s"}


# The User-Agent of Backstage's own requests (health, smoke): a bake does not count them.
CHECK_AGENT = "backstage-health-check"
# How much of a page a check reads: enough for ``contains``, bounded against a huge answer.
BODY_LIMIT = 1 << 20
MAINTENANCE_STATUS = 503  # what every request to a gig in maintenance gets


def uwsgi_request(sock_path, host, path, timeout, method="GET", https=False):
    """One request over the uwsgi protocol; returns (status, body, at most BODY_LIMIT).

    ``https``: as nginx passes a request of a TLS gig (a project that redirects to HTTPS
    answers it, not with its redirect)."""
    query = ""
    if "?" in path:
        path, query = path.split("?", 1)
    env = {
        "REQUEST_METHOD": method, "REQUEST_URI": path + ("?" + query if query else ""),
        "PATH_INFO": path, "QUERY_STRING": query, "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": host, "SERVER_PORT": "80", "HTTP_HOST": host,
        "REMOTE_ADDR": "127.0.0.1", "REQUEST_SCHEME": "http",
        "HTTP_USER_AGENT": CHECK_AGENT,
    }
    if https:
        env.update(REQUEST_SCHEME="https", HTTPS="on", SERVER_PORT="443",
                   HTTP_X_FORWARDED_PROTO="https")
    body = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
        for k, v in ((k.encode(), v.encode()) for k, v in env.items())
    )
    conn = connect_unix(sock_path, timeout)
    try:
        conn.sendall(struct.pack("<BHB", 0, len(body), 0) + body)
        data = read_all(conn, BODY_LIMIT)
    finally:
        conn.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) > 1 else 0, rest.decode("utf-8", "replace")


def http_request(port, host, path, timeout, tls=False, method="GET"):
    """One request through the host's nginx on loopback; returns (status, body, at most
    BODY_LIMIT).

    With ``tls`` the handshake names ``host`` (SNI: nginx refuses a name no gig books) and the
    certificate is not verified: this checks the act behind nginx, on 127.0.0.1, not the
    certificate (which is made for the gig's domains).
    """
    import http.client

    if tls:
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

        class Named(http.client.HTTPSConnection):
            def connect(self):
                http.client.HTTPConnection.connect(self)
                self.sock = context.wrap_socket(self.sock, server_hostname=host)

        conn = Named("127.0.0.1", port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Host": host, "User-Agent": CHECK_AGENT})
        response = conn.getresponse()
        return response.status, response.read(BODY_LIMIT).decode("utf-8", "replace")
    finally:
        conn.close()


def unix_http_request(sock_path, host, path, timeout, method="GET", https=False):
    """One HTTP request over a release's unix socket (gunicorn, granian), with the headers
    nginx's ``proxy_pass`` sets; returns (status, body, at most BODY_LIMIT)."""
    import http.client

    class Unix(http.client.HTTPConnection):
        def connect(self):
            self.sock = connect_unix(sock_path, timeout)

    conn = Unix("localhost", timeout=timeout)
    headers = {"Host": host, "User-Agent": "backstage-health-check",
               "X-Forwarded-Proto": "https" if https else "http"}
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(BODY_LIMIT).decode("utf-8", "replace")
    finally:
        conn.close()


def request(spec, path, method="GET"):
    """One request to a release's own socket (``socket``: over HTTP when its ``http`` marker
    is there, else the uwsgi protocol) or through nginx (``port``)."""
    if "socket" in spec and spec.get("http") and os.path.exists(spec["http"]):
        return unix_http_request(spec["socket"], spec["host"], path, spec["timeout"], method,
                                 spec.get("https", False))
    if "socket" in spec:
        return uwsgi_request(spec["socket"], spec["host"], path, spec["timeout"], method,
                             spec.get("https", False))
    return http_request(spec["port"], spec["host"], path, spec["timeout"],
                        spec.get("tls", False), method)


def where(spec):
    return spec.get("socket") or f"127.0.0.1:{spec.get('port')}"


def in_maintenance(spec):
    """Whether a check through nginx meets the act's maintenance page (root's file), which
    every visitor gets with 503 whatever the release would answer."""
    return bool(spec.get("maintenance")) and os.path.exists(spec["maintenance"])


def health(spec):
    """Retry a GET until it answers the expected status.

    Through a vassal's own socket (``socket``: the uwsgi protocol) before it gets traffic, or
    through nginx (``port``) once a gig points at it.
    """
    last = "no answer"
    for attempt in range(spec["retries"]):
        if attempt:
            time.sleep(spec.get("interval", 0.5))
        try:
            status, body = request(spec, spec["path"])
        except FileNotFoundError:
            last = f"{where(spec)}: the vassal never opened its socket (see its log above)"
            continue
        except OSError as exc:
            last = f"{where(spec)}: {exc.strerror or exc}"
            continue
        expected = MAINTENANCE_STATUS if in_maintenance(spec) else spec["status"]
        if status == expected or (expected is None and 100 <= status < 500):
            return {"ok": True, "status": status, "attempts": attempt + 1}
        wanted = "below 500" if expected is None else expected
        last = f"{where(spec)}{spec['path']} answered {status} (expected {wanted}): {body[:200]}"
    return {"ok": False, "error": last}


def smoke(spec):
    """Send each of an act's smoke requests once (the health check has waited for the
    release, or for nginx's reload); every one must answer its status, and its body contain
    ``contains`` when given. What each answered goes to history (``history``, ``record``)."""
    if in_maintenance(spec):
        return {"ok": True, "results": [], "skipped": "maintenance"}
    results, failures = [], []
    for check in spec["checks"]:
        line = f"{check['method']} {check['path']}"
        try:
            status, body = request(spec, check["path"], check["method"])
        except OSError as exc:
            failures.append(f"{line}: {exc.strerror or exc}")
            results.append({"path": check["path"], "ok": False, "status": None})
            continue
        wrong = status != check["status"]
        missing = check.get("contains") is not None and check["contains"] not in body
        if wrong:
            failures.append(f"{line} answered {status} (expected {check['status']}): "
                            f"{body[:200]}")
        elif missing:
            failures.append(f"{line} answered {status} without {check['contains']!r}")
        results.append({"path": check["path"], "ok": not (wrong or missing), "status": status})
    error = f"smoke check via {where(spec)} failed: " + "; ".join(failures) if failures else None
    if spec.get("history"):
        append_history(spec["history"], {**spec["record"], "ok": not failures,
                                         "results": results, "error": error})
    return {"ok": False, "error": error} if failures else {"ok": True, "results": results}


# A gig's access log line (backstage.render.ACCESS_LOG_FORMAT), read from its end: status,
# user agent, when it was logged, how long it took, upstream status and address. nginx escapes
# quotes inside values (\x22), so a quoted value holds none.
ACCESS_LINE = re.compile(r'" (\d{3}) \d+ "[^"]*" "([^"]*)" ([\d.]+) ([\d.]+) "([^"]*)" "([^"]*)"$')
# How far back from its end a bake starts reading an access log (its window and the one
# before the switch are a few seconds).
BAKE_READ_BYTES = 32 << 20
BAKE_POLL_SECONDS = 0.2


def bake(spec):
    """Watch an act's traffic after its switch: the share of its requests through nginx (its
    gigs' access logs, ``logs``) that failed (a 5xx answer, or a 5xx from upstream) from the
    switch (``link``'s time: the stable socket link, renamed then) for ``seconds``, against
    the same share in as many seconds before it (the old release). Requests are placed by
    when they began (logged time less their duration); Backstage's own checks and requests
    nginx answered itself (static files) do not count.

    The bake fails past ``max_error_rate`` more than before, with at least ``min_errors``
    failed requests; it stops early once the window's share cannot end below that if traffic
    goes on as it came. Prints ``::bake <json>`` (the counts, pass or fail) for the
    workstation's report, and records them in history.
    """
    since = os.lstat(spec["link"]).st_mtime
    seconds = spec["seconds"]
    offsets = {path: tail_start(path) for path in spec["logs"]}
    tally = {"before": [0, 0], "after": [0, 0]}
    while True:
        now = time.time()
        for path in spec["logs"]:
            offsets[path] = read_requests(path, offsets[path], since, seconds, tally)
        elapsed = min(now, since + seconds) - since
        verdict = bake_verdict(spec, tally, max(elapsed, BAKE_POLL_SECONDS))
        if verdict["failed"] or now >= since + seconds:
            break
        time.sleep(min(BAKE_POLL_SECONDS, since + seconds - now))
    result = {"ok": not verdict["failed"], "seconds": round(elapsed, 2),
              "requests": tally["after"][0], "errors": tally["after"][1],
              "before": {"requests": tally["before"][0], "errors": tally["before"][1]},
              "error": verdict["error"]}
    print("::bake " + json.dumps(result, sort_keys=True), flush=True)
    if spec.get("history"):
        append_history(spec["history"], {**spec["record"], **result})
    return result


def bake_verdict(spec, tally, elapsed):
    """Whether the bake failed: the share of failed requests since the switch (projected
    over the whole window: at least that share if traffic goes on as it came) exceeds the
    share before it by more than ``max_error_rate``, with ``min_errors`` failed at least."""
    (requests, errors), (before, before_errors) = tally["after"], tally["before"]
    base = before_errors / before if before else 0.0
    limit = base + spec["max_error_rate"]
    projected = requests * max(1.0, spec["seconds"] / elapsed)
    if errors < spec["min_errors"] or errors <= limit * projected:
        return {"failed": False, "error": None}
    return {"failed": True, "error": (
        f"bake: {errors} of {requests} requests failed {elapsed:.1f}s after the switch "
        f"({errors / requests:.1%}; before it {before_errors} of {before}, {base:.1%}): past "
        f"max_error_rate {spec['max_error_rate']:.1%} more than before")}


def tail_start(path):
    """Where to start reading a log: the first line that begins at most BAKE_READ_BYTES
    before its end."""
    try:
        with open(path, "rb") as f:
            start = max(0, os.fstat(f.fileno()).st_size - BAKE_READ_BYTES)
            if start:
                f.seek(start - 1)
                f.readline()  # the rest of the line cut (nothing if it began at start)
            return f.tell()
    except OSError:
        return 0


def read_requests(path, offset, since, seconds, tally):
    """Count the complete lines of an access log from ``offset`` into ``tally`` (``before``
    and ``after`` the switch: requests, failed); return where the next read starts."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size < offset:  # rotated: the new file from its start
                offset = 0
            f.seek(offset)
            data = f.read()
    except OSError:
        return offset
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode("utf-8", "replace").splitlines():
        request = access_request(line)
        if request is None:
            continue
        began, failed = request
        side = "after" if since <= began <= since + seconds else \
            "before" if since - seconds <= began < since else None
        if side:
            tally[side][0] += 1
            tally[side][1] += failed
    return offset + end


def access_request(line):
    """(when it began, whether it failed) of a request the act answered, from its access log
    line; None for another line (a static file, Backstage's own check, another format)."""
    found = ACCESS_LINE.search(line)
    if not found:
        return None
    status, agent, logged, took, upstream, address = found.groups()
    if address in ("", "-") or agent == CHECK_AGENT:
        return None
    statuses = [int(s) for s in re.findall(r"\d{3}", upstream)]
    return float(logged) - float(took), int(status) >= 500 or any(s >= 500 for s in statuses)


def append_history(path, record):
    """Append one entry to the production's history, as the shell's lines write them: the
    time (the host's clock, UTC, milliseconds) first, then the fields in sorted order."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    fields = {k: v for k, v in record.items() if v is not None}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"time": stamp, **dict(sorted(fields.items()))},
                           separators=(",", ":")) + "\n")


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
            master, workers = data.get("pid"), [w["pid"] for w in data.get("workers", [])]
            if info.get("pidfile") and not master:  # an HTTP server's: its vassal's child
                master, server, workers = server_pids(info["pidfile"].replace("{release}",
                                                                              release))
                workers = [server, *workers] if server else []
            started = process_start(master, clock, boot) if master else None
            sesses.append({
                "release": release,
                "enabled": name.endswith(".ini"),
                "master": master,
                "workers": workers,
                "socket": info["socket"].replace("{release}", release),
                "uptime": round(time.time() - started) if started else None,
            })
        acts[act] = {
            "current": link_target(info["current"]),
            "live": link_target(info["stable"]),
            "sesses": sesses,
            "facts": live(info),
            "lock": read_text(info["lock"]) if "lock" in info else None,
            "maintenance": maintenance_state(info),
            "lock_age": age(info["lock"]) if "lock" in info else None,
        }
    return {"acts": acts}


def maintenance_state(info):
    """The act's maintenance: None when off, else who switched it on, when, with what message
    (an unreadable record still says it is on)."""
    if not info.get("maintenance") or not os.path.exists(info["maintenance"]["page"]):
        return None
    try:
        details = json.loads(read_text(info["maintenance"]["info"]) or "{}")
    except ValueError:
        details = None
    return details if isinstance(details, dict) else {}


def process_start(pid, clock, boot):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return boot + int(fields[19]) / clock
    except (OSError, IndexError, ValueError):
        return None


def closed(spec):
    """Wait until nothing listens on a vassal's socket any more (its last process exited).

    The socket file may stay: in the system layout its folder is root's, so the vassal,
    which runs as the act's user when it exits, cannot remove it.
    """
    deadline = time.time() + spec["timeout"]
    while time.time() < deadline:
        try:
            connect_unix(spec["socket"], 1).close()
        except (ConnectionRefusedError, FileNotFoundError):
            return {"ok": True}
        except OSError:
            pass
        time.sleep(0.1)
    return {"ok": False, "error": spec["message"]}


def own(spec):
    """Give files (an act's sqlite files) to a user, and take other users' access away.

    Each file is opened without following a link and changed through its descriptor
    (``fchown``, ``fchmod``), so a link or a rename in a folder the act can write (``data/``)
    cannot turn this into a change of another file; a file with other names (hard links) is
    left alone.
    """
    uid, gid = pwd.getpwnam(spec["user"]).pw_uid, grp.getgrnam(spec["group"]).gr_gid
    for path in spec["paths"]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            continue  # missing, or a link
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o007)
        finally:
            os.close(fd)
    return {"ok": True}


def own_folder(spec):
    """Make ``path`` a folder of ``user``, no one else's (0700), in a folder other acts' users
    may write (``data/``). Anything already there under that name that is not the user's own
    folder (a link, or a folder another act made first to read or redirect this act's files)
    is renamed aside, kept as ``.foreign-<name>-<ns>``, never followed or used."""
    uid, gid = pwd.getpwnam(spec["user"]).pw_uid, grp.getgrnam(spec["group"]).gr_gid
    path = spec["path"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and (not stat.S_ISDIR(st.st_mode) or st.st_uid != uid):
        aside = os.path.join(os.path.dirname(path),
                             f".foreign-{os.path.basename(path)}-{time.time_ns()}")
        os.rename(path, aside)
        st = None
    if st is None:
        os.mkdir(path, 0o700)  # root's until given away below: no one else may rename it
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return {"ok": True}


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


def environment(spec):
    """An env file's keys, each with its value's sha256 and, for the keys in ``show``, the
    value: the others may be secrets, whose values never leave the host."""
    try:
        with open(spec["path"], encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        return {"ok": False, "error": f"cannot read {spec['path']}: {exc}"}
    keys = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            keys[key] = {"sha256": hashlib.sha256(value.encode()).hexdigest()}
            if key in spec["show"]:
                keys[key]["value"] = value
    return {"keys": keys}


# sock_diag (netlink) for unix sockets: what ``ss -xl`` reads, without iproute2 on the host.
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP_REQUEST = 4, 20, 0x301
NLMSG_ERROR, NLMSG_DONE = 2, 3
UDIAG_SHOW_NAME, UDIAG_SHOW_RQLEN, UNIX_DIAG_NAME, UNIX_DIAG_RQLEN = 0x01, 0x10, 0, 4
TCP_LISTEN = 10


def unix_queues():
    """Per listening unix socket path of this network namespace, the connections waiting in
    its accept queue (None when the kernel cannot tell)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        request = struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 1 << TCP_LISTEN, 0,
                              UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN, 0xFFFFFFFF, 0xFFFFFFFF)
        nl.send(struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY,
                            NLM_F_DUMP_REQUEST, 1, 0) + request)
        queues = {}
        while True:
            data, at = nl.recv(1 << 16), 0
            while at < len(data):
                length, kind = struct.unpack_from("=IH", data, at)
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    return queues if kind == NLMSG_DONE else None
                name, queue, attr = None, 0, at + 32  # nlmsghdr, then unix_diag_msg
                while attr < at + length:
                    size, field = struct.unpack_from("=HH", data, attr)
                    if field == UNIX_DIAG_NAME:
                        name = data[attr + 4:attr + size].rstrip(b"\0").decode(errors="replace")
                    elif field == UNIX_DIAG_RQLEN:
                        queue = struct.unpack_from("=I", data, attr + 4)[0]
                    attr += (size + 3) & ~3
                if name:
                    queues[name] = queue
                at += (length + 3) & ~3


def drained(spec):
    """Wait until no connection waits in the accept queue of the given sockets (an old
    release's, after the switch: what nginx queued there just before is served before its
    vassal is retired), at most ``timeout`` seconds."""
    deadline = time.monotonic() + spec["timeout"]
    while time.monotonic() < deadline:
        try:
            queues = unix_queues()
        except OSError:
            queues = None
        if queues is None or not any(queues.get(path) for path in spec["sockets"]):
            return {"drained": queues is not None}
        time.sleep(0.05)
    return {"drained": False}


VERBS = {"probe": probe, "environment": environment, "health": health, "smoke": smoke,
         "status": status, "reloaded": reloaded, "verify": verify, "closed": closed, "own": own,
         "own_folder": own_folder, "reload_server": reload_server, "drained": drained,
         "bake": bake}

if __name__ == "__main__":
    result = VERBS[sys.argv[1]](json.loads(sys.argv[2]))
    if not result.get("ok", True):
        sys.exit(result["error"])
    print(json.dumps(result))
