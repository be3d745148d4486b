"""Commands that unpack a release, link its shared state and run Django's management steps."""

import json
from dataclasses import dataclass

from backstage.artefacts.bundle import Upload
from backstage.commands import history, hostside
from backstage.commands import snapshots as snapshots_cmd
from backstage.commands.privileges import as_user
from backstage.commands.shell import Script, argv, q
from backstage.model import Layout, Production, RunAs, django
from backstage.remote import standalone


def unpack_release(script: Script, layout: Layout, python: str, act: str, release: str,
                   env_size: int, upload: Upload) -> Script:
    """Read the env file, then the tree's upload from stdin; make the release from the tree.

    Stdin holds ``env_size`` bytes of env file (environment and secrets: written 0600, never
    in argv), then the tar.gz of the upload, if the host lacks the tree. ``dd bs=1`` reads the
    env file byte by byte so that not one byte of the tarball behind it is consumed. The
    release is a hard-link copy of the tree (a plain copy if ``releases/`` is on another
    filesystem): nothing is copied, and nothing that runs in a
    release (``collectstatic``, bytecode, the act) rewrites a file in place, so the tree stays
    what its digest says.
    """
    incoming = f"{layout.releases(act)}/.incoming-{release}"
    env_tmp = f"{layout.env_file(act, release)}.backstage-new"
    script.step("upload")
    script.mkdirs([layout.releases(act), layout.env_dir(act), layout.shared(act),
                   layout.media(act), layout.data, layout.trees])
    remove_leftovers(script, layout, act)
    script.raw(f"(umask 077 && dd bs=1 count={int(env_size)} status=none of={q(env_tmp)})")
    receive_tree(script, layout, python, act, upload)
    script.step("upload")
    script.run("mv", "-f", env_tmp, layout.env_file(act, release))
    script.remove(incoming, layout.release(act, release))
    # Hard links need one filesystem; releases/ mounted elsewhere gets a plain copy.
    tree = layout.tree(upload.digest)
    script.raw(f"{argv('cp', '-al', tree, incoming)} 2>/dev/null || "
               f"{{ {argv('rm', '-rf', '--', incoming)} && {argv('cp', '-a', tree, incoming)}; }}")
    return script.run("mv", "-T", incoming, layout.release(act, release))


def remove_leftovers(script: Script, layout: Layout, act: str) -> Script:
    """Remove what a deploy of this act cut short left behind (its env file's temporary copy
    holds secrets): files being written, releases and trees being made. The act's lock is
    held, so no other deploy writes them; another act's trees in the making are left alone."""
    script.run("find", layout.env_dir(act), layout.releases(act), "-mindepth", "1",
               "-maxdepth", "1", "(", "-name", "*.backstage-new", "-o", "-name", ".incoming-*",
               ")", "-exec", "rm", "-rf", "--", "{}", "+")
    return script.run("find", layout.trees, "-mindepth", "1", "-maxdepth", "1", "-regex",
                      incoming_tree_pattern(layout, act), "-exec", "rm", "-rf", "--", "{}", "+")


def incoming_tree(layout: Layout, digest: str, act: str) -> str:
    """Where an act's deploy makes a tree: a folder of its own (another act of the repository
    may make the same tree at the same time)."""
    return f"{layout.trees}/.incoming-{digest}-{act}"


def incoming_tree_pattern(layout: Layout, act: str) -> str:
    """``find -regex`` for this act's trees in the making (digests are hex, names have no
    character that means something in a regex but ``-``, which is literal here)."""
    return incoming_tree(layout, "[0-9a-f]+", act)


def receive_tree(script: Script, layout: Layout, python: str, act: str,
                 upload: Upload) -> Script:
    """Make ``trees/<digest>`` from stdin: the whole tree, or the changes from a base tree.

    A delta is applied to a hard-link copy of the base: removed paths (and directories left
    empty) go, then changed files are unpacked with ``--unlink-first``, so a file shared with
    the base is replaced, never written through. Either way the result is checked against the
    digest before it gets its name; a delta that does not match also removes its base, which
    may have been changed on the host, so the next deploy does not build on it again.

    Another act of the repository may deploy the same revision at the same time: each builds
    in a folder of its own, and the one that finds the tree made already keeps that one.
    """
    if upload.present:
        return script
    incoming = incoming_tree(layout, upload.digest, act)
    doomed = [incoming]
    script.remove(incoming)
    if upload.base is None:
        script.mkdirs([incoming])
    else:
        base = layout.tree(upload.base)
        doomed.append(base)
        script.run("cp", "-al", base, incoming)
        script.remove(*(f"{incoming}/{path}" for path in upload.removed))
        script.run("find", incoming, "-mindepth", "1", "-depth", "-type", "d", "-empty",
                   "-delete")
    script.run("tar", "-xzf", "-", "-C", incoming, "--unlink-first")
    script.step("verify")
    spec = {"path": incoming, "digest": upload.digest, "base": upload.base}
    check = hostside(layout, python, "verify", spec)
    failed = "; ".join([argv("rm", "-rf", "--", *doomed), 'printf \'%s\\n\' "$verified" >&2',
                        "exit 1"])
    script.raw(f"if ! verified=$({check} 2>&1); then {failed}; fi")
    tree = layout.tree(upload.digest)
    move = argv("mv", "-T", incoming, tree)
    return script.raw(f"if ! {move} 2>/dev/null; then if [ -d {q(tree)} ]; then "
                      f"{argv('rm', '-rf', '--', incoming)}; else {move}; fi; fi")


