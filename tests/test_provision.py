"""What setup-stage installs and writes on a fresh host: the pure decisions and their commands."""

import pytest

from backstage.commands.provision import provision
from backstage.commands.shell import Script
from backstage.model.provision import (
    SYSCTL_FILE,
    HostFacts,
    ProvisionError,
    Provisioning,
    configured_somaxconn,
    decide,
)

# minbase + sshd + python3
FRESH = HostFacts(python="3.13", somaxconn=4096, systemd=True, libpython=False, libxml2=False)
READY = HostFacts(python="3.13", nginx=True, venv=True, somaxconn=4096, systemd=True,
                  nginx_enabled=True, sysctl_text="net.core.somaxconn = 4096\n")


def test_a_fresh_host_gets_nginx_the_venv_module_the_sysctl_file_and_nginx_enabled():
    plan = decide("web1", FRESH, 1024)
    assert plan.packages == ("nginx", "python3-venv", "libpython3.13", "libxml2")
    assert plan.sysctl_text.endswith("net.core.somaxconn = 4096\n")
    assert plan.enable_nginx and not plan.raise_somaxconn
    assert plan.changes() == ["install packages nginx python3-venv libpython3.13 libxml2",
                              f"write {SYSCTL_FILE}", "enable nginx at boot"]


def test_a_provisioned_host_needs_nothing():
    assert not decide("web1", READY, 1024)
    assert decide("web1", READY, 1024).changes() == []


def test_a_builder_host_also_gets_a_compiler_and_the_headers_of_its_python():
    assert decide("web1", READY, 1024, builder=True).packages == ("gcc", "python3-dev")
    facts = HostFacts(python="3.12", default_python=False, venv=True, nginx=True,
                      compiler=True, nginx_enabled=True, sysctl_text=READY.sysctl_text)
    assert decide("web1", facts, 1024, builder=True).packages == ("python3.12-dev",)
    assert decide("web1", facts, 1024).packages == ()


def test_another_python_than_the_distributions_gets_its_own_venv_package():
    facts = HostFacts(python="3.12", default_python=False, nginx=True)
    assert decide("web1", facts, 1024).packages == ("python3.12-venv",)


def test_missing_packages_without_a_source_is_one_line_naming_what_to_install():
    with pytest.raises(ProvisionError) as caught:
        decide("web1", HostFacts(python="3.11", venv=True, sources=False), 1024)
    assert str(caught.value) == (
        "web1: nginx not installed and the host has no apt package source: install them "
        "('apt-get install nginx') or configure a package source")
    with pytest.raises(ProvisionError, match="^web1: nginx, python3-venv not installed and the "
                                             "host has no apt-get: "):
        decide("web1", HostFacts(python="3.11", apt=False), 1024)
    # Nothing missing: no source needed.
    assert not decide("web1", HostFacts(**{**READY.__dict__, "sources": False}), 1024)


def test_somaxconn_is_raised_now_and_persisted_without_lowering_a_higher_value():
    low = decide("web1", HostFacts(**{**READY.__dict__, "somaxconn": 128,
                                      "sysctl_text": None}), 1024)
    assert low.raise_somaxconn and low.sysctl_text.endswith("net.core.somaxconn = 1024\n")
    high = decide("web1", HostFacts(**{**READY.__dict__, "somaxconn": 8192,
                                       "sysctl_text": None}), 1024)
    assert high.sysctl_text.endswith("= 8192\n") and not high.raise_somaxconn
    # A file the admin wrote with a high enough value is left alone; a too low one is not.
    for text, rewrite in (("net.core.somaxconn=65535\n", False), ("net.core.somaxconn = 512", True),
                          ("# nothing\n", True)):
        facts = HostFacts(**{**READY.__dict__, "sysctl_text": text})
        assert bool(decide("web1", facts, 1024).sysctl_text) is rewrite, text


def test_configured_somaxconn_reads_the_last_setting():
    assert configured_somaxconn("net.core.somaxconn = 1\nnet/core/somaxconn=2048\n") == 2048
    assert configured_somaxconn("vm.swappiness = 1\n") is None
    assert configured_somaxconn(None) is None


def test_hosts_without_systemd_do_not_enable_nginx():
    facts = HostFacts(**{**FRESH.__dict__, "systemd": False})
    assert not decide("web1", facts, 1024).enable_nginx


def test_the_commands_install_through_apt_write_the_file_and_enable_nginx():
    text = provision(Script(), decide("web1", FRESH, 1024)).text()
    assert "apt-get -q update" in text
    assert ("apt-get -q -y -o Dpkg::Options::=--force-confold --no-install-recommends install "
            "nginx python3-venv libpython3.13 libxml2") in text
    assert f"mv -f {SYSCTL_FILE}.backstage-new {SYSCTL_FILE}" in text
    assert "sysctl -q -p" not in text  # the running value is high enough already
    assert "systemctl enable --quiet nginx" in text
    assert not provision(Script(), Provisioning())
    raised = provision(Script(), Provisioning(raise_somaxconn=True, sysctl_text="x"))
    assert f"sysctl -q -p {SYSCTL_FILE}" in raised.text()
