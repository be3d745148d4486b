"""Every operation's plan function, from a host state built here (no SSH, no host).

:class:`HostState` is what a probe would answer about one host of the system layout. It starts
as a stage ready for the production, and :meth:`HostState.deployed` makes it what a deploy
leaves behind (the files the plan wrote, with the digests the host helper would report), so
each case below is the plan for a host in a known state: no-op, first deploy, venue change,
env change, gig change, repair, rollback target, abort and revert, and the other operations.
"""

import copy
import json
import os
import socket
from types import SimpleNamespace

import pytest

from backstage.artefacts import bundle
from backstage.commands import lock as lock_cmd
from backstage.commands.privileges import stage_modes
from backstage.engine.builders import builders_first
from backstage.errors import BackstageError, LockHeld
from backstage.facts.observed import Observed
from backstage.facts.status import read_status, workers_of
from backstage.model import Layout, load_production
from backstage.operations import history
from backstage.operations.deploy import (
    DeployInputs,
    act_environment,
    describe_split,
    plan_deploy,
    resumed_release,
    split,
)
from backstage.operations.gig import plan_gig
from backstage.operations.lock import new_lock, plan_lock, plan_unlock
from backstage.operations.rollback import plan_rollback
from backstage.operations.sess import plan_sess
from backstage.operations.stage import plan_provisioning, plan_stage
from backstage.render import Renderer
from backstage.util import sha256
from tests.test_inventory import base_inventory, write_inventory

HOST = "web1"
ACT = "storefront"
PYTHON = {"version": "3.11.2", "tag": "cp311", "executable": "/usr/bin/python3"}


@pytest.fixture
def production(tmp_path):
    app = tmp_path / "app"
    (app / "storefront").mkdir(parents=True)
    (app / "manage.py").write_text("print('manage')\n")
    (app / "storefront" / "settings.py").write_text("DEBUG = False\n")
    (app / "requirements.txt").write_text("Django>=5\n")
    (tmp_path / "inventories").mkdir()
    return load_production(write_inventory(tmp_path, base_inventory()))


def layout_of(production) -> Layout:
    return Layout.for_host(production.name, production.hosts[HOST])


def inputs(production, venue_digest: str = "venue1", now: float | None = None) -> DeployInputs:
    source = production.acts[ACT].source
    return DeployInputs(ACT, bundle.pack(source, now), venue_digest, lambda skip: b"wheels",
                        new_lock("deploy-act", ACT), [lock_cmd.act_lock(ACT)])


class HostState:
    """The probe's answer for one host (system layout, commands run as root)."""

    def __init__(self, production):
        self.production, self.layout = production, layout_of(production)
        layout = self.layout
        user = production.act_user(ACT)
        self.data = {
            "user": "root", "uid": 0, "systemd": False, "python": PYTHON, "somaxconn": 4096,
            "nginx": "/usr/sbin/nginx",
            "files": {layout.uwsgi: "u"}, "links": {}, "texts": {}, "owners": {},
            "listings": {layout.vassals: [], layout.trees: [], layout.releases(ACT): []},
            "pids": {layout.nginx_pidfile: 10},
            "pythons": {f"{layout.stage_venv}/bin/python": PYTHON},
            "exists": {d: True for d in layout.directories},
            "accounts": {user: {"uid": 1001, "group": user, "groups": [production.group]}},
            "processes": {"emperor": [11]},
            "globs": {f"{layout.vassals}/*.ini": {}, f"{layout.env_dir(ACT)}/env-*": {}},
            "live": {}, "venues": {},
            "provision": {"python": "3.11", "venv": True,
                          "sysctl_text": "net.core.somaxconn = 4096\n"},
        }

    def observed(self) -> Observed:
        return Observed(self.layout, copy.deepcopy(self.data))

    def deployed(self, plan, env_text: str, venue_digest: str) -> "HostState":
        """What the host holds after ``plan`` ran: its files, links, lists and a serving
        vassal, as the host helper would report them."""
        layout, release, data = self.layout, plan.release, self.data
        for change in plan.changes.files:
            data["files"][change.path] = sha256(change.text)
        vassal = layout.vassal(ACT, release)
        data["globs"][f"{layout.vassals}/*.ini"] = {vassal: sha256(plan.changes.files[0].text)}
        data["listings"][layout.vassals] = [vassal.rsplit("/", 1)[1]]
        data["globs"][f"{layout.env_dir(ACT)}/env-*"][layout.env_file(ACT, release)] = \
            sha256(env_text)
        data["listings"][layout.releases(ACT)].append(release)
        data["listings"][layout.trees].append(release.rsplit("-", 1)[1])
        for folder in data["venues"].values():
            folder.update(linked=False, used_by=[])
        data["venues"][f"shop-{venue_digest}"] = {
            "complete": True, "completed": "2026-01-01T00:00:00Z", "linked": True,
            "used_by": [vassal.rsplit("/", 1)[1]]}
        data["links"][layout.current(ACT)] = f"releases/{release}"
        data["texts"][layout.good_list(ACT)] = "".join(
            f"{r}\n" for r in [*self.observed().good_releases(ACT), release])
        data["live"][ACT] = {"release": release, "release_dir": True, "socket": "listening",
                             "vassal": "enabled", "stable": layout.socket_link(ACT, release),
                             "stable_socket": "listening"}
        return self


