"""Inventory texts the unit tests share: the example act on hosts nothing can reach (the
tests write ``ssh_config`` and ``known_hosts`` beside it)."""

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storefront"


def example_inventory(hosts: dict[str, str]) -> str:
    """The storefront act of the example on ``hosts`` (name -> role)."""
    host_tables = "".join(f'[hosts.{name}]\nroles = ["{role}"]\n' for name, role in hosts.items())
    return f"""
[ssh]
config = "ssh_config"
known_hosts = "known_hosts"

{host_tables}
[venues.shop]
requirements = "{EXAMPLE}/requirements.txt"

[acts.storefront]
venue = "shop"
source = "{EXAMPLE}"
settings = "storefront.settings"
roles = ["web"]
"""
