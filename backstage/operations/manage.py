"""``manage`` and ``exec``: which hosts run the user's command, and the command on one host.

The command runs in the act's live release with the venue its vassal runs, the release's env
file (read on the host by the act's own shell, so no secret reaches argv), as the act's unix
user (system layout), from its working directory: what the app itself sees.
"""

from backstage.commands.manage import in_release
from backstage.commands.release import Manage
from backstage.errors import UsageError
from backstage.facts.observed import Observed
from backstage.model import Layout, Production
from backstage.operations import checks
from backstage.operations.deploy import require_act
from backstage.operations.sess import live_release


def command_hosts(production: Production, act: str, hosts: list[str] | None,
                  all_hosts: bool) -> list[str] | None:
    """The hosts to run on, as ``select_hosts`` takes them: ``hosts``, every host of the act
    (``all_hosts``), or by default the one that runs its migrations (its first host)."""
    require_act(production, act)
    if all_hosts and hosts is not None:
        raise UsageError("--all-hosts: give either --hosts or --all-hosts, not both")
    if hosts is not None or all_hosts:
        return hosts
    return production.hosts_of(act)[:1]


def command_words(words, what: str) -> list[str]:
    """The user's words (after ``--``), refused when there are none."""
    words = [words] if isinstance(words, str) else list(words or [])
    if not words:
        raise UsageError(f"{what}: nothing to run; put the command after -- "
                         f"(backstage {what} ACT -- ...)")
    return words


def plan_command(production: Production, host: str, layout: Layout, observed: Observed, act: str,
                 words: list[str], django: bool) -> str:
    """The command text running ``words`` on the host: manage.py's arguments (``django``) or a
    whole command."""
    release = live_release(host, observed, act)
    run_as = checks.act_user(host, observed, production.act_user(act),
                             production.hosts[host].nginx_group) \
        if layout.kind == "system" else None
    # The venue is the one the release's vassal names, found on the host ($venue).
    manage = Manage.of(production, act, layout, release, venue_dir="$venue")
    return in_release(layout, act, release, manage, run_as, words, django)
