"""The ``backstage`` program's reading of its command line, before Invoke parses it."""

import pytest

from backstage.tasks.program import optional_acts


@pytest.mark.parametrize(("words", "read"), [
    # The act is positional, as the README shows it ("status storefront")...
    (["status", "storefront"], ["status", "storefront"]),
    (["status", "--json", "storefront"], ["status", "--json", "storefront"]),
    (["status", "--act", "storefront"], ["status", "--act", "storefront"]),
    # ...and may be left out, option values aside: an empty one stands in (all acts).
    (["status"], ["status", ""]),
    (["status", "--hosts", "web1", "--json"], ["status", "", "--hosts", "web1", "--json"]),
    (["unlock", "--inventory", "shop"], ["unlock", "", "--inventory", "shop"]),
    (["deploy-act", "--all", "--serial", "2"], ["deploy-act", "", "--all", "--serial", "2"]),
    (["deploy-act", "web,api", "--all"], ["deploy-act", "web,api", "--all"]),
    (["rollback"], ["rollback"]),  # its act is required: Invoke says it is missing
    (["--list"], ["--list"]),
])
def test_an_optional_act_may_be_left_out(words, read):
    assert optional_acts(["backstage", *words]) == ["backstage", *read]
