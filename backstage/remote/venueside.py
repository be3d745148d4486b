"""Backstage's helper for venues (the Python API), run on the venue's host, standard library only.

Sent as ``python -c <text> <verb> <json> [args...]`` like ``hostside.py``, joined with
``core.py`` (see :func:`backstage.remote.program`). It reads a venue's
state in one round trip (``describe``, ``status``), allocates an act's port under a lock
(``allocate``), and waits for an act to answer (``wait_up``) or to be gone (``wait_down``). A
verb that fails exits non-zero with its reason on stderr; otherwise it prints one JSON document.
"""

import errno
import fcntl
import json
import os
import socket
import sys
import time

from backstage.remote.core import listing, stats  # joined in when sent: see backstage.remote

FATAL_MARKERS = ("GAME OVER", "Address already in use", "[strict-mode]",
                 "unable to load configuration", "unable to find")
LOG_TAIL_LINES = 20


# --- state --------------------------------------------------------------------------------------

def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (OSError, ValueError):
        return default


def write_json(path, data):
    """Replace a file atomically: write beside it, then rename over it."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def emperor_pid(pidfile, ini):
    """The Emperor's pid if it is alive and really the venue's (pids are reused after a reboot)."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if ini in cmdline(pid) else None


def describe(spec):
    """Everything the API needs to open a venue, in one round trip."""
    root = spec["root"]
    return {
        "exists": os.path.isdir(root),
        "entries": listing(root) or [],
        "record": read_json(os.path.join(root, "venue.json")),
        "ports": read_json(os.path.join(root, "ports.json"), {}),
        "acts": listing(os.path.join(root, "acts")) or [],
        "vassals": listing(os.path.join(root, "vassals")) or [],
        "wheels": listing(os.path.join(root, "wheelhouse")) or [],
        "emperor": emperor_pid(spec["pidfile"], spec["emperor_ini"]),
    }


# --- ports --------------------------------------------------------------------------------------

def candidates(preferred, low, high):
    """Every port of [low, high], starting at ``preferred`` and wrapping around (linear probing)."""
    size = high - low + 1
    return [low + (preferred - low + i) % size for i in range(size)]


def bindable(port):
    """Whether uWSGI could bind 127.0.0.1:port now (it sets SO_REUSEADDR too)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def choose_port(preferred, low, high, taken, free=bindable):
    for port in candidates(preferred, low, high):
        if port not in taken and free(port):
            return port
    raise SystemExit(f"no free port left in {low}-{high}")


def registry_path():
    """The host's record of every venue's ports, so that venues side by side never share one."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                             "state")
    return os.path.join(state, "backstage", "ports.json")


def registry_taken(registry, venue, act):
    """Ports other venues' acts hold; entries whose venue forgot them are stale and skipped."""
    taken = set()
    for port, owner in registry.items():
        if owner.get("venue") == venue and owner.get("act") == act:
            continue
        recorded = read_json(os.path.join(owner.get("venue", "/nonexistent"), "ports.json"), {})
        if recorded.get(owner.get("act")) == int(port):
            taken.add(int(port))
    return taken


class Locked:
    """An exclusive ``flock`` on a lock file for the length of a ``with`` block."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.file = open(path, "a")  # noqa: SIM115  (closed in __exit__)

    def __enter__(self):
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.file.close()


def allocate(spec):
    """The act's port: the one recorded in the venue, else the first free one from ``preferred``.

    Recorded in the venue's ports.json (and the host's registry) before the act is launched, so
    it stays the act's port across restarts of Python, of the Emperor and of the machine.
    """
    venue, act = spec["venue"], spec["act"]
    with Locked(spec["lock"]):
        ports = read_json(spec["ports"], {})
        if act in ports:
            return {"port": ports[act], "new": False}
        taken = {p for a, p in ports.items() if a != act}
        registry_file = registry_path()
        try:
            registry_lock = Locked(registry_file + ".lock")
        except OSError:
            registry_lock = None  # no writable state directory: this venue's record only
        if registry_lock is None:
            port = choose_port(spec["preferred"], spec["low"], spec["high"], taken)
        else:
            with registry_lock:
                registry = read_json(registry_file, {})
                taken |= registry_taken(registry, venue, act)
                port = choose_port(spec["preferred"], spec["low"], spec["high"], taken)
                registry[str(port)] = {"venue": venue, "act": act}
                write_json(registry_file, registry)
        ports[act] = port
        write_json(spec["ports"], ports)
    return {"port": port, "new": True}


# --- processes ----------------------------------------------------------------------------------


def act_processes(act_dir, uwsgi):
    """Pids of the act's uWSGI processes: the venue's uwsgi binary working in the act's folder."""
    found = []
    act_dir, uwsgi = os.path.realpath(act_dir), os.path.realpath(uwsgi)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if (os.readlink(f"/proc/{entry}/cwd") == act_dir
                    and os.readlink(f"/proc/{entry}/exe") == uwsgi):
                found.append(int(entry))
        except OSError:
            continue
    return sorted(found)


