"""``logs``: the last lines of log files on a host, or all that comes (``follow``), filtered
there (``grep``), so only what is asked for crosses the network."""

from backstage.commands.shell import Script, argv, q


def show_logs(files: list[str], lines: int, grep: str | None, follow: bool,
              journal_unit: str | None = None) -> str:
    """The command printing ``files``' last ``lines`` lines (of those matching ``grep``, an
    extended regular expression), then, with ``follow``, what is appended to them (a file
    rotated or made later included) until the command is hung up on. ``journal_unit``: read
    that systemd unit's journal instead when none of the files exists."""
    script = Script()
    script.raw("files=()")
    script.raw(f'for f in {argv(*files)}; do if [ -e "$f" ]; then files+=("$f"); fi; done')
    filtered = f" | grep --line-buffered -E -e {q(grep)}" if grep else ""
    if follow:
        source = f'tail -q -n {int(lines)} -F -- {argv(*files)}{filtered}'
    elif grep:
        source = f'grep -h -E -e {q(grep)} -- "${{files[@]}}" | tail -n {int(lines)}'
    else:
        source = f'tail -q -n {int(lines)} -- "${{files[@]}}"'
    if journal_unit:
        journal = argv("journalctl", "--no-pager", "-o", "short-iso", "-u", journal_unit,
                       "-n", int(lines), *(["-f"] if follow else [])) + filtered
        source = f'if [ "${{#files[@]}}" -eq 0 ]; then {journal}; else {source}; fi'
    elif not follow:
        missing = "no log file yet: " + " ".join(files)
        script.raw(f"[ \"${{#files[@]}}\" -gt 0 ] || {{ printf '%s\\n' {q(missing)} >&2; exit 0; }}")
    # grep finding nothing (status 1) is not an error.
    return script.raw(f'{{ {source}; }} || [ "$?" -eq 1 ]').text()
