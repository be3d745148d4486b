"""Transport layer: run command text on one host and stream bytes to it.

:class:`SSHTransport` talks to a remote host over one Fabric connection; :class:`LocalTransport`
runs the same command text on this machine. Both count commands and bytes, which the
benchmarks report.
"""

from backstage.transport.base import Result, Transport
from backstage.transport.local import LocalTransport
from backstage.transport.ssh import SSHTransport

__all__ = ["LocalTransport", "Result", "SSHTransport", "Transport"]