def deploy(production, state: HostState, deploy_inputs: DeployInputs, env_text: str | None = None,
           dry_run: bool = False):
    env_text = env_text if env_text is not None else \
        act_environment(production, ACT, state.layout)
    return plan_deploy(production, HOST, state.layout, state.observed(), Renderer(production),
                       deploy_inputs, env_text, dry_run=dry_run)


def step_names(steps) -> list[str]:
    return [s.name for s in steps]


# --- deploy ------------------------------------------------------------------------------------

def test_a_first_deploy_builds_the_venue_uploads_starts_and_switches(production):
    state = HostState(production)
    plan = deploy(production, state, inputs(production))
    assert (plan.previous, plan.repair) == (None, False)
    assert step_names(plan.prepare) == ["venue", "release"]
    assert step_names(plan.start) == ["start"] and step_names(plan.switch) == ["switch"]
    assert plan.changes.venue == state.layout.venue_dir("shop", "venue1")
    assert plan.changes.env  # no env file yet
    vassal, gig = plan.changes.files
    assert (vassal.path, vassal.replaces) == (state.layout.vassal(ACT, plan.release), None)
    assert (gig.path, gig.replaces) == (state.layout.gig_conf("shop"), None)
    assert plan.prepare[0].payload() == b"wheels"
    # Nothing was live before: a revert takes the act off the air.
    assert plan.revert.summary == f"switch {ACT} back to nothing"
    assert state.layout.stable_socket(ACT) in plan.revert.command
    assert plan.migrate is None  # users is a host-local sqlite database: migrated in prepare


def test_the_same_deploy_again_is_a_no_op(production):
    state = HostState(production)
    deploy_inputs = inputs(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, deploy_inputs, env_text)
    again = deploy(production, state.deployed(first, env_text, "venue1"), deploy_inputs,
                   env_text)
    assert again.noop
    assert (again.release, again.previous) == (first.release, first.release)
    assert again.abort is None and again.revert is None


def test_a_new_venue_is_built_and_the_rest_reused(production):
    state = HostState(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, inputs(production), env_text)
    state.deployed(first, env_text, "venue1")
    plan = deploy(production, state, inputs(production, venue_digest="venue2"), env_text)
    assert step_names(plan.prepare) == ["venue", "release"]
    assert plan.changes.venue == state.layout.venue_dir("shop", "venue2")
    assert plan.changes.env is False
    # The new vassal runs the new venue; the live one is what it replaces.
    vassal = plan.changes.files[0]
    assert state.layout.venue_dir("shop", "venue2") in vassal.text
    assert vassal.replaces == state.layout.vassal(ACT, first.release)


