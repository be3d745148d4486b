"""Opening many SSH connections at once never trips sshd's MaxStartups (issue 18).

A fleet rollout opens one connection per host, up to ``--parallel`` (32) at once. When they
all reach one sshd (a bastion's, or here one host's), sshd drops the connections past its
``MaxStartups`` unauthenticated ones; the transport keeps at most ``MAX_HANDSHAKES`` pending.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from backstage.transport import ssh

pytestmark = pytest.mark.fleet


def open_and_run(fleet, name: str) -> str:
    transport = ssh.SSHTransport(name, name, ssh_config=fleet.ssh_config,
                                 known_hosts=fleet.known_hosts)
    try:
        return transport.run("echo ok").stdout.strip()
    finally:
        transport.close()


def test_many_connections_to_one_sshd_at_once_all_get_in(fleet):
    """sshd told to drop every connection past 10 unauthenticated ones (the default starts
    dropping there, at random), and four times MAX_HANDSHAKES connections opened at once:
    every one gets in."""
    config = fleet.host("h1").workdir / "ssh" / "sshd_config"
    config.write_text(config.read_text() + "MaxStartups 10\n")
    fleet.restart("h1")
    count = 4 * ssh.MAX_HANDSHAKES
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: open_and_run(fleet, "h1"), range(count)))
    assert answers == ["ok"] * count
