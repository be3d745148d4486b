"""What ``plan`` and ``deploy-act --dry-run`` print for one host: the deploy's plan in words,
with a unified diff of each file it would write against the host's copy."""

from backstage.operations.changes import unified_diff
from backstage.operations.deploy import HostPlan


def describe(host: str, act: str, plan: HostPlan, texts: dict[str, str | None],
             lock: dict | None = None) -> str:
    """``texts`` holds the host's copies of the files the plan replaces (read beforehand)."""
    lines = [f"{host}: {act}: " + ("no changes" if plan.noop else "changes")]
    if plan.noop:
        lines[0] += f" (release {plan.previous} is live)" if plan.previous else ""
        return "\n".join(lines) + "\n"
    changes = plan.changes
    rows = [("repair", reason) for reason in changes.repair]
    if plan.repair:
        rows.append(("release", f"keep {plan.release} (live), nothing uploaded"))
    else:
        rows += [("release", f"new {plan.release} (live: {plan.previous or 'none'})"),
                 ("venue", f"build {changes.venue}" if changes.venue else "reuse the built venue"),
                 ("env file", "changed (content not shown)" if changes.env else "unchanged")]
        rows += [("settings", changes.settings)] if changes.settings else []
    # A file that differs from the host's only by the release id says so, without a diff.
    olds = {f.path: renamed(texts.get(f.replaces), plan) if f.replaces else None
            for f in changes.files}
    rows += [("write", f.path + (" (new)" if not f.replaces else " (only the release id changes)"
                                 if olds[f.path] == f.text else "")) for f in changes.files]
    rows += [("retire", f"{act}@{r}") for r in changes.retired]
    rows += [("delete", f"release {r}") for r in changes.deleted]
    rows += [("delete", path) for path in changes.removed]
    rows += [("step", s.summary) for s in plan.prepare + plan.start + plan.switch]
    if lock:
        holder = f"{lock.get('by')} ({lock.get('command') or '-'}, {lock.get('time') or '-'})"
        rows.append(("lock", f"held by {holder}: a deploy would be refused now"))
    lines += [f"  {name:<9}{text}" for name, text in rows]
    diffs = [unified_diff(olds[f.path], f) for f in changes.files if olds[f.path] != f.text]
    return "\n".join(lines) + "\n" + "".join(d for d in diffs if d)


def renamed(text: str | None, plan: HostPlan) -> str | None:
    """The host's file with the live release's id replaced by the new one's."""
    return text.replace(plan.previous, plan.release) if text and plan.previous else text
