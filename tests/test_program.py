"""The ``backstage`` program's reading of its command line, before Invoke parses it."""

import pytest

from backstage.tasks.program import optional_acts


@pytest.mark.parametrize(("words", "read"), [
    # The act is the first word, as the README shows it ("status storefront")...
    (["status", "storefront"], ["status", "--act", "storefront"]),
    (["status", "--json", "storefront"], ["status", "--json", "--act", "storefront"]),
    (["status", "--hosts", "web1", "web"], ["status", "--hosts", "web1", "--act", "web"]),
    (["status", "--act", "storefront"], ["status", "--act", "storefront"]),
    (["unlock", "web"], ["unlock", "--act", "web"]),
    # ...or left out, option values aside.
    (["status"], ["status"]),
    (["status", "--hosts", "web1", "--json"], ["status", "--hosts", "web1", "--json"]),
    (["unlock", "--inventory", "shop"], ["unlock", "--inventory", "shop"]),
    # deploy-act's is positional: an empty one stands in for --all's.
    (["deploy-act", "--all", "--serial", "2"], ["deploy-act", "", "--all", "--serial", "2"]),
    (["deploy-act", "web,api", "--all"], ["deploy-act", "web,api", "--all"]),
    (["rollback"], ["rollback"]),  # its act is required: Invoke says it is missing
    (["--list"], ["--list"]),
])
def test_an_optional_act_may_be_left_out(words, read):
    assert optional_acts(["backstage", *words]) == ["backstage", *read]


def test_the_summary_of_a_deploy_that_changed_nothing_names_the_live_release():
    from backstage.rollout.deploy import HostOutcome, RolloutReport
    from backstage.tasks.tasks import summary_title

    live, new = "20261129T000000000Z-0123abcd", "20261129T010000000Z-0123abcd"
    unchanged = {h: HostOutcome(h, "unchanged", live, live) for h in ("h1", "h2")}
    assert summary_title(RolloutReport("p", "web", new, unchanged)) == \
        f"web: unchanged, {live} is live"
    deployed = {**unchanged, "h2": HostOutcome("h2", "deployed", live, new)}
    assert summary_title(RolloutReport("p", "web", new, deployed)) == f"web -> {new}"
