"""Plans from observations, without hosts: preconditions and release bookkeeping."""

import json
import os
import socket

import pytest

from backstage.errors import BackstageError, LockHeld
from backstage.facts.observed import Observed
from backstage.model import Layout
from backstage.operations import checks
from backstage.operations.changes import Changes, FileChange, unified_diff
from backstage.operations.deploy import HostPlan
from backstage.operations.preview import describe
from backstage.operations.releases import (
    leftovers,
    previous_good,
    release_lists,
    releases_to_delete,
    rollback_target,
    venues_to_delete,
)
from backstage.operations.steps import Step

LAYOUT = Layout("shop", "system", "/srv/backstage", 80)
R = [f"2026010{i}T000000000Z-0000000{i}" for i in range(1, 9)]


def observed(**data) -> Observed:
    base = {"somaxconn": 4096, "files": {}, "links": {}, "listings": {}, "pids": {},
            "texts": {}, "exists": {}, "globs": {}, "pythons": {}}
    return Observed(LAYOUT, {**base, **data})


def test_somaxconn_below_the_listen_backlog_is_refused_with_the_fix():
    with pytest.raises(BackstageError, match=r"somaxconn is 128.*sysctl -w net.core.somaxconn=1024"):
        checks.somaxconn("web1", observed(somaxconn=128))
    checks.somaxconn("web1", observed(somaxconn=1024))


def test_a_held_lock_names_its_holder_and_a_dead_local_holder_is_stale():
    holder = {"by": "ada@ws", "pid": 2**22 + 7, "host": socket.gethostname(), "time": "t",
              "command": "deploy-act", "act": "storefront"}
    locks = ["act/storefront", "database/users"]
    info = LAYOUT.lock_info("act/storefront")
    with pytest.raises(LockHeld, match="STALE.*lock=act/storefront, by=ada@ws.*"
                                       "command=deploy-act") as caught:
        checks.not_locked("web1", observed(texts={info: json.dumps(holder)}), locks)
    assert caught.value.stale
    remote = {**holder, "host": "elsewhere"}
    with pytest.raises(LockHeld, match="held") as caught:
        checks.not_locked("web1", observed(texts={info: json.dumps(remote)}), locks)
    assert not caught.value.stale
    checks.not_locked("web1", observed(texts={info: json.dumps(holder)}), ["act/other"])
    assert not checks.lock_is_stale({**holder, "command": "lock"})  # by hand: held until unlock


def history(good, bad, on_disk, retired, current, enabled=()):
    act = "storefront"
    vassals = [f"{act}@{r}.ini.retired" for r in retired] + [f"{act}@{r}.ini" for r in enabled]
    return observed(
        texts={LAYOUT.good_list(act): "\n".join(good), LAYOUT.bad_list(act): "\n".join(bad)},
        listings={LAYOUT.releases(act): on_disk, LAYOUT.vassals: vassals},
        links={LAYOUT.current(act): f"releases/{current}"},
    )


def test_rollback_goes_to_the_newest_older_good_release_never_a_bad_one():
    obs = history(good=R[:3], bad=[R[3]], on_disk=R[:5], retired=R[:4], current=R[4])
    assert previous_good(obs, "storefront", R[4]) == R[2]
    with pytest.raises(BackstageError, match="never goes to a bad release"):
        rollback_target("web1", obs, "storefront", R[3])
    assert rollback_target("web1", obs, "storefront", R[0]) == R[0]


def test_cleanup_deletes_bad_first_and_keeps_live_previous_and_running():
    good = [r for r in R if r != R[5]]
    obs = history(good=good, bad=[R[5]], on_disk=R, retired=R[:7], current=R[7],
                  enabled=[R[0]])
    deleted = releases_to_delete(obs, "storefront", keep=3, current=R[7], previous=R[6])
    # Kept: the newest three good (R4, R6, R7), R0 whose vassal runs; the bad R5 goes.
    assert deleted == [R[1], R[2], R[3], R[5]]


def test_plan_text_says_no_changes_for_an_empty_plan():
    plan = HostPlan(R[1], R[1])
    assert describe("web1", "storefront", plan, {}) == \
        f"web1: storefront: no changes (release {R[1]} is live)\n"


