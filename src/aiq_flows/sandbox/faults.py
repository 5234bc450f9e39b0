"""Fault injection, switchable at run time and reproducible from a seed.

A plan is a list of rules; each names an operation (or ``*``), a kind, and how often it fires
(``rate`` as a probability, ``count`` as a budget, or both; ``skip`` lets that many matching calls
through first, e.g. to fail the second of two posts):

- ``latency``: sleep ``latency_ms`` before handling the call;
- ``http_error``: answer HTTP ``status`` (503 by default) without handling the call;
- ``expire_token``: expire the caller's token first, so the call answers ``HasExpired=true``;
- ``drop_response``: handle and commit the call, then close the connection without answering;
- ``rate_limit``: refuse the call unprocessed: in-band ``OAUTH_INTEGRATION_APPS_TOO_MANY_API_CALLS``
  on API 2.0, HTTP 429 on 1.1.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal

FaultKind = Literal["latency", "http_error", "expire_token", "drop_response", "rate_limit"]


@dataclass
class FaultRule:
    kind: FaultKind
    operation: str = "*"
    rate: float = 1.0
    count: int | None = None
    latency_ms: int = 0
    status: int = 503
    skip: int = 0
    fired: int = 0
    seen: int = 0

    def matches(self, operation: str) -> bool:
        return self.operation in ("*", operation)


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random = random.Random(0)

    def configure(self, rules: list[dict[str, Any]], seed: int = 0) -> None:
        parsed = [
            FaultRule(**{k: v for k, v in rule.items() if k not in ("fired", "seen")}) for rule in rules
        ]
        with self._lock:
            self._rules = parsed
            self._random = random.Random(seed)

    def clear(self) -> None:
        self.configure([])

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def fire(self, kind: FaultKind, operation: str) -> FaultRule | None:
        """The first matching rule of this kind that fires for this call, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.kind != kind or not rule.matches(operation):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                return rule
        return None

    def latency_seconds(self, operation: str) -> float:
        rule = self.fire("latency", operation)
        return rule.latency_ms / 1000 if rule else 0.0
