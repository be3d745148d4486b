"""Commands that carry out a :class:`~backstage.model.provision.Provisioning` on a Debian host."""

from backstage.commands.shell import Script
from backstage.model.provision import SYSCTL_FILE, Provisioning

# Install without questions, keep the host's changed configuration files, and take only what
# the packages depend on (recommends would pull in more than a stage needs).
APT_INSTALL = ("apt-get", "-q", "-y", "-o", "Dpkg::Options::=--force-confold",
               "--no-install-recommends", "install")


def provision(script: Script, plan: Provisioning) -> Script:
    """Install packages through apt, persist and apply net.core.somaxconn, enable nginx."""
    if plan.packages:
        script.step("packages")
        script.raw("export DEBIAN_FRONTEND=noninteractive")
        # A host's lists may be missing or stale (a fresh install, a new mirror): read them anew.
        script.run("apt-get", "-q", "update")
        script.run(*APT_INSTALL, *plan.packages)
    if plan.sysctl_text:
        script.step("sysctl").write_file(SYSCTL_FILE, plan.sysctl_text)
    if plan.raise_somaxconn:
        script.run("sysctl", "-q", "-p", SYSCTL_FILE)
    if plan.enable_nginx:
        script.step("nginx-enable").run("systemctl", "enable", "--quiet", "nginx")
    return script