def test_an_env_change_alone_makes_a_new_release_without_a_venue_build(production):
    state = HostState(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, inputs(production), env_text)
    state.deployed(first, env_text, "venue1")
    plan = deploy(production, state, inputs(production), env_text + "EXTRA=1\n")
    assert not plan.noop and plan.changes.env
    assert step_names(plan.prepare) == ["release"]  # the venue is built already
    assert plan.changes.venue is None
    assert "EXTRA" not in plan.prepare[0].command  # env content goes through stdin only
    assert b"EXTRA=1" in plan.prepare[0].payload()
    assert plan.changes.retired == [first.release]


def test_a_changed_gig_alone_makes_a_new_release_that_rewrites_it(production):
    state = HostState(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, inputs(production), env_text)
    state.deployed(first, env_text, "venue1")
    gig = state.layout.gig_conf("shop")
    state.data["files"][gig] = "an older gig file"
    plan = deploy(production, state, inputs(production), env_text)
    assert not plan.noop
    assert [(f.path, f.replaces) for f in plan.changes.files][1] == (gig, gig)
    assert "nginx" in plan.start[0].command  # tested and reloaded before any switch


def test_a_live_release_whose_vassal_is_retired_is_repaired_not_rebuilt(production):
    state = HostState(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, inputs(production), env_text)
    state.deployed(first, env_text, "venue1")
    state.data["live"][ACT]["vassal"] = "retired"
    state.data["globs"][f"{state.layout.vassals}/*.ini"] = {}
    plan = deploy(production, state, inputs(production), env_text)
    assert plan.repair and plan.release == first.release
    assert step_names(plan.prepare) == []  # nothing uploaded
    assert step_names(plan.start) == ["start"] and step_names(plan.switch) == ["switch"]
    assert plan.changes.repair and "retired" in plan.changes.repair[0]


def test_abort_drops_the_prepared_vassal_and_revert_goes_back_to_the_live_release(production):
    state = HostState(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, inputs(production), env_text)
    state.deployed(first, env_text, "venue1")
    plan = deploy(production, state, inputs(production), env_text + "X=1\n")
    layout = state.layout
    assert plan.abort.name == "abort" and layout.vassal(ACT, plan.release) in plan.abort.command
    assert layout.vassal(ACT, first.release) not in plan.abort.command  # the live one stays
    revert = plan.revert.command
    assert plan.revert.summary == f"switch {ACT} back to {first.release}"
    assert revert.index(layout.vassal(ACT, first.release)) < revert.index("health")
    assert '"event":"rollback"' in revert.replace("\\", "")


def smoke_production(tmp_path):
    data = base_inventory()
    data["acts"][ACT]["smoke"] = [{"path": "/", "contains": "Welcome"}]
    return load_production(write_inventory(tmp_path, data, name="smoky"))


def test_smoke_requests_run_before_the_switch_and_through_nginx_before_the_release_is_good(
        production, tmp_path):
    smoky = smoke_production(tmp_path)
    state = HostState(smoky)
    layout = state.layout
    env_text = act_environment(smoky, ACT, layout)
    state.deployed(deploy(smoky, state, inputs(smoky), env_text), env_text, "venue1")
    plan = deploy(smoky, state, inputs(smoky), env_text + "X=1\n")
    start, switch = plan.start[0].command, plan.switch[0].command
    # Before the switch: through the release's own socket, after its health check.
    assert plan.start[0].summary.endswith("health-check and smoke-test its socket")
    assert start.index(" health ") < start.index(" smoke ")
    assert layout.socket(ACT, plan.release) in start[start.index(" smoke "):]
    # After it: through nginx (the gig's port and domain); only then is the release good,
    # and only then is the old vassal retired (a failed check reverts to it at once).
    smoke = switch.index(" smoke ")
    assert '"port": 80' in switch[smoke:] and "shop.example.test" in switch[smoke:]
    assert switch.index(layout.stable_socket(ACT)) < switch.index(" health ") < smoke
    good = switch.index(f">> {layout.good_list(ACT)}")
    assert smoke < good < switch.index("::step retire") < switch.index("::step cleanup")
    # A failure there marks it bad; its answers go to history.
    assert switch.index(layout.bad_list(ACT), smoke) < good
    assert layout.history in switch[smoke:good] and '"event": "smoke"' in switch[smoke:good]


