"""The Producer's records: a gig's domains resolve to the public addresses of the hosts its act
plays on. From the inventory and the zones as PowerDNS lists them, a pure plan: one PATCH
body per zone that changes anything (none when all is as wanted), and what each changes.

Backstage marks every RRset it writes with a comment (account ``backstage``, naming the
production) and only ever replaces or deletes RRsets carrying its own mark: a record made by
hand is left alone; one standing where a gig needs its records is a conflict, refused before
any request that changes something.
"""

from dataclasses import dataclass, field

from backstage.errors import ProducerError
from backstage.model import Production

ACCOUNT = "backstage"
TYPES = ("A", "AAAA")

Key = tuple[str, str]  # (fully qualified name, type)


def fqdn(domain: str) -> str:
    return domain.rstrip(".") + "."


def mark(production: Production) -> dict:
    """The comment that says Backstage (this production) made an RRset."""
    return {"content": f"managed by Backstage, production {production.name}",
            "account": ACCOUNT}


def addresses(production: Production, act: str) -> dict[str, tuple[str, ...]]:
    """Per record type, the public addresses of the hosts ``act`` plays on, sorted."""
    hosts = [production.hosts[h] for h in production.hosts_of(act)]
    return {"A": tuple(sorted({h.public_address for h in hosts if h.public_address})),
            "AAAA": tuple(sorted({h.public_address6 for h in hosts if h.public_address6}))}


def wanted(production: Production, gigs: list[str], booked: bool = True) -> dict[Key, tuple]:
    """Per (name, type) of these gigs' domains, the records they should have: the act's
    hosts' addresses when ``booked``, none when cancelled. Gigs with ``dns = false`` are
    left out."""
    records: dict[Key, tuple] = {}
    for name in gigs:
        gig = production.gigs[name]
        if not gig.dns:
            continue
        by_type = addresses(production, gig.act) if booked else {t: () for t in TYPES}
        for domain in gig.domains:
            for rtype in TYPES:
                records[(fqdn(domain), rtype)] = by_type[rtype]
    return records


def zones_of(production: Production, records: dict[Key, tuple]) -> list[str]:
    """The managed zones these names are in (a gig's domain outside every zone is an
    inventory error, see ``check_production``)."""
    zones = {production.producer.zone_of(name.rstrip(".")) for name, _ in records}
    return sorted(z for z in zones if z)


@dataclass(frozen=True)
class Actual:
    """An RRset as PowerDNS holds it, and whether this production's mark is on it."""

    contents: tuple[str, ...]
    ttl: int
    ours: bool


def read_zone(production: Production, rrsets: list[dict]) -> dict[Key, Actual]:
    """The A and AAAA RRsets of a zone, from PowerDNS's listing (disabled records left out)."""
    own = mark(production)
    found = {}
    for rrset in rrsets:
        if rrset.get("type") not in TYPES:
            continue
        contents = tuple(sorted(r["content"] for r in rrset.get("records", ())
                                if not r.get("disabled")))
        ours = any(c.get("account") == own["account"] and c.get("content") == own["content"]
                   for c in rrset.get("comments", ()))
        found[(rrset["name"], rrset["type"])] = Actual(contents, int(rrset.get("ttl", 0)), ours)
    return found


@dataclass(frozen=True)
class Change:
    """One RRset Backstage changes: its records before and after (empty: none)."""

    name: str
    type: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def line(self) -> str:
        return f"{self.name} {self.type}: {', '.join(self.before) or '(none)'} -> " \
               f"{', '.join(self.after) or '(none)'}"


@dataclass
class DnsPlan:
    """Per zone, the RRsets to PATCH; the changes they make; the names Backstage may not
    touch (hand-made records where a gig wants its own)."""

    patches: dict[str, list[dict]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def check(self, producer_url: str) -> "DnsPlan":
        """This plan, or one line naming the first conflict."""
        if self.conflicts:
            raise ProducerError(f"producer {producer_url}: {self.conflicts[0]}")
        return self


def plan_dns(production: Production, records: dict[Key, tuple],
             zones: dict[str, dict[Key, Actual]]) -> DnsPlan:
    """What to PATCH so each (name, type) holds its wanted records; nothing for those that
    already do, and never an RRset without this production's mark."""
    plan, ttl = DnsPlan(), production.producer.ttl
    for (name, rtype), contents in sorted(records.items()):
        zone = production.producer.zone_of(name.rstrip("."))
        actual = zones.get(zone, {}).get((name, rtype))
        if actual is None and not contents:
            continue
        if actual is not None and not actual.ours:
            if contents and actual.contents != contents:
                plan.conflicts.append(f"{name} {rtype} has records Backstage did not make "
                                      f"({', '.join(actual.contents)}); remove them, or set "
                                      "dns = false on the gig")
            continue
        if actual is not None and actual.contents == contents and actual.ttl == ttl:
            continue
        plan.changes.append(Change(name, rtype, actual.contents if actual else (), contents))
        plan.patches.setdefault(zone, []).append(rrset(production, name, rtype, contents))
    return plan


def rrset(production: Production, name: str, rtype: str, contents: tuple[str, ...]) -> dict:
    """One RRset of a PATCH: replaced with ``contents`` and the mark, or deleted."""
    if not contents:
        return {"name": name, "type": rtype, "changetype": "DELETE"}
    return {"name": name, "type": rtype, "ttl": production.producer.ttl, "changetype": "REPLACE",
            "records": [{"content": c, "disabled": False} for c in contents],
            "comments": [mark(production)]}


def compare(records: dict[Key, tuple], zones: dict[str, dict[Key, Actual]],
            production: Production) -> list[dict]:
    """``dns``: per (name, type), the records wanted and those PowerDNS has, and the state:
    ``match``, ``differ``, ``missing`` or ``not ours`` (made by hand)."""
    rows = []
    for (name, rtype), contents in sorted(records.items()):
        zone = production.producer.zone_of(name.rstrip("."))
        actual = zones.get(zone, {}).get((name, rtype))
        have = actual.contents if actual else ()
        if not contents and not have:
            continue
        state = "match" if have == contents else "missing" if not have else "differ"
        if actual is not None and not actual.ours and state != "match":
            state = "not ours"
        rows.append({"name": name, "type": rtype, "wanted": list(contents),
                     "actual": list(have), "state": state})
    return rows


def gig_states(production: Production, zones: dict[str, dict[Key, Actual]]) -> dict[str, str]:
    """``status``: per gig with records, ``match`` (all as wanted), ``missing`` (none there)
    or ``differ``."""
    states = {}
    for gig in [g for g, gig in production.gigs.items() if gig.dns]:
        kinds = {row["state"] for row in compare(wanted(production, [gig]), zones, production)}
        states[gig] = "match" if kinds <= {"match"} else \
            "missing" if kinds == {"missing"} else "differ"
    return states
