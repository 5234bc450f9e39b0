"""`make demo` end to end: a real Prefect server, a process worker, deployments from prefect.yaml,
the nightly deployment run through the worker; the report adds up and nothing is left running."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.processes import REPO


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_deploys_runs_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"DEMO_EXIT": "1", "DEMO_STATE_DIR": str(tmp_path / "demo")}
    result = subprocess.run(
        [sys.executable, "scripts/demo.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert re.search(r"flow run\s+: \S+ -> Completed", output), output[-3000:]
    seeded = re.search(r"demo CRM: (\d+) sales", output)
    assert seeded and int(seeded.group(1)) > 240, output[-3000:]  # 240 clean sales and the dirty ones
    assert re.search(rf"sales read\s+: {seeded.group(1)}\b", output), output[-3000:]
    assert re.search(r"adds up\s+: True", output)
    assert re.search(r"deferred-revenue-release: \S+ -> Completed", output), output[-3000:]
    assert re.search(r"back-to-back-invoicing: \S+ -> Completed", output), output[-3000:]
    assert re.search(r"pairs posted\s+: 16 of 20 jobs", output), output[-3000:]
    assert re.search(r"intercompany-pairing: \S+ -> Completed", output), output[-3000:]
    assert re.search(r"pairs in parity: 9 of 10 charges", output), output[-3000:]
    assert re.search(r"group\s+: \S+ -> Completed", output), output[-3000:]
    for entity in ("DEMO_UK", "DEMO_UK2", "DEMO_IE"):
        assert re.search(rf"{entity}\s+: \S+ -> Completed, created \d+", output), output[-3000:]
    assert re.search(r"salesforce\s+: \S+ -> Completed", output), output[-3000:]
    assert re.search(r"opportunities\s+: 34 of 34 closed-won invoiced", output), output[-3000:]
    created = int(re.search(r"created\s+: (\d+)", output).group(1))  # type: ignore[union-attr]
    assert created > 150
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", output)]
    assert ports and not [p for p in set(ports) if _listening(p)], "the demo left a server running"
