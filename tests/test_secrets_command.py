"""Secrets from a command on the workstation (``secrets_command``: a password manager), for an
act and for the Producer's API key: read once per process, masked, never in an error."""

import pytest

from backstage.errors import InventoryError
from backstage.model import load_production
from backstage.model.secrets import reveal
from tests.test_dns_plan import producer_inventory
from tests.test_inventory import base_inventory, make_project, write_inventory


def production(tmp_path, command: str, **act):
    project = make_project(tmp_path)
    data = base_inventory()
    data["acts"]["storefront"].update({"secrets_command": command, **act})
    return load_production(write_inventory(project, data))


def test_an_act_reads_its_secrets_from_the_command_once(tmp_path):
    counter = tmp_path / "runs"
    prod = production(tmp_path, f"echo run >> {counter}; printf 'DJANGO_SECRET_KEY=s3cret\\n"
                                "# a comment\\nAPI_TOKEN=tok=en\\n'")
    secrets = prod.secrets_of("storefront")
    assert {k: reveal(v) for k, v in secrets.items()} == {"DJANGO_SECRET_KEY": "s3cret",
                                                          "API_TOKEN": "tok=en"}
    assert str(secrets["API_TOKEN"]) != "tok=en"  # masked when shown
    prod.secrets_of("storefront")
    assert counter.read_text() == "run\n"  # once per process
    assert "s3cret" not in prod.redactor()("the key is s3cret")


def test_a_failing_command_is_one_line_naming_the_key(tmp_path):
    prod = production(tmp_path, "echo nope >&2; exit 4")
    with pytest.raises(InventoryError, match=r"acts\.storefront\.secrets_command: exited 4"):
        prod.secrets_of("storefront")


def test_a_bad_line_names_its_number_and_never_its_value(tmp_path):
    prod = production(tmp_path, "printf 'GOOD=1\\nnot a pair s3cret\\n'")
    with pytest.raises(InventoryError, match=r"secrets_command: line 2") as raised:
        prod.secrets_of("storefront")
    assert "s3cret" not in str(raised.value)


def test_a_file_and_a_command_together_are_refused(tmp_path):
    (tmp_path / "app").mkdir(parents=True)
    (tmp_path / "app" / "secrets.env").write_text("A=1\n")
    with pytest.raises(InventoryError, match=r"acts\.storefront\.secrets_command: give "
                                             "secrets \\(a file\\) or secrets_command"):
        production(tmp_path, "printf 'A=1\\n'", secrets="../app/secrets.env")


def test_the_producers_api_key_from_a_command(tmp_path):
    project = make_project(tmp_path)
    data = producer_inventory(project)
    del data["producer"]["secrets"]
    data["producer"]["secrets_command"] = "printf 'PDNS_KEY=k3y\\n'"
    path = write_inventory(project, data)
    prod = load_production(path)
    assert reveal(prod.producer.api_key(path)) == "k3y"