def test_plan_text_lists_changes_with_diffs_and_never_env_content():
    vassal_old, vassal_new = LAYOUT.vassal("storefront", R[1]), LAYOUT.vassal("storefront", R[2])
    gig = LAYOUT.gig_conf("shop")
    plan = HostPlan(R[2], R[1], switch=[Step("switch", "switch storefront", "true")],
                    changes=Changes(venue="/v/storefront-abc", env=True, retired=[R[1]],
                                    deleted=[R[0]], settings="storefront.settings overlaid: X",
                                    files=[FileChange(vassal_new, "a\nb2\n", vassal_old),
                                           FileChange(gig, "server {}\n")]))
    text = describe("web1", "storefront", plan, {vassal_old: "a\nb1\n"},
                    lock={"by": "ada@ws", "command": "lock", "time": "t"})
    assert text.startswith("web1: storefront: changes\n"
                           f"  release  new {R[2]} (live: {R[1]})\n"
                           "  venue    build /v/storefront-abc\n"
                           "  env file changed (content not shown)\n"
                           "  settings storefront.settings overlaid: X\n"
                           f"  write    {vassal_new}\n"
                           f"  write    {gig} (new)\n"
                           f"  retire   storefront@{R[1]}\n"
                           f"  delete   release {R[0]}\n"
                           "  step     switch storefront\n"
                           "  lock     held by ada@ws (lock, t): a deploy would be refused now\n")
    assert f"--- {vassal_old}\n+++ {vassal_new}\n@@ -1,2 +1,2 @@\n a\n-b1\n+b2\n" in text
    assert text.endswith(f"--- /dev/null\n+++ {gig}\n@@ -0,0 +1 @@\n+server {{}}\n")


def test_plan_text_hides_a_diff_of_release_ids_only():
    vassal_old, vassal_new = LAYOUT.vassal("storefront", R[1]), LAYOUT.vassal("storefront", R[2])
    text_of = "socket = run/{0}.sock\nprocname = storefront@{0}\nprocesses = {1}\n".format
    plan = HostPlan(R[2], R[1], switch=[Step("switch", "switch storefront", "true")],
                    changes=Changes(files=[FileChange(vassal_new, text_of(R[2], 2), vassal_old)]))
    text = describe("web1", "storefront", plan, {vassal_old: text_of(R[1], 2)})
    assert f"  write    {vassal_new} (only the release id changes)\n" in text
    assert "---" not in text and "@@" not in text
    # Another change shows, and only it.
    text = describe("web1", "storefront", plan, {vassal_old: text_of(R[1], 4)})
    assert text.endswith("@@ -1,3 +1,3 @@\n " + f"socket = run/{R[2]}.sock\n procname = "
                         f"storefront@{R[2]}\n-processes = 4\n+processes = 2\n")


def test_diff_marks_a_missing_final_newline():
    diff = unified_diff("x", FileChange("/p", "y", "/p"))
    assert diff == "--- /p\n+++ /p\n@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+y\n" \
        "\\ No newline at end of file\n"


def live_facts(**changed) -> dict:
    """The helper's answer for a healthy live release R[0] of storefront, with changes."""
    facts = {"release": R[0], "release_dir": True, "vassal": "enabled", "socket": "listening",
             "stable": LAYOUT.socket_link("storefront", R[0]), "stable_socket": "listening"}
    return {**facts, **changed}


@pytest.mark.parametrize("changed, repair, says", [
    ({}, None, None),
    ({"socket": "busy"}, None, None),  # a full backlog: something listens
    ({"release_dir": False}, "release", f"release {R[0]} is missing"),
    ({"vassal": None}, "start", "is missing (/srv/backstage/shop/vassals/storefront@"),
    ({"vassal": "retired"}, "start", "is retired"),
    ({"socket": "refused"}, "release",
     f"takes no connection on {LAYOUT.socket('storefront', R[0])} (refused)"),
    ({"stable": "storefront/gone.sock", "stable_socket": "missing"}, "relink",
     "/srv/backstage/shop/run/storefront.sock points to storefront/gone.sock (missing)"),
    ({"stable": None, "stable_socket": "missing"}, "relink", "points to nothing"),
])
def test_live_state_names_what_does_not_serve_and_the_repair(changed, repair, says):
    state = Observed(LAYOUT, {"live": {"storefront": live_facts(**changed)}}).live("storefront")
    assert state.repair == repair
    assert state.broken is None if says is None else says in state.broken


def test_a_stopped_vassal_is_not_broken_but_a_deploy_starts_it():
    state = Observed(LAYOUT, {"live": {"storefront": live_facts(vassal="stopped")}}).live(
        "storefront")
    assert state.broken is None and state.repair == "start"
    assert state.reasons == [f"the vassal of release {R[0]} was stopped (by stop)"]


def test_a_never_deployed_act_has_nothing_to_repair():
    for data in ({}, {"live": {"storefront": {"release": None, "stable": None,
                                              "stable_socket": "missing"}}}):
        state = Observed(LAYOUT, data).live("storefront")
        assert (state.release, state.repair, state.broken) == (None, None, None)


def venue(complete=True, completed=0.0, linked=False, used_by=()) -> dict:
    return {"complete": complete, "completed": completed if complete else None,
            "linked": linked, "used_by": list(used_by)}


