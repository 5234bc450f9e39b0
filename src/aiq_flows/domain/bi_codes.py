"""Which BI code (AIQ "department") a job's lines are tagged with, decided before any write.

A job names its BI code, or only the analysis elements that identify one. The code must exist and
be active; a missing code may be created when the deployment allows it, with each analysis
element checked against its dimension. Rules only: the caller reads AIQ once per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiq_flows.domain.fields import Rejection
from aiq_flows.domain.jobs import Job


@dataclass(frozen=True)
class KnownCode:
    active: bool
    analysis_codes: tuple[str | None, ...]


@dataclass(frozen=True)
class BiCodes:
    """AIQ's BI codes and analysis dimensions as read at the start of a run."""

    codes: Mapping[str, KnownCode]
    dimension_elements: Sequence[frozenset[str]]  # per dimension position (1..6), its element codes


@dataclass(frozen=True)
class Resolved:
    code: str
    create: bool = False  # CreateDepartment before the first leg is saved


def _reject(job: Job, field: str, rule: str) -> Rejection:
    return Rejection(job.job_id, job.reference, field, rule, "job")


def _elements_fit(job: Job, dimensions: BiCodes) -> Rejection | None:
    for position, element in enumerate(job.analysis_codes, start=1):
        if element is None:
            continue
        if position > len(dimensions.dimension_elements):
            return _reject(job, f"analysis_codes[{position}]", f"AIQ has no analysis dimension {position}")
        if element not in dimensions.dimension_elements[position - 1]:
            return _reject(
                job,
                f"analysis_codes[{position}]",
                f"'{element}' is not an element of analysis dimension {position} in AccountsIQ",
            )
    return None


def resolve(job: Job, known: BiCodes, allow_create: bool) -> Resolved | Rejection:
    if job.bi_code is None:
        wanted = tuple(job.analysis_codes)
        matches = sorted(code for code, k in known.codes.items() if k.active and k.analysis_codes == wanted)
        if len(matches) == 1:
            return Resolved(matches[0])
        shown = ", ".join(e or "-" for e in wanted)
        if not matches:
            return _reject(job, "analysis_codes", f"no active BI code has the analysis elements ({shown})")
        return _reject(job, "analysis_codes", f"several BI codes have the elements ({shown}): {matches}")
    existing = known.codes.get(job.bi_code)
    if existing is not None:
        if not existing.active:
            return _reject(job, "bi_code", f"BI code '{job.bi_code}' is inactive in AccountsIQ")
        return Resolved(job.bi_code)
    if not allow_create:
        return _reject(
            job,
            "bi_code",
            f"BI code '{job.bi_code}' does not exist in AccountsIQ (the deployment does not create BI codes)",
        )
    return _elements_fit(job, known) or Resolved(job.bi_code, create=True)