def test_without_smoke_requests_the_plan_sends_none_and_marks_good_after_the_nginx_check(
        production):
    state = HostState(production)
    plan = deploy(production, state, inputs(production))
    switch = plan.switch[0].command
    assert " smoke " not in plan.start[0].command and " smoke " not in switch
    assert switch.index(" health ") < switch.index(f">> {state.layout.good_list(ACT)}")


def hold_lock(state: HostState, holder: dict) -> None:
    lock = lock_cmd.act_lock(ACT)
    state.data["exists"][state.layout.lock_dir(lock)] = True
    state.data["texts"][state.layout.lock_info(lock)] = json.dumps(holder)


def gone_deploy(release: str) -> dict:
    """The lock of a deploy from this machine whose process is gone (a pid never used)."""
    return {"by": "ada@ws", "host": socket.gethostname(), "pid": 2**22 + 7, "time": "t",
            "command": "deploy-act", "act": ACT, "release": release, "token": "deadbeef"}


def test_a_lock_whose_holder_is_gone_is_taken_over_by_token_and_recorded(production):
    state = HostState(production)
    hold_lock(state, gone_deploy("20260101T000000000Z-00000000"))
    plan = deploy(production, state, inputs(production))
    assert list(plan.taken_over) == [lock_cmd.act_lock(ACT)]
    command = plan.prepare[0].command  # the first step takes the locks
    lock_dir = state.layout.lock_dir(lock_cmd.act_lock(ACT))
    # Freed only while the gone holder's token is still in it, then taken as usual.
    assert command.index("deadbeef") < command.index(f"mv -T {lock_dir}.taking-")
    assert '"event":"takeover"' in command.replace("\\", "")


@pytest.mark.parametrize("holder", [
    {"host": "elsewhere"},  # another machine: cannot be judged from here
    {"pid": os.getpid()},  # a live process
    {"command": "lock"},  # taken by hand: held until unlock
])
def test_a_lock_whose_holder_may_live_is_never_taken_over(production, holder):
    state = HostState(production)
    hold_lock(state, {**gone_deploy("r"), **holder})
    with pytest.raises(LockHeld):
        deploy(production, state, inputs(production))


def test_a_deploy_after_a_killed_one_resumes_its_release_of_the_same_code(production):
    deploy_inputs = inputs(production)
    digest = deploy_inputs.bundle.digest[:8]
    killed = f"20260101T000000000Z-{digest}"
    hosts = {name: HostState(production) for name in ("h1", "h2", "h3")}
    hold_lock(hosts["h2"], gone_deploy(killed))
    hold_lock(hosts["h3"], gone_deploy(killed))
    observed = {name: state.observed() for name, state in hosts.items()}
    assert resumed_release(deploy_inputs, observed) == killed
    deploy_inputs.resume(killed)
    assert deploy_inputs.release == killed and deploy_inputs.lock["release"] == killed
    assert deploy(production, hosts["h2"], deploy_inputs).release == killed
    # Other code, a release that failed somewhere, or a live holder: a new release id.
    assert resumed_release(inputs(production), {"h2": hold_other(production, "x")}) is None
    hosts["h1"].data["texts"][hosts["h1"].layout.bad_list(ACT)] = f"{killed}\n"
    observed["h1"] = hosts["h1"].observed()
    assert resumed_release(inputs(production), observed) is None


def hold_other(production, digest: str) -> Observed:
    state = HostState(production)
    hold_lock(state, gone_deploy(f"20260101T000000000Z-{digest}"))
    return state.observed()


def test_a_host_a_killed_deploy_switched_is_checked_and_its_switch_finished(production):
    state = HostState(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, inputs(production), env_text)
    state.deployed(first, env_text, "venue1")
    state.data["texts"][state.layout.good_list(ACT)] = ""  # killed before its checks passed
    hold_lock(state, gone_deploy(first.release))
    plan = deploy(production, state, inputs(production), env_text)
    assert plan.repair and (plan.release, plan.previous) == (first.release, first.release)
    assert step_names(plan.prepare) == [] and step_names(plan.switch) == ["switch"]
    command = plan.switch[0].command
    assert command.index(" health ") < command.index(f">> {state.layout.good_list(ACT)}")


