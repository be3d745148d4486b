"""``logs``: which files hold the lines asked for, and the command reading them on a host."""

from backstage.commands.logs import show_logs
from backstage.errors import UsageError
from backstage.model import Layout, Production

SOURCES = {
    "act": "the act's log: uWSGI's request lines and what the app writes on stderr",
    "access": "nginx's access logs of the act's gigs",
    "nginx": "nginx's error log",
    "emperor": "the uWSGI Emperor's log (the journal under systemd)",
}


def log_files(production: Production, layout: Layout, act: str,
              source: str) -> tuple[list[str], str | None]:
    """The files of ``source`` on a host, and the systemd unit whose journal stands in for
    them when none exists."""
    if source not in SOURCES:
        raise UsageError(f"--source: {source!r} is not one of {', '.join(SOURCES)}")
    if source == "access":
        return [layout.gig_access_log(g) for g in production.gigs_of(act)], None
    if source == "nginx":
        return [layout.nginx_error_log], None
    if source == "emperor":
        return [layout.emperor_log], layout.emperor_unit_name
    return [layout.act_log(act)], None


def plan_logs(production: Production, layout: Layout, act: str, source: str, lines: int,
              grep: str | None, follow: bool) -> str:
    """The command showing the log lines on one host."""
    files, unit = log_files(production, layout, act, source)
    if not files:
        raise UsageError(f"--source {source}: act {act!r} has no gig, so no access log")
    return show_logs(files, lines, grep, follow, unit)
