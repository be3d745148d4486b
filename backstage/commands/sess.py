"""Commands that start, health-check, switch, retire, stop and restart sesses (vassals)."""

from backstage.commands import hostside
from backstage.commands import servers as server_cmd
from backstage.commands.release import mark_bad
from backstage.commands.shell import Script, argv, q
from backstage.commands.stage import rescan_emperor, rescan_line
from backstage.model import Layout, servers

LOG_TAIL_LINES = 30
# uWSGI's request log lines (and its respawns of a failing server). Releases share the act's
# log: under load the live release's requests would push the new vassal's startup errors out
# of the tail shown on failure.
# An extended regular expression (grep -E) of the act log's lines a failure's tail leaves out:
# uWSGI's request lines and the attached server daemons' own.
REQUEST_LOG_LINE = r"^\[pid: [0-9]+\|app: |^\[uwsgi-daemons\] "
STOPPED_SUFFIX = ".stopped"
RETIRED_SUFFIX = ".retired"
# After the switch, an old vassal keeps serving what nginx queued on its socket just before.
RETIRE_GRACE_SECONDS = 1.0
# How long a revive waits for a pending retire (which takes the grace above, then renames).
RETIRE_WAIT_SECONDS = 30
# At most this long, after the grace, a retire waits for the old sockets' queues to empty
# (below the revive's wait: a rollback meanwhile still gets its turn).
RETIRE_DRAIN_SECONDS = 20


def start_vassal(script: Script, layout: Layout, act: str, release: str, ini: str) -> Script:
    script.step("start")
    server_cmd.prepare(script, layout, act, release, ini)
    script.write_file(layout.vassal(act, release), ini)
    return rescan_emperor(script, layout)


def health_check(script: Script, layout: Layout, python: str, act: str, release: str,
                 check: dict) -> Script:
    """Check the new release through its own socket; on failure remove it, mark it bad and
    show the act's log (its startup errors, not the live release's requests)."""
    return release_check(script, layout, python, act, release, "health", check)


def smoke_check(script: Script, layout: Layout, python: str, act: str, release: str,
                smoke: dict) -> Script:
    """Send the act's smoke requests to the new release through its own socket (``smoke``:
    the checks, Host, timeout, and the history record of the answers); on failure as
    :func:`health_check`."""
    return release_check(script, layout, python, act, release, "smoke",
                         {**smoke, "history": layout.history})


def release_check(script: Script, layout: Layout, python: str, act: str, release: str,
                  verb: str, check: dict) -> Script:
    """Run one of the host helper's checks on a release through its own socket."""
    script.step(verb)
    spec = {"socket": layout.socket(act, release), "http": servers.marker(layout, act, release),
            **check}
    log_tail = (f"{{ grep -avE {q(REQUEST_LOG_LINE)} {q(layout.act_log(act))} 2>/dev/null || true; }} "
                f"| tail -n {LOG_TAIL_LINES} >&2")
    on_failure = "; ".join([
        argv("rm", "-f", layout.vassal(act, release)),
        rescan_line(layout),
        mark_bad(layout, act, release),
        f"echo {q('--- last lines of ' + layout.act_log(act) + ', without requests:')} >&2",
        log_tail,
        'printf \'%s\\n\' "$answer" >&2',
        "exit 1",
    ])
    return script.raw(f"if ! answer=$({hostside(layout, python, verb, spec)} 2>&1); "
                      f"then {on_failure}; fi")


def health_via_nginx(script: Script, layout: Layout, python: str, check: dict) -> Script:
    """Check the act through nginx (``check`` names the port, and TLS if any); this also
    waits out nginx's asynchronous reload."""
    script.step("health via nginx")
    return script.raw(hostside(layout, python, "health", check))


