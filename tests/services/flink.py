"""The test Flink runner: re-exported from the product's own service.

``chorus dev up`` runs jobs the same way, so the code lives in
:mod:`chorus_agents.dev.services.flink`; this module keeps the tests' import path.
"""

from __future__ import annotations

from chorus_agents.dev.services.flink import (
    FLINK,
    FlinkEnv,
    FlinkService,
    RunningJob,
    job_server,
    tail,
)

__all__ = ["FLINK", "FlinkEnv", "FlinkService", "RunningJob", "job_server", "tail"]
