"""Which failures a Prefect task retry may repeat: only those that certainly changed nothing."""

from __future__ import annotations

from typing import Any

from aiq_flows.gateway.errors import AiqTransientError


def retry_transient_aiq_errors(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except AiqTransientError:
        return True
    except Exception:
        return False
    return False