@dataclass(frozen=True)
class Manage:
    """How ``manage.py`` of a release runs: as the vassal runs the app (see
    :mod:`backstage.model.django`), with the venue's interpreter."""

    venue_dir: str
    manage: str  # relative to the release (the repository's root)
    environment: dict[str, str]
    import_path: list[str]
    cwd: str

    @classmethod
    def of(cls, production: Production, act: str, layout: Layout, release: str,
           venue_dir: str) -> "Manage":
        return cls(venue_dir, production.acts[act].manage_path,
                   django.process_environment(production, act, layout, release),
                   django.import_path(production, act, layout, release),
                   django.working_directory(production, act, layout, release))


def manage_function(layout: Layout, act: str, release: str, manage: Manage,
                    run_as: RunAs | None = None, program: str | None = None) -> str:
    """A shell function ``manage ARGS`` running manage.py as the vassal would run the app
    (see :func:`act_function`). With ``program`` (Python text), the function runs
    ``python -c PROGRAM MANAGE_PY ARGS`` instead."""
    python = [manage.venue_dir + "/bin/python", *(["-c", program] if program else [])]
    command = argv(*python, layout.in_release(act, release, manage.manage))
    return act_function("manage", layout, act, release, manage, run_as, command)


def act_function(name: str, layout: Layout, act: str, release: str, manage: Manage,
                 run_as: RunAs | None, program: str = "") -> str:
    """A shell function ``name ARGS`` running ``program ARGS`` (``program``: quoted words; none:
    ARGS is the whole command) as the vassal runs the app: same working directory, same
    environment (the env file, exported line by line without any expansion, then Backstage's
    variables), same import path, same user (``run_as``, system layout), which reads the env
    file itself."""
    exports = " ".join([
        "export",
        *(q(f"{key}={value}") for key, value in manage.environment.items()),
        q("PYTHONPATH=" + ":".join(manage.import_path)),
        "PYTHONUTF8=1",
    ])
    # Chained with && because callers test its status, which turns off set -e inside it.
    body = (
        f"while IFS= read -r line || [ -n \"$line\" ]; do [ -z \"$line\" ] || export \"$line\"; done"
        f" < {q(layout.env_file(act, release))} &&"
        f" {exports} &&"
        f" {program + ' ' if program else ''}\"$@\""
    )
    return f"{name}() {{ ( cd {q(manage.cwd)} && {as_user(run_as, body) if run_as else body}; ) }}"


def write_settings_modules(script: Script, layout: Layout, act: str, release: str,
                           modules: dict[str, str]) -> Script:
    """Put the settings modules kept beside the code (Backstage's overlay, the act's
    ``settings_file``) in the release (root's, like the rest of it)."""
    if modules:
        script.mkdirs([layout.overlay_dir(act, release)])
    for module, text in modules.items():
        script.write_file(f"{layout.overlay_dir(act, release)}/{module}.py", text)
    return script


def mark_bad(layout: Layout, act: str, release: str) -> str:
    return f"printf '%s\\n' {q(release)} >> {q(layout.bad_list(act))}"


def prepare_release(script: Script, layout: Layout, act: str, release: str, manage: Manage,
                    databases: dict[str, str], record: dict | None = None,
                    run_as: RunAs | None = None, static: bool = True,
                    snapshots: dict[str, str] | None = None, keep: int = 5,
                    own_sqlite: bool = False, destructive: str | None = None,
                    checked: dict[str, str] | None = None) -> Script:
    """``check --deploy``, ``collectstatic`` (``static``; skipped where the act has no
    ``django.contrib.staticfiles``), then ``migrate`` each logical database (``databases``:
    logical name -> the act's Django alias for it), all in one Python process
    (:mod:`backstage.remote.managesteps`), each announced as its step. Migrations come last,
    so a release that fails before them has changed no database.

    ``record``: the history entry that says the databases were migrated (written once they are).
    ``snapshots``: alias -> snapshot file name of the sqlite databases to snapshot before
    their migrate (into ``backups/<act>/``, ``keep`` each; see :mod:`.snapshots`), restored
    there if their migrate fails.
    ``own_sqlite``: also migrate the project's own ``default`` database when it is a sqlite
    file (the act names no logical database; see ``Act.migrates_own_sqlite``).
    ``destructive``: ``refuse`` or ``allow`` migrations with destructive or irreversible
    operations (each plan is said first; see :mod:`backstage.remote.managesteps`); a refusal
    fails the step without marking the release bad. ``checked``: databases migrated later
    (shared ones, once per deploy) whose plans are checked here too, so a refusal comes before
    any database is migrated.
    """
    script.raw(manage_function(layout, act, release, manage, run_as,
                               program=standalone("managesteps")))
    steps = [["check", "check", {"deploy": True, "fail_level": "ERROR"}],
             *([["collectstatic", "collectstatic", {"interactive": False, "clear": True,
                                                     "verbosity": 0}]] if static else []),
             *migrate_steps(databases, destructive),
             *migrate_steps(checked or {}, destructive, check_only=True),
             *([["migrate default", "migrate", {"interactive": False, "database": "default",
                                                "backstage_sqlite_only": True}]]
               if own_sqlite else [])]
    files = snapshots or {}
    steps = snapshots_cmd.with_snapshots(steps, files)
    redirections = snapshots_cmd.local_descriptors(script, layout, act, list(files.values()))
    kept = snapshots_cmd.keep_finished(layout, act, list(files.values()), keep)
    # Status 3: a migration the policy refuses; the release itself is not bad.
    script.raw("manage " + q(json.dumps(steps)) + redirections
               + f" || {{ status=$?; {kept}; [ \"$status\" = 3 ] || "
               f"{mark_bad(layout, act, release)}; exit 1; }}")
    script.raw(kept)
    if databases and record:
        history.append(script, layout, {**record, "databases": list(databases)})
    return script


