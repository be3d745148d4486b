"""The lease keeper renews a rollout's locks on its hosts while it runs, and only then."""

import time
from types import SimpleNamespace

from backstage.engine.lease import LeaseKeeper
from backstage.model import Layout


class Host:
    """A stand-in HostRun: records what it is sent; ``fail`` raises instead."""

    def __init__(self, fail=False):
        self.layout = Layout("shop", "system", "/srv/backstage", 80)
        self.sent, self.fail = [], fail

    def send(self, command):
        if self.fail:
            raise OSError("connection reset")
        self.sent.append(command)
        return SimpleNamespace(ok=True)


def test_the_keeper_renews_each_hosts_locks_until_the_rollout_ends():
    good, down = Host(), Host(fail=True)
    with LeaseKeeper(lambda: [good, down], ["act/storefront"], "t0ken", every=0.05):
        time.sleep(0.3)
    rounds = len(good.sent)
    assert rounds >= 3
    assert "grep -qF t0ken" in good.sent[0] and \
        "touch -c /srv/backstage/shop/state/locks/act/storefront/info.json" in good.sent[0]
    time.sleep(0.15)
    assert len(good.sent) == rounds  # stopped with the rollout