def http_status(port, host="localhost", path="/", timeout=5):
    """The status of a GET to 127.0.0.1:port, or None when nothing answers."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "backstage"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def refuses(port):
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.settimeout(2)
    try:
        conn.connect(("127.0.0.1", port))
        return False
    except OSError as exc:
        return exc.errno == errno.ECONNREFUSED
    finally:
        conn.close()


def log_tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 65536))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def new_log_text(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def workers(spec):
    data = stats(spec["stats"]) or {}
    return {"workers": [w["pid"] for w in data.get("workers", [])]}


def wait_up(spec, offset="0", old=""):
    """Wait until the act answers HTTP below 500 (and, after a reload, with new workers).

    ``offset`` is the size of the act's log before the launch; ``old`` what ``workers`` printed
    before a reload (empty for a start).

    Fails at once when the act's log shows uWSGI giving up (no app, port taken, bad option),
    else after ``timeout`` seconds; the reason comes with the last lines of the act's log.
    """
    old_workers = set(json.loads(old)["workers"]) if old.strip() else set()
    deadline = time.time() + spec["timeout"]
    reason = f"no answer on 127.0.0.1:{spec['port']} within {spec['timeout']} s"
    while time.time() < deadline:
        fresh = new_log_text(spec["log"], int(offset or 0))
        fatal = next((m for m in FATAL_MARKERS if m in fresh), None)
        if fatal:
            # The Emperor respawns the vassal at once: show the log up to the first failure.
            end = fresh.find("\n", fresh.index(fatal))
            lines = fresh[: end if end >= 0 else len(fresh)].splitlines()[-LOG_TAIL_LINES:]
            return {"ok": False, "error": f"{spec['act']}: uWSGI gave up ({fatal!r}); "
                                          f"lines of {spec['log']} up to there:\n"
                                          + "\n".join(lines)}
        status = http_status(spec["port"], spec.get("host", "localhost"), spec.get("path", "/"))
        if status is not None and status < 500:
            if not old_workers:
                return {"ok": True, "status": status}
            current = workers(spec)["workers"]
            if current and not set(current) & old_workers and all(p > 0 for p in current):
                return {"ok": True, "status": status, "workers": current}
        elif status is not None:
            reason = f"127.0.0.1:{spec['port']}{spec.get('path', '/')} answered {status}"
        time.sleep(0.1)
    return {"ok": False, "error": f"{spec['act']}: {reason}; last lines of {spec['log']}:\n"
                                  + log_tail(spec["log"])}


def wait_down(spec):
    """Wait until none of the act's processes is left and its port refuses connections."""
    deadline = time.time() + spec["timeout"]
    while time.time() < deadline:
        left = act_processes(spec["act_dir"], spec["uwsgi"])
        if not left and refuses(spec["port"]):
            return {"ok": True}
        time.sleep(0.1)
    return {"ok": False, "error": f"{spec['act']} did not stop within {spec['timeout']} s "
                                  f"(processes left: {left})"}


def status(spec):
    """Per act: enabled or not, running or not, master and worker pids, port."""
    result = {}
    for act, info in spec["acts"].items():
        data = stats(info["stats"]) or {}
        vassal = info["vassal"]
        enabled = True if os.path.exists(vassal) else (
            False if os.path.exists(vassal + ".stopped") else None)
        pids = act_processes(info["act_dir"], spec["uwsgi"])
        result[act] = {
            "enabled": enabled,
            "running": bool(pids),
            "master": data.get("pid"),
            "workers": [w["pid"] for w in data.get("workers", [])],
            "pids": pids,
            "port": info["port"],
        }
    return {"acts": result, "emperor": emperor_pid(spec["pidfile"], spec["emperor_ini"])}


VERBS = {"describe": describe, "allocate": allocate, "wait_up": wait_up, "wait_down": wait_down,
         "status": status, "workers": workers}

if __name__ == "__main__":
    outcome = VERBS[sys.argv[1]](json.loads(sys.argv[2]), *sys.argv[3:])
    if not outcome.get("ok", True):
        sys.exit(outcome["error"])
    print(json.dumps(outcome))