def migrate_steps(databases: dict[str, str], destructive: str | None = None,
                  check_only: bool = False) -> list:
    """managesteps' ``migrate`` of each logical database (name -> the act's Django alias),
    under the policy ``destructive`` (None: none, no plan said); ``check_only``: databases
    migrated by another step, only planned and checked against the policy."""
    return [[f"{'check' if check_only else 'migrate'} {database}", "migrate", {
        "interactive": False, "database": alias,
        **({"backstage": {"database": database, "destructive": destructive,
                          "check_only": check_only}} if destructive else {})}]
        for database, alias in databases.items()]


def migrate(script: Script, databases: dict[str, str], on_failure: str = "") -> Script:
    """``manage migrate`` each logical database (name -> the act's Django alias for it), after
    :func:`manage_function`: the shared databases, once per deploy."""
    for database, alias in databases.items():
        script.step(f"migrate {database}")
        script.raw("manage " + argv("migrate", "--noinput", "--database", alias) + on_failure)
    return script


def migrate_shared(script: Script, layout: Layout, act: str, release: str, manage: Manage,
                   databases: dict[str, str], run_as: RunAs | None = None,
                   destructive: str | None = None) -> Script:
    """Migrate the shared databases with a release's code (once per deploy, on one host);
    with a ``destructive`` policy, through managesteps, each plan said first."""
    if destructive is None:
        script.raw(manage_function(layout, act, release, manage, run_as))
        return migrate(script, databases)
    return manage_steps(script, layout, act, release, manage,
                        migrate_steps(databases, destructive), run_as)


def manage_steps(script: Script, layout: Layout, act: str, release: str, manage: Manage,
                 steps: list, run_as: RunAs | None = None) -> Script:
    """Run management steps (``[name, command, options]``, Django's commands or
    managesteps' own) in one Python process in a release, as its vassal runs the app."""
    script.raw(manage_function(layout, act, release, manage, run_as,
                               program=standalone("managesteps")))
    return script.raw("manage " + q(json.dumps(steps)))


def plan_migrations(script: Script, layout: Layout, act: str, scratch: str, manage: Manage,
                    env_size: int, modules: dict[str, str], databases: dict[str, str],
                    run_as: RunAs | None = None) -> Script:
    """Ask a release's code, unpacked into a scratch release (``scratch``, named so the next
    deploy removes it if this is cut short), which migrations it would apply to each
    database; the scratch release and its env file are removed when the command ends.
    Stdin: the env file (``env_size`` bytes), then the whole tree's tar.gz. The folders they
    are made in get their modification times back (kept on a private temporary file), so
    the host is left as it was."""
    folder, env = layout.release(act, scratch), layout.env_file(act, scratch)
    parents = {"releases": layout.releases(act), "env": layout.env_dir(act)}
    script.step("plan migrations").mkdirs(parents.values())
    script.raw('kept=$(mktemp -d) && ' + " && ".join(
        f'touch -r {q(path)} "$kept/{name}"' for name, path in parents.items()))
    undo = [argv("rm", "-rf", "--", folder, env),
            *(f'touch -r "$kept/{name}" {q(path)}' for name, path in parents.items()),
            'rm -rf -- "$kept"']
    script.raw("trap " + q("; ".join(undo)) + " EXIT")
    script.remove(folder, env).mkdirs([folder]).receive_file(env, env_size)
    script.run("tar", "-xzf", "-", "-C", folder, "--no-same-owner")
    write_settings_modules(script, layout, act, scratch, modules)
    if run_as:
        script.run("chown", run_as.user, env)
    return manage_steps(script, layout, act, scratch, manage,
                        [["plan migrations", "plan-migrations", {"databases": databases}]],
                        run_as)