def smoke_via_nginx(script: Script, layout: Layout, python: str, act: str, release: str,
                    smoke: dict) -> Script:
    """Send the smoke requests through nginx (``smoke`` names the port, and TLS if any) once
    traffic is switched; on failure mark the release bad (the rollout then reverts)."""
    script.step("smoke via nginx")
    spec = {**smoke, "history": layout.history}
    return script.raw(f"if ! answer=$({hostside(layout, python, 'smoke', spec)} 2>&1); then "
                      f"{mark_bad(layout, act, release)}; "
                      'printf \'%s\\n\' "$answer" >&2; exit 1; fi')


def mark_good(script: Script, layout: Layout, act: str, release: str) -> Script:
    """Record a release as good (one a rollback may go back to): once its checks passed."""
    return script.raw(f"printf '%s\\n' {q(release)} >> {q(layout.good_list(act))}")


def switch(script: Script, layout: Layout, act: str, release: str) -> Script:
    """Point the stable socket (what nginx uses) and ``current`` at a release that passed its
    checks before (a rollback's, a revert's), and record it good again.

    nginx resolves the socket path at every connect, so new requests go to the new release
    from the rename on, without a reload. A deploy relinks (:func:`relink`) and records its
    release good only once it passed its checks through nginx (:func:`mark_good`).
    """
    script.step("switch")
    return mark_good(relink(script, layout, act, release), layout, act, release)


def relink(script: Script, layout: Layout, act: str, release: str) -> Script:
    """Point the stable socket and ``current`` at a release, each link replaced in one rename
    (and the HTTP stable socket, in the order that keeps nginx speaking each release's
    protocol: :mod:`backstage.commands.servers`)."""
    server_cmd.link_http_before(script, layout, act, release)
    script.link(layout.socket_link(act, release), layout.stable_socket(act))
    server_cmd.unlink_http_after(script, layout, act, release)
    return script.link(f"releases/{release}", layout.current(act))


def enable_vassal(script: Script, layout: Layout, act: str, release: str, ini: str) -> Script:
    """Write a release's vassal file afresh (a repair), dropping its stopped or retired copy."""
    ini_path = layout.vassal(act, release)
    script.step("start")
    script.run("rm", "-f", ini_path + STOPPED_SUFFIX, ini_path + RETIRED_SUFFIX)
    server_cmd.prepare(script, layout, act, release, ini)
    script.write_file(ini_path, ini)
    return rescan_emperor(script, layout)


def retire(script: Script, layout: Layout, act: str, releases: list[str],
           grace: float = RETIRE_GRACE_SECONDS) -> Script:
    """Disable old releases' vassals once the connections queued on their sockets are served.

    The files are renamed ``*.ini.retired``: the Emperor stops each vassal gracefully (it
    finishes in-flight requests), and the file stays for a rollback that needs no rebuild. This
    runs in the background on the host after ``grace`` seconds, so the command (and the deploy
    or rollback) does not wait for it; a later step that finds the vassal still enabled simply
    retires it again.
    """
    if not releases:
        return script
    script.step("retire")
    moves = []
    stable = q(layout.stable_socket(act))
    for release in releases:
        retired = layout.vassal(act, release) + RETIRED_SUFFIX
        # A rollback may make the release live again before this runs: then it stays.
        not_live = f'[ "$(readlink {stable})" != {q(layout.socket_link(act, release))} ]'
        for suffix in ("", STOPPED_SUFFIX):
            path = layout.vassal(act, release) + suffix
            moves.append(f"if [ -e {q(path)} ] && {not_live}; then "
                         f"{argv('mv', '-f', path, retired)}; fi")
    # Then until the connections nginx queued on the old sockets are served (the helper
    # installed by the probe, run by the Emperor's Python; without it, the grace alone).
    drain = hostside(layout, f"{layout.stage_venv}/bin/python", "drained", {
        "sockets": [layout.socket(act, r) for r in releases], "timeout": RETIRE_DRAIN_SECONDS})
    lock = layout.retire_lock(act)
    script.mkdirs([lock.rsplit("/", 1)[0]])
    # The act's retire lock is taken here, before the background job starts, and held by the
    # job (it inherits the descriptor) until it is done: a revive meanwhile waits (see revive).
    script.raw(f"exec 8>{q(lock)}; flock -w {RETIRE_WAIT_SECONDS} 8")
    later = "; ".join([argv("sleep", str(grace)), f"{drain} || true", *moves,
                       rescan_line(layout)])
    return script.raw(f"( {later} ) </dev/null >/dev/null 2>&1 & exec 8>&-")


