"""Where each run's full results go: one CSV per run, one row per record, linked from the run's
report artifact (which lists only what needs a person, so that it stays readable, and under
Prefect's event size, at 100,000 sales)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field


class ResultsFolder(Block):
    _block_type_name: ClassVar[str] = "AIQ Results Folder"
    _description: ClassVar[str] = "A folder (local or a mounted share) for each run's full results, as CSV."

    path: str = Field(description="e.g. /srv/aiq/results, or a mounted share such as /mnt/finance/aiq")
    link_base: str | None = Field(
        default=None,
        description="How people open the folder, e.g. https://files.example.com/aiq (default: file://)",
    )

    def folder(self) -> Path:
        return Path(self.path).expanduser()

    def link(self, file: Path) -> str:
        if self.link_base:
            return f"{self.link_base.rstrip('/')}/{file.relative_to(self.folder()).as_posix()}"
        return file.resolve().as_uri()
