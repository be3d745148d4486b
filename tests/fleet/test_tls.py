"""TLS gigs on a fleet host: the example act's gig served over HTTPS with a test certificate, and
a deploy of an act with a TLS gig passing its checks. The inventory and rendering are
tests/test_tls.py."""

import re

import pytest

from tests.support.deploying import DOMAIN, deployed
from tests.test_tls import CERT, KEY, make_certificate


@pytest.fixture(scope="module")
def tls_stage(tmp_path_factory):
    """The example act deployed on plain HTTP, then its gig booked with a test certificate."""
    work = tmp_path_factory.mktemp("tls")
    cert, key = make_certificate(work, DOMAIN)
    with deployed(work / "stage", "tls") as stage:
        fleet = stage.fleet
        status, body = stage.page("/")
        assert status == 200, body
        # Ship the certificate and key into the host: the key 0600, never in any argv.
        fleet.run("h1", "mkdir -p /etc/ssl/backstage && (umask 077 && cat > "
                  f"{KEY})", input=key.read_text())
        fleet.run("h1", f"cat > {CERT}", input=cert.read_text())
        fleet.run("h1", "cat > /tmp/client-ca.crt", input=cert.read_text())
        with stage.inventory.open("a") as f:
            f.write(f'tls_certificate = "{CERT}"\ntls_key = "{KEY}"\nhsts = 3600\n')
        assert 'tls_key = "' in stage.inventory.read_text().split("[gigs.shop]")[1]
        # Its health check through nginx passes only while the old configuration still
        # answers (nginx reloads asynchronously); see the deploy test below.
        booked = stage.cli("book-gig", "shop", check=False)
        if booked.returncode != 0:
            assert "health via nginx" in booked.stderr and "301" in booked.stderr, booked.stderr
        yield stage


@pytest.mark.fleet
def test_gig_served_over_https_with_a_test_certificate(tls_stage):
    stage = tls_stage
    fleet = stage.fleet
    https = fleet.run("h1", [
        "curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", "/tmp/client-ca.crt",
        "--resolve", f"{DOMAIN}:443:127.0.0.1", "-D", "/tmp/headers", "-w", "\n%{http_code}",
        f"https://{DOMAIN}/"], check=False)
    assert https.returncode == 0, https.stderr
    page, _, code = https.stdout.rpartition("\n")
    assert code == "200", https.stdout
    assert "<h1>" in page
    headers = fleet.run("h1", ["cat", "/tmp/headers"]).stdout.lower()
    assert "strict-transport-security: max-age=3600" in headers
    assert re.search(r"^server: nginx\r?$", headers, flags=re.MULTILINE), headers  # no version

    plain = fleet.run("h1", [
        "curl", "-sS", "--noproxy", "*", "--max-time", "10", "-o", "/dev/null",
        "-w", "%{http_code} %{redirect_url}", "-H", f"Host: {DOMAIN}",
        "http://127.0.0.1/greet?x=1"])
    assert plain.stdout == f"301 https://{DOMAIN}/greet?x=1", plain.stdout

    # Without the test's CA the certificate is not trusted: it really is the one served.
    untrusted = fleet.run("h1", [
        "curl", "-sS", "--noproxy", "*", "--max-time", "10", "--resolve",
        f"{DOMAIN}:443:127.0.0.1", f"https://{DOMAIN}/"], check=False)
    assert untrusted.returncode == 60, (untrusted.returncode, untrusted.stderr)

    # No walking out of a static alias.
    walk = fleet.run("h1", [
        "curl", "-sS", "--noproxy", "*", "--max-time", "10", "--path-as-is", "--cacert",
        "/tmp/client-ca.crt", "--resolve", f"{DOMAIN}:443:127.0.0.1",
        "-w", "\n%{http_code}", f"https://{DOMAIN}/static../../../../etc/passwd"],
        check=False)
    assert "root:x:0:0" not in walk.stdout
    assert walk.stdout.rpartition("\n")[2] in ("400", "404"), walk.stdout

    mode = fleet.run("h1", ["stat", "-c", "%a", KEY]).stdout.strip()
    assert mode == "600"


@pytest.mark.fleet
def test_deploy_of_an_act_with_a_tls_gig_passes_its_checks(tls_stage):
    stage = tls_stage
    views = stage.source / "greetings" / "templates" / "greetings" / "home.html"
    views.write_text(views.read_text() + "\n<!-- over TLS -->\n")
    done = stage.cli("deploy-act", "storefront", check=False)
    assert done.returncode == 0, done.stderr
