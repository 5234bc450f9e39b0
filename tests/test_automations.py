"""The repository's automations (`automations.yaml`), applied to the real Prefect API by the code
`aiq-flows automations apply` runs, and fired by the server's own trigger and action services: a
real local SMTP server (aiosmtpd) receives the mail, a local HTTP receiver the chat webhook, each
with the counts and the link to the run, and no secret. A clean run tells nobody."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aiq_flows.sources.crm_sql import CrmCustomer, CrmSale, CrmSaleLine, SqlCrm
from aiq_flows.sources.demo_crm import seed_demo_crm
from blocks import CrmDatabase, StateStore
from flows.nightly_sales_sync import nightly_sales_sync
from flows.reconciliation import reconciliation
from tests.conftest import DemoBlocks
from tests.support.processes import REPO, Sandbox, free_port

APPROVAL = "aiq-flows: an approval is waiting"


@dataclass
class Inbox:
    """What the local SMTP server and the local webhook receiver got."""

    mails: list[Message] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)

    def mail_texts(self) -> list[str]:
        return [f"{m['Subject']}\n{m.get_payload(decode=True).decode()}" for m in list(self.mails)]

    def texts(self) -> list[str]:
        return self.mail_texts() + [p.get("text", "") for p in self.posts]

    def wait_for(self, match: Callable[[str], bool], timeout: float = 90) -> tuple[str, str]:
        """The first mail and the first post that match, waiting for both."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mail = next((t for t in self.mail_texts() if match(t)), None)
            post = next((p.get("text", "") for p in self.posts if match(p.get("text", ""))), None)
            if mail and post:
                return mail, post
            time.sleep(0.5)
        raise AssertionError(f"no matching message in {timeout} s; got: {self.texts()}")

    def clear(self) -> None:
        self.mails.clear()
        self.posts.clear()


