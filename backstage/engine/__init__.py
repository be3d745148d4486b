"""Engine layer: run operations on the hosts of a production, in parallel, reporting progress.

:mod:`~backstage.engine.hosts` is one host during an operation (one SSH connection, one probe,
then Steps); :mod:`~backstage.engine.executor` runs an action on many hosts at once (bounded
pool, Ctrl-C, per-host results); :mod:`~backstage.engine.rollout` runs a deploy's phases over
batches of hosts; :mod:`~backstage.engine.report` prints progress.
"""

from backstage.engine.executor import in_parallel, run_on_hosts, select_hosts
from backstage.engine.hosts import HostRun, Options

__all__ = ["HostRun", "Options", "in_parallel", "run_on_hosts", "select_hosts"]