def revive(script: Script, layout: Layout, act: str, release: str) -> Script:
    """Enable a retired release's vassal again (rollback); it may still be running.

    First waits for a retire still pending from a deploy a moment ago (it holds the act's
    retire lock): else it could retire this release between the revive and the switch.
    """
    script.step("start")
    ini, lock = layout.vassal(act, release), layout.retire_lock(act)
    script.raw(f"if [ -e {q(lock)} ]; then flock -w {RETIRE_WAIT_SECONDS} {q(lock)} true; fi")
    script.raw(f"if [ -e {q(ini + RETIRED_SUFFIX)} ]; then "
               f"{argv('mv', '-f', ini + RETIRED_SUFFIX, ini)}; fi")
    return rescan_emperor(script, layout)


def discard(script: Script, layout: Layout, act: str, release: str,
            grace: float | None = None) -> Script:
    """Remove a release's vassal that a stopped rollout prepared (it is not marked bad).

    With ``grace`` (a revert: the release took traffic), in the background that many seconds
    later, as :func:`retire` does: it first serves what nginx queued on its socket just before
    the switch back.
    """
    script.step("discard")
    remove = argv("rm", "-f", layout.vassal(act, release),
                  layout.vassal(act, release) + STOPPED_SUFFIX)
    if grace is None:
        return rescan_emperor(script.raw(remove), layout)
    later = "; ".join([argv("sleep", str(grace)), remove, rescan_line(layout)])
    return script.raw(f"( {later} ) </dev/null >/dev/null 2>&1 &")


def unlink_live(script: Script, layout: Layout, act: str) -> Script:
    """Take an act off the air when there is no previous release to go back to."""
    script.step("unlink")
    script.raw(server_cmd.unlink_http(layout, act))
    return script.run("rm", "-f", layout.stable_socket(act), layout.current(act))


def delete_releases(script: Script, layout: Layout, act: str, releases: list[str]) -> Script:
    """Cleanup: remove releases with their env files, retired vassal files and sockets (which
    a vassal cannot remove from root's folder)."""
    if not releases:
        return script
    script.step("cleanup")
    paths = [p for r in releases for p in (layout.release(act, r), layout.env_file(act, r),
                                           layout.vassal(act, r) + RETIRED_SUFFIX,
                                           layout.socket(act, r),
                                           *server_cmd.release_files(layout, act, r))]
    return script.remove(*paths)


def rotate_log(script: Script, layout: Layout, act: str, max_bytes: int) -> Script:
    """Past ``max_bytes``, copy the act's log to ``<log>.1`` (replacing the last one) and empty
    it in place: its vassals keep writing to the same file, at its new end (uWSGI appends).

    Root does it, in root's ``log/`` folder (an act cannot plant a link there); the vassal's
    master, which runs as the act's user, could not rename in it.
    """
    log = q(layout.act_log(act))
    return script.raw(f'if [ "$(stat -c %s {log} 2>/dev/null || echo 0)" -gt {int(max_bytes)} ]; '
                      f"then cp -f {log} {q(layout.act_log(act) + '.1')} && : > {log}; fi")


def delete_trees(script: Script, layout: Layout, digests: list[str]) -> Script:
    """Cleanup: remove source trees no kept release was made from."""
    return script.remove(*(layout.tree(d) for d in digests))