class _Smtp:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.inbox.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    smtp = Controller(_Smtp(box), hostname="127.0.0.1", port=free_port())
    smtp.start()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            box.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    hook = ThreadingHTTPServer(("127.0.0.1", free_port()), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    box.smtp_port, box.hook_url = smtp.port, f"http://127.0.0.1:{hook.server_address[1]}/hook"  # type: ignore[attr-defined]
    yield box
    hook.shutdown()
    smtp.stop()


@pytest.fixture(scope="module")
def automations(inbox: Inbox) -> Iterator[dict[str, str]]:
    """The repository's automations, told through a real SMTP server and a webhook receiver; a
    short wait for the approval one. Removed afterwards: automations are server-wide."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from aiq_flows.automations import apply, remove
    from blocks.notifications import SmtpNotification

    suffix = uuid.uuid4().hex[:6]
    SmtpNotification(
        smtp_host="127.0.0.1",
        smtp_port=inbox.smtp_port,  # type: ignore[attr-defined]
        security="none",
        from_address="aiq-flows@finance.example",
        to=["ar-team@finance.example"],
    ).save(f"mail-{suffix}")
    CustomWebhookNotificationBlock(
        name="finance chat",
        url=inbox.hook_url,  # type: ignore[attr-defined]
        json_data={"text": "{{subject}}\n{{body}}"},  # Slack's and Teams' incoming-webhook shape
    ).save(f"chat-{suffix}")
    channels = {"email": f"aiq-email-notification/mail-{suffix}", "chat": f"custom-webhook/chat-{suffix}"}
    applied = apply(REPO / "automations.yaml", channels, within={APPROVAL: 10})
    assert len(applied) == 5 and all(a.channels == ("email", "chat") for a in applied)
    yield channels
    remove(REPO / "automations.yaml")


def secrets_of(sandbox: Sandbox) -> list[str]:
    return [sandbox.credentials["partner_key"], *(e["user_key"] for e in sandbox.credentials["entities"])]


def test_applying_twice_replaces_by_name(automations: dict[str, str]) -> None:
    from prefect.client.orchestration import get_client

    from aiq_flows.automations import AutomationsError, apply

    with pytest.raises(AutomationsError, match="channel 'chat': no block 'nowhere' of type 'custom-webhook'"):
        apply(REPO / "automations.yaml", {**automations, "chat": "custom-webhook/nowhere"})
    before = apply(REPO / "automations.yaml", automations, within={APPROVAL: 10})
    with get_client(sync_client=True) as client:
        names = [a.name for a in client.read_automations() if a.name.startswith("aiq-flows:")]
    assert all(a.replaced for a in before) and sorted(names) == sorted(a.name for a in before)


def test_a_run_with_sales_for_a_person_tells_them_with_counts_and_links_and_a_clean_run_tells_nobody(
    automations: dict[str, str], inbox: Inbox, sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    crm = SqlCrm(demo_blocks.crm_url)
    seeded = seed_demo_crm(crm, sales=30, today=date(2026, 11, 25))
    inbox.clear()
    summary = nightly_sales_sync(
        aiq_connection=demo_blocks.aiq, crm_database=demo_blocks.crm, state_store=demo_blocks.store
    )
    assert summary["quarantined"] and summary["failed"]
    mail, post = inbox.wait_for(lambda text: "needs a person" in text)
    for text in (mail, post):
        assert f"quarantined {summary['quarantined']}, failed {summary['failed']}" in text
        assert "into DEMO_UK" in text and "/runs/flow-run/" in text and ".csv" in text
        assert not [secret for secret in secrets_of(sandbox) if secret in text]
    assert len(seeded.bad_rows) > 0

    # A clean night (a CRM without the demo's bad rows, a store of its own): nobody is told.
    clean_url = demo_blocks.crm_url.replace("crm.db", "clean-crm.db")
    clean_crm = SqlCrm(clean_url)
    planted = seed_demo_crm(clean_crm, sales=12, today=date(2026, 11, 25), start_id=1001).bad_rows
    with Session(clean_crm.engine) as session, session.begin():
        juniper = select(CrmSale.id).join(CrmCustomer).where(CrmCustomer.account_key == "juniper")
        unfit = set(planted) | set(session.scalars(juniper))
        session.execute(delete(CrmSaleLine).where(CrmSaleLine.sale_id.in_(unfit)))
        session.execute(delete(CrmSale).where(CrmSale.id.in_(unfit)))
    CrmDatabase(url=SecretStr(clean_url)).save(f"{demo_blocks.crm}-clean")
    StateStore(url=SecretStr(demo_blocks.store_url.replace("store.db", "clean-store.db"))).save(
        f"{demo_blocks.store}-clean"
    )
    inbox.clear()
    clean = nightly_sales_sync(
        aiq_connection=demo_blocks.aiq,
        crm_database=f"{demo_blocks.crm}-clean",
        state_store=f"{demo_blocks.store}-clean",
    )
    assert clean["created"] > 0 and clean["quarantined"] == clean["failed"] == clean["held"] == 0
    time.sleep(10)  # what would have come by now
    assert inbox.texts() == []


def test_a_failed_run_and_reconciliation_differences_are_told(
    automations: dict[str, str], inbox: Inbox, sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    crm = SqlCrm(demo_blocks.crm_url)
    seed_demo_crm(crm, sales=20, today=date(2026, 11, 25))
    nightly_sales_sync(
        aiq_connection=demo_blocks.aiq, crm_database=demo_blocks.crm, state_store=demo_blocks.store
    )
    inbox.clear()

    failed = nightly_sales_sync(
        aiq_connection="no-such-connection", crm_database=demo_blocks.crm, state_store=demo_blocks.store,
        return_state=True,
    )  # fmt: skip
    assert failed.is_failed()
    mail, post = inbox.wait_for(lambda text: "nightly-sales-sync run" in text and "Failed" in text)
    assert "/runs/flow-run/" in mail and "/runs/flow-run/" in post

    with Session(crm.engine) as session, session.begin():  # a posted sale's amount edited in the CRM
        first = session.query(CrmSaleLine).join(CrmSale).filter(CrmSale.aiq_status == "posted").first()
        assert first is not None
        first.net_amount, first.tax_amount = first.net_amount + 10, first.tax_amount + 2  # still valid
    inbox.clear()
    differences = reconciliation(
        aiq_connection=demo_blocks.aiq, crm_database=demo_blocks.crm, state_store=demo_blocks.store,
        from_date=date(2026, 10, 1), to_date=date(2026, 11, 30), return_state=True,
    )  # fmt: skip
    assert differences.is_failed()
    mail, post = inbox.wait_for(lambda text: "differences between the CRM and DEMO_UK" in text)
    assert "(amount: 1)" in mail and "(amount: 1)" in post


def test_an_approval_waiting_too_long_is_told(
    automations: dict[str, str], inbox: Inbox, sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    seed_demo_crm(SqlCrm(demo_blocks.crm_url), sales=10, today=date(2026, 11, 25))
    inbox.clear()
    result: dict[str, Any] = {}
    waiting = threading.Thread(
        target=lambda: result.update(
            state=nightly_sales_sync(
                aiq_connection=demo_blocks.aiq, crm_database=demo_blocks.crm, state_store=demo_blocks.store,
                approval=True, approval_timeout_minutes=2, return_state=True,
            )
        ),
        daemon=True,
    )  # fmt: skip
    waiting.start()
    mail, post = inbox.wait_for(lambda text: "waits for approval" in text, timeout=120)
    [linked] = set(re.findall(r"/runs/flow-run/([0-9a-f-]{36})", mail + post))  # the same run in both
    with get_client(sync_client=True) as client:
        paused = client.read_flow_run(uuid.UUID(linked))
    assert paused.state is not None and paused.state.type is StateType.PAUSED
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(paused.id, run_input={"approved": False, "approver": "a tester"})  # rejected: it ends
    waiting.join(timeout=120)
    assert result["state"].is_final()
