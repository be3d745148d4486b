"""Commands that unpack a release, link its shared state and run Django's management steps."""

from backstage.commands.privileges import as_user
from backstage.commands.shell import Script, argv, q
from backstage.model import Layout, RunAs


def unpack_release(script: Script, layout: Layout, act: str, release: str,
                   env_size: int) -> Script:
    """Read the env file then the release tarball from stdin, and install both.

    Stdin holds ``env_size`` bytes of env file (environment and secrets: written 0600, never
    in argv), then a tar.gz whose ``code/`` folder becomes the release. ``dd bs=1`` reads the
    env file byte by byte so that not one byte of the tarball behind it is consumed.
    """
    incoming = f"{layout.releases(act)}/.incoming-{release}"
    final = layout.release(act, release)
    env_tmp = f"{layout.env_file(act, release)}.backstage-new"
    script.step("upload")
    script.mkdirs([layout.releases(act), layout.media(act), layout.data])
    script.remove(incoming)
    script.mkdirs([incoming])
    script.raw(f"(umask 077 && dd bs=1 count={int(env_size)} status=none of={q(env_tmp)})")
    script.run("tar", "-xzf", "-", "-C", incoming)
    script.run("mv", "-f", env_tmp, layout.env_file(act, release))
    script.remove(final)
    script.run("mv", f"{incoming}/code", final)
    return script.remove(incoming)


def manage_function(layout: Layout, act: str, release: str, settings: str, venue_dir: str,
                    manage: str, run_as: RunAs | None = None) -> str:
    """A shell function ``manage ARGS`` running manage.py as the vassal would run the app.

    Same working directory (the act's shared directory), same environment (the env file,
    exported line by line without any expansion), same interpreter, same import path, same
    user (``run_as``, system layout), which reads the env file itself.
    """
    release_dir = layout.release(act, release)
    exports = " ".join([
        "export",
        q(f"DJANGO_SETTINGS_MODULE={settings}"),
        q(f"BACKSTAGE_ACT={act}"),
        q(f"BACKSTAGE_RELEASE={release}"),
        q(f"BACKSTAGE_STATIC_ROOT={layout.static(act, release)}"),
        q(f"PYTHONPATH={release_dir}"),
        "PYTHONUTF8=1",
    ])
    # Chained with && because callers test its status, which turns off set -e inside it.
    body = (
        f"while IFS= read -r line || [ -n \"$line\" ]; do [ -z \"$line\" ] || export \"$line\"; done"
        f" < {q(layout.env_file(act, release))} &&"
        f" {exports} &&"
        f" {argv(venue_dir + '/bin/python', release_dir + '/' + manage)} \"$@\""
    )
    return f"manage() {{ ( cd {q(layout.shared(act))} && {as_user(run_as, body) if run_as else body}; ) }}"


def mark_bad(layout: Layout, act: str, release: str) -> str:
    return f"printf '%s\\n' {q(release)} >> {q(layout.bad_list(act))}"


def prepare_release(script: Script, layout: Layout, act: str, release: str, settings: str,
                    venue_dir: str, manage: str, databases: list[str],
                    run_as: RunAs | None = None) -> Script:
    """``check --deploy``, ``migrate`` for each logical database, then ``collectstatic``."""
    script.raw(manage_function(layout, act, release, settings, venue_dir, manage, run_as))
    failed = f"{{ {mark_bad(layout, act, release)}; exit 1; }}"
    script.step("check")
    script.raw("manage " + argv("check", "--deploy", "--fail-level", "ERROR") + f" || {failed}")
    for database in databases:
        script.step(f"migrate {database}")
        script.raw("manage " + argv("migrate", "--noinput", "--database", database)
                   + f" || {failed}")
    script.step("collectstatic")
    return script.raw("manage " + argv("collectstatic", "--noinput", "--clear", "-v", "0")
                      + f" || {failed}")