def test_cleanup_keeps_live_used_and_previous_venues_and_removes_the_rest():
    folders = {
        "shop-live": venue(completed=5, linked=True, used_by=["storefront@b.ini"]),
        "shop-old1": venue(completed=1),
        "shop-old2": venue(completed=2),  # the newest unused complete one: the previous
        "shop-half": venue(complete=False),  # a build killed half way
        "shop-rollback": venue(completed=0, used_by=["storefront@a.ini.retired"]),
        "shop-mine": venue(complete=False),  # this deploy builds it (the probe saw it half done)
        "api-only": venue(completed=3, linked=True),
    }
    obs = observed(venues=folders)
    assert venues_to_delete(obs, {"shop-mine"}, set()) == ["shop-half", "shop-old1", "shop-old2"]
    # Once the release that used it is deleted, the rollback venue is the previous one.
    assert venues_to_delete(obs, {"shop-mine"}, {"storefront@a.ini.retired"}) == \
        ["shop-half", "shop-old1", "shop-old2", "shop-rollback"]
    # With only the live one needed, the newest other complete one stays for a way back.
    assert venues_to_delete(observed(venues={k: v for k, v in folders.items()
                                             if k not in ("shop-rollback", "shop-mine")}),
                            set(), set()) == ["shop-half", "shop-old1"]


def test_cleanup_finds_leftovers_of_killed_commands_and_gone_releases():
    act, env = "storefront", LAYOUT.env_dir("storefront")
    obs = observed(
        listings={LAYOUT.releases(act): [R[0], f".incoming-{R[1]}"],
                  LAYOUT.trees: ["d" * 64, f".incoming-{'e' * 64}-{act}",
                                 f".incoming-{'f' * 64}-{act}2", f".incoming-{'f' * 64}-x-{act}"],
                  LAYOUT.vassals: [f"{act}@{R[0]}.ini", f"{act}@{R[2]}.ini.retired",
                                   f"{act}@{R[3]}.ini.stopped", f"{act}@{R[4]}.ini",
                                   f"{act}2@{R[5]}.ini.retired"]},
        globs={f"{env}/env-*": {f"{env}/env-{R[0]}": "x", f"{env}/env-{R[2]}": "x",
                                f"{env}/env-{R[0]}.backstage-new": "x"}})
    assert sorted(leftovers(obs, act, {R[0]})) == sorted([
        f"{LAYOUT.releases(act)}/.incoming-{R[1]}", f"{LAYOUT.trees}/.incoming-{'e' * 64}-{act}",
        f"{env}/env-{R[2]}", f"{env}/env-{R[0]}.backstage-new",
        f"{LAYOUT.vassals}/{act}@{R[2]}.ini.retired", f"{LAYOUT.vassals}/{act}@{R[3]}.ini.stopped",
    ])  # an enabled vassal file is retired first; other acts' files (trees too) are their own


def test_release_lists_keep_only_releases_still_there():
    obs = history(good=[R[0], R[1], R[1], R[5]], bad=[R[2], R[6]], on_disk=R[:4], retired=[],
                  current=R[1])
    assert release_lists(obs, "storefront", {R[1], R[2], R[3]}) == ([R[1]], [R[2]])


def test_a_lock_from_another_machine_is_stale_only_once_its_lease_ran_out():
    holder = {"by": "ci@runner", "pid": 42, "host": "elsewhere", "time": "t", "token": "x",
              "command": "deploy-act", "act": "storefront", "lease": 30}
    info = LAYOUT.lock_info("act/storefront")

    def holder_seen(age):
        return observed(texts={info: json.dumps(holder)}, ages={info: age}) \
            .lock_holder("act/storefront")

    assert holder_seen(12.5)["lease_age"] == 12.5
    assert not checks.lock_is_stale(holder_seen(12.5))  # renewed 12.5 s ago: a live holder
    assert checks.lock_is_stale(holder_seen(31))
    assert "its lease was not renewed for 31 s (lock_timeout 30 s) by ci@runner" in \
        checks.stale_reason(holder_seen(31))
    assert checks.locks_to_take_over("web1", observed(texts={info: json.dumps(holder)},
                                                      ages={info: 31}), ["act/storefront"])
    with pytest.raises(LockHeld, match="held"):
        checks.locks_to_take_over("web1", observed(texts={info: json.dumps(holder)},
                                                   ages={info: 3}), ["act/storefront"])
    # No lease recorded (an older Backstage), or taken by hand: never judged gone from here.
    assert not checks.lock_is_stale({**holder_seen(999), "lease": None})
    assert not checks.lock_is_stale({**holder_seen(999), "command": "lock"})
    # A live process on this machine keeps its lock, whatever its lease says.
    here = {**holder_seen(999), "host": socket.gethostname(), "pid": os.getpid()}
    assert not checks.lock_is_stale(here)


def test_a_deploys_lock_records_its_lease_and_a_lock_by_hand_none():
    from backstage.operations.lock import new_lock

    assert new_lock("deploy-act", "storefront", lease=30)["lease"] == 30
    assert "lease" not in new_lock("lock", "storefront", "maintenance")
