"""Commands that book and cancel gigs: nginx server blocks, tested before every reload."""

from backstage.commands.shell import Script, argv, q
from backstage.commands.stage import Services, nginx_command
from backstage.model import Layout


def reload_nginx(layout: Layout, services: Services) -> str:
    if services.systemd_manages(layout):
        return argv("systemctl", "reload", "nginx")
    return nginx_command(layout, services, "-s", "reload")


def private_payload(files: dict[str, str], private: tuple[str, ...]) -> bytes | None:
    """What :func:`install_gigs` reads from stdin: the private files' contents, in order."""
    data = b"".join(text.encode() for path, text in files.items() if path in private)
    return data or None


def backup(path: str) -> str:
    """Where a file is kept while ``nginx -t`` judges its replacement: a dot file beside it,
    which nginx's ``include sites-enabled/*`` does not read (a second copy of a gig there
    would define its ``log_format`` twice, which nginx refuses)."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/.{name}.backstage-old"


def install_gigs(script: Script, layout: Layout, files: dict[str, str], removed: list[str],
                 services: Services, private: tuple[str, ...] = ()) -> Script:
    """Write (or remove) gig files, run ``nginx -t``, and reload only if it passes.

    When the test fails, every file is put back as it was, so nginx keeps serving (and would
    restart with) the previous configuration. ``private`` files (certificate keys) are
    read from stdin (see :func:`private_payload`), 0600 in a 0700 folder.
    """
    paths = [*files, *removed]
    if not paths:
        return script
    script.step("gig")
    for folder in dict.fromkeys(path.rpartition("/")[0] for path in private if path in files):
        script.run("install", "-d", "-m", "700", folder)
    for path in paths:
        script.raw(f"if [ -e {q(path)} ]; then {argv('cp', '-p', path, backup(path))}; fi")
    for path, content in files.items():
        if path in private:
            script.receive_file(path, len(content.encode()))
        else:
            script.write_file(path, content)
    script.run("rm", "-f", *removed)
    restore = "; ".join(
        f"if [ -e {q(backup(p))} ]; then {argv('mv', '-f', backup(p), p)}; "
        f"else {argv('rm', '-f', p)}; fi"
        for p in paths
    )
    script.raw(f"if ! {nginx_command(layout, services, '-t', '-q')}; then {restore}; "
               "echo 'nginx -t refused the new configuration; the previous one is kept' >&2; "
               "exit 1; fi")
    script.run("rm", "-f", *(backup(p) for p in paths))
    return script.raw(reload_nginx(layout, services))
