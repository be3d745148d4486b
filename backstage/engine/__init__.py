"""Rollout layer: run plans on the hosts of a production, in parallel, reporting progress.

Each operation (``setup_stage``, ``deploy_act``, ``sess_action``, ``status``, gigs) opens one
SSH connection per host, probes the host once, plans, and runs the plan's steps, each one
remote command. Hosts run side by side in a bounded thread pool.
"""

from backstage.rollout.hosts import HostRun, Options, run_on_hosts

__all__ = ["HostRun", "Options", "run_on_hosts"]