def test_split_names_each_release_and_its_hosts(production):
    states = {name: HostState(production) for name in ("h1", "h2", "h3")}
    env_text = act_environment(production, ACT, states["h1"].layout)
    for name in ("h1", "h2", "h3"):
        states[name].deployed(deploy(production, states[name], inputs(production, now=1e9)),
                              env_text, "venue1")
    observed = {name: state.observed() for name, state in states.items()}
    assert split(ACT, observed) is None
    newer = deploy(production, states["h1"], inputs(production, now=2e9), env_text + "X=1\n")
    states["h1"].deployed(newer, env_text, "venue1")
    observed["h1"] = states["h1"].observed()
    by_release = split(ACT, observed)
    assert by_release == {newer.release: ["h1"], newer.previous: ["h2", "h3"]}
    assert describe_split(ACT, by_release) == (
        f"{ACT} is split across releases: {newer.previous} on h2, h3; {newer.release} on h1")


def test_a_deploy_is_refused_while_another_holds_the_lock_but_planned_in_a_dry_run(production):
    state = HostState(production)
    layout = state.layout
    state.data["exists"][layout.lock_dir(lock_cmd.act_lock(ACT))] = True
    state.data["texts"][layout.lock_info(lock_cmd.act_lock(ACT))] = \
        '{"by": "ada@laptop", "pid": 1, "host": "elsewhere"}'
    with pytest.raises(LockHeld, match="ada@laptop"):
        deploy(production, state, inputs(production))
    assert not deploy(production, state, inputs(production), dry_run=True).noop


def test_a_deploy_needs_the_stage_first(production):
    state = HostState(production)
    state.data["processes"] = {"emperor": []}
    with pytest.raises(BackstageError, match="Emperor is not running: run setup-stage"):
        deploy(production, state, inputs(production))


# --- rollback ----------------------------------------------------------------------------------

def two_releases(production):
    state = HostState(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, inputs(production, now=1_700_000_000), env_text)
    state.deployed(first, env_text, "venue1")
    second = deploy(production, state, inputs(production, now=1_700_000_060), env_text + "X=1\n")
    state.deployed(second, env_text + "X=1\n", "venue1")
    state.data["listings"][state.layout.vassals].append(f"{ACT}@{first.release}.ini.retired")
    return state, first.release, second.release


def test_rollback_goes_to_the_previous_good_release(production):
    state, first, second = two_releases(production)
    target, [step] = plan_rollback(production, HOST, state.layout, state.observed(), ACT, None,
                                   new_lock("rollback", ACT))
    assert target == first
    assert step.summary == f"switch {ACT} back from {second} to {first}"


def test_rollback_never_goes_to_a_bad_release(production):
    state, first, _ = two_releases(production)
    state.data["texts"][state.layout.bad_list(ACT)] = f"{first}\n"
    with pytest.raises(BackstageError, match="no previous good release"):
        plan_rollback(production, HOST, state.layout, state.observed(), ACT, None,
                      new_lock("rollback", ACT))
    with pytest.raises(BackstageError, match="failed its deploy"):
        plan_rollback(production, HOST, state.layout, state.observed(), ACT, first,
                      new_lock("rollback", ACT))


# --- stage -------------------------------------------------------------------------------------

def plan_stage_on(production, state):
    users = (production.act_user(ACT),)
    return plan_stage(HOST, "python3", state.layout, state.observed(), Renderer(production),
                      lambda skip: b"", production.group, users)


