"""Commands for certificates' HTTP-01 challenges: answers nginx serves while an order waits."""

from posixpath import join

from backstage.commands.shell import Script
from backstage.model import Layout


def publish_challenges(script: Script, layout: Layout, answers: dict[str, str]) -> Script:
    """Write each token's key authorization where port 80 serves it (root's folder and files,
    readable by nginx's workers: the answers are public by design)."""
    script.step("challenge")
    script.run("install", "-d", "-m", "755", layout.acme_challenges)
    for token, answer in answers.items():
        script.write_file(join(layout.acme_challenges, token), answer)
    return script


def withdraw_challenges(script: Script, layout: Layout, tokens: list[str]) -> Script:
    """Remove the answers once the order is decided, whatever the outcome."""
    return script.remove(*(join(layout.acme_challenges, token) for token in tokens))
