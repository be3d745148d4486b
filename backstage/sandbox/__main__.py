"""``python -m backstage.sandbox up|down|status|fetch``: the demo's persistent sandbox host.

See :mod:`backstage.sandbox.persistent`. Needs root, like every fleet host.
"""

import argparse
import http.client
import subprocess
import sys
from pathlib import Path

from backstage.sandbox import persistent
from backstage.sandbox.fleet import FleetError, fleet_available

PROG = "python -m backstage.sandbox"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd(),
        help="repository directory; the sandbox lives in DIR/.backstage/sandbox (default: .)",
    )
    parser = argparse.ArgumentParser(prog=PROG, description="One throwaway host for the demo.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("up", parents=[common], help="start the sandbox host stage1 (idempotent)")
    sub.add_parser("down", parents=[common], help="stop it and delete its network namespace")
    sub.add_parser("status", parents=[common], help="say whether it runs (exit 3 if not)")
    fetch = sub.add_parser(
        "fetch",
        parents=[common],
        help="GET a page through the host's nginx (exit 1 on no answer or a status >= 400)",
    )
    fetch.add_argument("path", nargs="?", default="/")
    fetch.add_argument("--host-header", default="shop.sandbox.test")
    fetch.add_argument("--port", type=int, default=80)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    workdir = persistent.sandbox_dir(args.dir)
    ssh = f"ssh -F {workdir / 'ssh_config'} {persistent.HOST}"
    if args.command == "up":
        host, started = persistent.up(workdir)
        print(
            f"{host.name} {'is up' if started else 'already up'}: "
            f"netns {host.netns}, pid {host.pid}; log in with: {ssh}"
        )
    elif args.command == "down":
        host = persistent.down(workdir)
        print(f"{host.name} stopped" if host else f"{persistent.HOST} not running")
    elif args.command == "status":
        host = persistent.running_host(workdir)
        if not host:
            print(f"{persistent.HOST} not running")
            return 3
        print(f"{host.name} up: netns {host.netns}, pid {host.pid}; log in with: {ssh}")
    else:
        status, body = persistent.fetch(workdir, args.path, args.host_header, args.port)
        if not status:
            raise FleetError(f"no HTTP answer on port {args.port} of {persistent.HOST}")
        print(f"HTTP {status} {http.client.responses.get(status, '')}".rstrip())
        print(body, end="" if body.endswith("\n") or not body else "\n")
        return 1 if status >= 400 else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if reason := fleet_available():
        print(f"{PROG}: error: {reason}", file=sys.stderr)
        return 2
    try:
        return run(args)
    except (FleetError, OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
