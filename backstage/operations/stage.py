"""Plan ``setup-stage``: directories, the Emperor's virtualenv and daemon, nginx."""

from collections.abc import Callable

from backstage.commands import privileges
from backstage.commands import stage as cmd
from backstage.commands.provision import provision
from backstage.commands.shell import Script
from backstage.facts.observed import Observed
from backstage.model import Layout
from backstage.operations import checks
from backstage.operations.steps import Step
from backstage.render import Renderer
from backstage.util import sha256


def plan_stage(host: str, python: str, layout: Layout, observed: Observed, renderer: Renderer,
               uwsgi_wheels: Callable[[set[str]], bytes],
               group: str = "", users: tuple[str, ...] = (), builder: bool = False) -> list[Step]:
    """The steps that bring a host's stage to the desired state; none when it is there.

    In the system layout, ``users`` are the act users of the host's acts, members of the
    production's ``group``; a ``builder`` host is provisioned with a compiler too.
    """
    checks.privileged(host, observed)
    provisioning = checks.provisioning(host, observed, builder) \
        if layout.kind == "system" else None
    if provisioning is None:
        checks.somaxconn(host, observed)
        checks.nginx_installed(host, observed)
    script, changes = Script(), []
    if provisioning:
        provision(script, provisioning)
        changes += provisioning.changes()

    missing = [d for d in layout.directories if not observed.exists(d)]
    if missing:
        cmd.make_directories(script, layout)
        changes.append(f"create {len(missing)} directories")
    if layout.kind == "system" and users:
        changes += plan_accounts(script, layout, observed, group, users)

    payload = None
    stage_python = observed.stage_python
    if stage_python is None or stage_python["tag"] != observed.python["tag"] \
            or not observed.has(layout.uwsgi):
        cmd.build_stage_venv(script, layout, python)
        payload = lambda: uwsgi_wheels(observed.wheels)
        changes.append(f"build the Emperor's virtualenv ({cmd.UWSGI_REQUIREMENT})")

    use_systemd = observed.services.systemd_manages(layout)
    emperor_ini = renderer.emperor_ini(layout, daemonize=not use_systemd)
    ini_changed = observed.digest(layout.emperor_ini) != sha256(emperor_ini)
    if ini_changed:
        script.step("emperor-config").write_file(layout.emperor_ini, emperor_ini)
        changes.append("write the Emperor's configuration")
    restart = ini_changed and observed.emperor_running
    if use_systemd:
        unit = renderer.emperor_unit(layout)
        if observed.digest(layout.emperor_unit) != sha256(unit):
            script.write_file(layout.emperor_unit, unit)
            changes.append("install the Emperor's systemd unit")
            restart = observed.emperor_running
    if restart or not observed.emperor_running or payload:
        starter = cmd.start_emperor_systemd if use_systemd else cmd.start_emperor_daemon
        starter(script, layout, restart=restart or (payload is not None and observed.emperor_running))
        changes.append("restart the Emperor" if restart else "start the Emperor")

    nginx_changed = False
    if layout.kind == "user":
        conf = renderer.nginx_conf(layout)
        nginx_changed = observed.digest(layout.nginx_conf) != sha256(conf)
        if nginx_changed:
            script.step("nginx-config").write_file(layout.nginx_conf, conf)
            changes.append("write nginx's configuration")
    default, distro = renderer.default_server(layout, host), layout.distribution_default_site
    # The nginx package this run installs brings the welcome site too: disable it now.
    installs_nginx = provisioning is not None and "nginx" in provisioning.packages
    distro = distro if installs_nginx or (observed.link(distro) or "").endswith(
        "sites-available/default") else None
    if observed.digest(layout.default_server_conf) != sha256(default) or distro:
        cmd.default_server(script, layout, default, distro)
        changes.append("answer unknown Host headers with 404")
        nginx_changed = True
    nginx_running = observed.nginx_running
    if nginx_changed or not nginx_running:
        cmd.start_nginx(script, layout, observed.services, reload=nginx_changed and nginx_running)
        changes.append("reload nginx" if nginx_running else "start nginx")

    if not script:
        return []
    return [Step("stage", "; ".join(changes), script.text(), payload)]


def plan_provisioning(host: str, layout: Layout, observed: Observed) -> list[Step]:
    """A builder host's provisioning (its compiler and Python headers too) as a step of its
    own, which setup-stage takes before it plans the rest from a new probe: the compiler it
    installs then compiles the Emperor's uWSGI in the same run. None outside the system
    layout or when nothing is missing."""
    if layout.kind != "system":
        return []
    checks.privileged(host, observed)
    provisioning = checks.provisioning(host, observed, builder=True)
    if not provisioning:
        return []
    return [Step("provision", "; ".join(provisioning.changes()),
                 provision(Script(), provisioning).text())]


def plan_accounts(script: Script, layout: Layout, observed: Observed, group: str,
                  users: tuple[str, ...]) -> list[str]:
    """Create the act users (and the production's group) that are missing; give the stage's
    folders their owners and modes (see :func:`privileges.stage_modes`)."""
    changes = []
    missing = [u for u in users if not in_group(observed.account(u), group)]
    if missing:
        privileges.create_group(script.step("users"), group)
        for user in missing:
            privileges.create_user(script, user, group)
        changes.append(f"create act users {', '.join(missing)}")
    modes = privileges.stage_modes(layout, group)
    wrong = {path: mode for path, mode in modes.items() if observed.owner(path) != mode}
    if wrong:
        privileges.own_stage(script.step("modes"), wrong)
        changes.append(f"set owners and modes of {len(wrong)} folders")
    return changes


def in_group(account: dict | None, group: str) -> bool:
    return account is not None and group in (account["group"], *account["groups"])