def stop(script: Script, layout: Layout, python: str, act: str, release: str) -> Script:
    """Disable the vassal file (the Emperor ignores ``*.ini.stopped``) and wait until nothing
    listens on its socket."""
    ini = layout.vassal(act, release)
    script.step("stop")
    script.raw(f"if [ -e {q(ini)} ]; then {argv('mv', '-f', ini, ini + STOPPED_SUFFIX)}; fi")
    rescan_emperor(script, layout)
    return script.raw(hostside(layout, python, "closed", {
        "socket": layout.socket(act, release), "timeout": 30,
        "message": f"{act}@{release} did not stop within 30 s"}))


def start(script: Script, layout: Layout, act: str, release: str) -> Script:
    ini = layout.vassal(act, release)
    script.step("start")
    script.raw(f"if [ -e {q(ini + STOPPED_SUFFIX)} ]; then "
               f"{argv('mv', '-f', ini + STOPPED_SUFFIX, ini)}; fi")
    return rescan_emperor(script, layout)


def restart(script: Script, layout: Layout, act: str, release: str) -> Script:
    """Reload a vassal gracefully by bumping its file's mtime.

    The Emperor compares mtimes in whole seconds, so the new mtime is at least one second
    past the old one even when two restarts come within the same second. An HTTP server's
    vassal is left alone: :func:`wait_reloaded` has the server replace its workers.
    """
    ini = q(layout.vassal(act, release))
    script.step("restart")
    script.raw(server_cmd.when_http(layout, act, release, ":",
                                    f"m=$(( $(stat -c %Y {ini}) + 1 )); n=$(date +%s); "
                                    f"touch -d \"@$(( m > n ? m : n ))\" {ini}"))
    return rescan_emperor(script, layout)


def wait_reloaded(script: Script, python: str, layout: Layout, act: str, release: str,
                  old_workers: list[int]) -> Script:
    spec = {"stats": layout.stats_socket(act, release), "old": old_workers, "timeout": 30}
    return script.raw(server_cmd.when_http(
        layout, act, release, server_cmd.reload_line(layout, python, act, release),
        hostside(layout, python, "reloaded", spec)))


NOT_BACKWARDS_COMPATIBLE = "the migration is not backwards compatible"


def live_marker(layout: Layout, act: str) -> str:
    """Root's note that the act's live release passed its health check before the migrations."""
    return f"{layout.state}/live-healthy-{act}"


def live_before_migrate(script: Script, layout: Layout, python: str, act: str, release: str,
                        check: dict) -> Script:
    """Before the migrations: note whether the live release passes its health check (one
    try), so the check after them blames the migrations only for what they broke (not for a
    health check the deploy changes, which only the new code may pass)."""
    script.step("live release before migrate")
    spec = {"socket": layout.socket(act, release), **check, "retries": 1}
    marker = live_marker(layout, act)
    return script.raw(f"if {hostside(layout, python, 'health', spec)} >/dev/null 2>&1; then "
                      f"{argv('touch', marker)}; else {argv('rm', '-f', marker)}; fi")


def live_check(script: Script, layout: Layout, python: str, act: str, release: str,
               check: dict) -> Script:
    """Health-check the live release through its own socket after the migrations, before a
    new release starts, if it passed before them (:func:`live_before_migrate`); failing now,
    say the migration is not backwards compatible and stop (the live release is left as it
    is: it still has the traffic)."""
    script.step("live release after migrate")
    spec = {"socket": layout.socket(act, release), **check}
    marker = live_marker(layout, act)
    message = (f"{act}@{release}, the live release, fails its health check on the migrated "
               f"database: {NOT_BACKWARDS_COMPATIBLE}")
    failed = f"printf '%s\\n' \"$answer\" {q(message)} >&2; exit 1"
    return script.raw(f"if [ -e {q(marker)} ]; then {argv('rm', '-f', marker)}; "
                      f"if ! answer=$({hostside(layout, python, 'health', spec)} 2>&1); then "
                      f"{failed}; fi; fi")
