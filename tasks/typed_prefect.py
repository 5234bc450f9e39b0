"""Prefect's dynamic corners, typed. The flows and tasks call Prefect through these, so that the
type checker still checks every task call against the task's own signature."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from prefect.blocks.core import Block
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from blocks.crm import CrmDatabase
from tasks.sales import Origin, SourceBlock

T = TypeVar("T")
B = TypeVar("B", bound=Block)


def as_is(value: T) -> T:
    """`value` handed to a task as it is: Prefect does not walk it looking for futures (`quote`),
    which on a page of 2,000 sales costs seconds. Typed as the value, so the call is still checked."""
    return cast(T, quote(value))


def load_block(kind: type[B], name: str) -> B:
    """The block saved under `name` (`Block.load`, whose type says it may be a coroutine)."""
    block = kind.load(name)
    if not isinstance(block, kind):
        raise TypeError(f"block {name!r} is not an {kind.__name__}")
    return block


def load_origin(reference: str) -> Origin:
    """The source of a run's sales, by its block's name: a bare name is a `CrmDatabase` (the
    demo CRM, as release 0.1 named it); ``<block type>/<name>`` any other source block
    (``sql-sales-source/acme-crm``, ``salesforce-source/acme``)."""
    block = Block.load(reference) if "/" in reference else CrmDatabase.load(reference)
    if not isinstance(block, SourceBlock):
        raise TypeError(f"block {reference!r} is not a source of sales")
    return Origin(block, reference)


def threads(max_workers: int) -> TaskRunner[PrefectFuture[Any]]:
    """A flow's thread-pool task runner: task runs submitted from it run `max_workers` at a time."""
    return cast(TaskRunner[PrefectFuture[Any]], ThreadPoolTaskRunner(max_workers=max_workers))


def deployment_run(name: str, parameters: dict[str, Any], as_subflow: bool = True) -> FlowRun:
    """A run of the deployment `name`, waited for to its end (`run_deployment`, typed)."""
    return cast(FlowRun, run_deployment(name, parameters=parameters, timeout=None, as_subflow=as_subflow))