def test_a_stage_as_desired_needs_no_step_and_a_bare_host_all_of_them(production):
    state = HostState(production)
    renderer, layout = Renderer(production), state.layout
    state.data["files"][layout.emperor_ini] = sha256(renderer.emperor_ini(layout, daemonize=True))
    state.data["files"][layout.default_server_conf] = sha256(renderer.default_server(layout, HOST))
    state.data["owners"] = stage_modes(layout, production.group)
    assert plan_stage_on(production, state) == []

    bare = HostState(production)
    bare.data.update(exists={}, accounts={}, processes={"emperor": []}, pythons={},
                     files={}, pids={layout.nginx_pidfile: None}, nginx=None,
                     provision={"python": "3.11", "venv": False, "sysctl_text": None})
    [step] = plan_stage_on(production, bare)
    # The nginx package brings Debian's welcome site: disabled in the same run.
    assert layout.distribution_default_site in step.command
    for change in ("nginx", "python3-venv", "create", "act users", "virtualenv",
                   "Emperor's configuration", "start the Emperor", "start nginx"):
        assert change in step.summary


def test_a_stage_without_nginx_nor_a_package_source_is_refused_with_what_to_install(
        production):
    state = HostState(production)
    state.data["nginx"] = None
    state.data["provision"]["sources"] = False
    with pytest.raises(BackstageError, match="nginx not installed and the host has no apt "
                                             "package source: install them"):
        plan_stage_on(production, state)


def test_a_builder_is_provisioned_with_a_compiler_in_a_step_before_its_stage(production):
    """setup-stage takes a builder's provisioning first (then probes again), so the compiler
    it installs compiles the Emperor's uWSGI in the same run; a web host gets no compiler."""
    state = HostState(production)
    state.data["nginx"] = None
    state.data["provision"].update(compiler=False, headers=False)
    [step] = plan_provisioning(HOST, state.layout, state.observed())
    assert step.name == "provision" and step.payload is None
    assert step.summary.startswith("install packages nginx gcc python3-dev")
    assert "apt-get -q -y" in step.command and " gcc python3-dev" in step.command
    [stage] = plan_stage(HOST, "python3", state.layout, state.observed(), Renderer(production),
                         lambda skip: b"", production.group, (production.act_user(ACT),))
    assert "nginx" in stage.summary and "gcc" not in stage.summary
    # What --dry-run says of a builder: the whole provisioning, compiler included.
    [dry] = plan_stage(HOST, "python3", state.layout, state.observed(), Renderer(production),
                       lambda skip: b"", production.group, (production.act_user(ACT),),
                       builder=True)
    assert "install packages nginx gcc python3-dev" in dry.summary
    state = HostState(production)
    state.data["provision"].update(compiler=True, headers=True)
    assert plan_provisioning(HOST, state.layout, state.observed()) == []


def test_setup_stage_readies_builder_hosts_before_the_others():
    hosts = {"a": ("web",), "b": ("builder", "web"), "c": (), "d": ("builder",)}
    production = SimpleNamespace(hosts={n: SimpleNamespace(roles=r) for n, r in hosts.items()})
    assert builders_first(production, ["a", "b", "c", "d"]) == [["b", "d"], ["a", "c"]]
    assert builders_first(production, ["a", "c"]) == [["a", "c"]]
    assert builders_first(production, ["d"]) == [["d"]]


# --- start, stop, restart ------------------------------------------------------------------------

@pytest.mark.parametrize("action, says", [("stop", "closed"), ("start", "health"),
                                          ("restart", "reloaded")])
def test_sess_actions_act_on_the_live_release_under_the_act_lock(production, action, says):
    state = HostState(production)
    env_text = act_environment(production, ACT, state.layout)
    first = deploy(production, state, inputs(production), env_text)
    state.deployed(first, env_text, "venue1")
    holder = new_lock(action, ACT)
    step = plan_sess(production, HOST, state.layout, state.observed(), ACT, action, holder, [7])
    lock_dir = state.layout.lock_dir(lock_cmd.act_lock(ACT))
    assert step.command.index(lock_dir) < step.command.index(says)
    assert first.release in step.command and holder["token"] in step.command


def test_sess_actions_on_a_never_deployed_act_say_so(production):
    state = HostState(production)
    with pytest.raises(BackstageError, match="never deployed here"):
        plan_sess(production, HOST, state.layout, state.observed(), ACT, "stop",
                  new_lock("stop", ACT))


