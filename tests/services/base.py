"""The test services' shared parts: re-exported from the product's own services.

``chorus dev up`` starts the same Kafka and Flink as the tests, so the code lives in
:mod:`chorus_agents.dev.services.base`; this module keeps the tests' import path.
"""

from __future__ import annotations

from chorus_agents.dev.services.base import (
    CACHE,
    REPO,
    REPO_MARKER,
    RUN_DIR,
    H,
    Service,
    ServiceError,
    find_repo,
    free_port,
    in_ci,
    log_tail,
    pid_alive,
    port_open,
    prune_workdirs,
    run_checked,
    spawn,
    stop_process,
    wait_until,
)

__all__ = [
    "CACHE",
    "REPO",
    "REPO_MARKER",
    "RUN_DIR",
    "H",
    "Service",
    "ServiceError",
    "find_repo",
    "free_port",
    "in_ci",
    "log_tail",
    "pid_alive",
    "port_open",
    "prune_workdirs",
    "run_checked",
    "spawn",
    "stop_process",
    "wait_until",
]