def test_the_workers_a_restart_waits_for_are_the_live_releases():
    answer = {"acts": {ACT: {"facts": None, "sesses": [
        {"release": "r1", "workers": [1, 2]}, {"release": "r2", "workers": [3]}]}}}
    status = read_status(Layout("shop", "system", "/srv/backstage", 80), answer)
    assert workers_of(status, ACT, "r1") == [1, 2]
    assert status[ACT]["broken"] is None


# --- lock, unlock, gigs, history ---------------------------------------------------------------

def test_lock_then_unlock_clears_it_and_names_its_holder(production):
    state = HostState(production)
    layout, name = state.layout, lock_cmd.act_lock(ACT)
    holder = new_lock("lock", ACT, "maintenance")
    step = plan_lock(HOST, layout, state.observed(), [name], holder, ACT)
    assert layout.lock_dir(name) in step.command and "maintenance" in step.command
    assert plan_unlock(production, HOST, layout, state.observed(), ACT) == (None, [])
    state.data["exists"][layout.lock_dir(name)] = True
    state.data["texts"][layout.lock_info(name)] = \
        '{"by": "ada@laptop", "token": "t", "pid": 1}'
    step, cleared = plan_unlock(production, HOST, layout, state.observed(), ACT)
    assert cleared == [({"by": "ada@laptop", "pid": 1}, [name])]
    assert '"t"' not in step.command.replace("\\", "")  # the token never goes to history


def test_a_gig_is_booked_once_and_cancelled_once(production):
    state = HostState(production)
    renderer, layout, holder = Renderer(production), state.layout, new_lock("gig")
    step = plan_gig(production, HOST, layout, state.observed(), renderer, "shop", False, holder)
    assert layout.gig_conf("shop") in step.command and "-t" in step.command
    assert "health" not in step.command  # the act is not deployed: nothing to check yet
    state.data["files"][layout.gig_conf("shop")] = sha256(renderer.gig(layout, "shop"))
    assert plan_gig(production, HOST, layout, state.observed(), renderer, "shop", False,
                    holder) is None
    cancel = plan_gig(production, HOST, layout, state.observed(), renderer, "shop", True, holder)
    assert "cancel-gig" in cancel.command
    del state.data["files"][layout.gig_conf("shop")]
    assert plan_gig(production, HOST, layout, state.observed(), renderer, "shop", True,
                    holder) is None


def test_history_merges_hosts_newest_first_and_shows_unreadable_lines():
    layout = Layout("shop", "system", "/srv/backstage", 80)
    assert "tail -n 5" in history.plan_history(layout, 5).command
    web1 = history.entries('{"time": "2026-01-02", "event": "deploy"}\n{"time": "2026-01-0\n')
    web2 = history.entries('{"time": "2026-01-03", "event": "stop"}\n')
    merged = history.newest({"web1": web1, "web2": web2}, 2)
    assert [(e["host"], e["event"]) for e in merged] == [("web2", "stop"), ("web1", "deploy")]
    assert web1[1] == {"event": "unreadable", "line": '{"time": "2026-01-0'}



def test_status_names_a_split_fleet_and_a_gone_deploy_s_lock():
    from backstage.reports import RollbackReport, StatusReport

    def act(release, lock=None):
        return {"storefront": {"current": f"releases/{release}", "lock": lock, "sesses": []}}

    holder = {k: v for k, v in gone_deploy("R2").items() if k != "token"}
    report = StatusReport("shop", {"h1": act("R2"), "h2": act("R1", holder), "h3": act("R1")})
    split, lock = report.notes()
    assert split == ("storefront is split across releases: R1 on h2, h3; R2 on h1: run "
                     "deploy-act to bring every host to one release")
    assert lock == ("h2: storefront locked by ada@ws (pid 4194311, deploy-act R2): its process "
                    "is gone: the next deploy-act takes it over")
    assert StatusReport("shop", {"h1": act("R1"), "h2": act("R1")}).notes() == []
    rolled = RollbackReport("shop", {"h1": {"release": "R1", "previous": "R2"},
                                     "h2": {"release": "R0", "previous": "R1"}}, act="storefront")
    assert rolled.split() == "storefront is split across releases: R0 on h2; R1 on h1"
