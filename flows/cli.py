"""`aiq-flows`: try the sync on your own data, from the command line.

    aiq-flows mapping check --mapping FILE --url URL [--limit N]
    aiq-flows sync nightly --mapping FILE --url URL --aiq-endpoint URL --company ID
                           [--store-url URL] [--dry-run] [--api-version 1.1|2.0]
    aiq-flows db upgrade --url URL
    aiq-flows automations apply [--file automations.yaml] [--channel NAME=TYPE/BLOCK]...

Keys never go on the command line: `AIQ_PARTNER_KEY` and `AIQ_USER_KEY` (API 1.1), or
`AIQ_CLIENT_ID` and `AIQ_CLIENT_SECRET` (API 2.0), from the environment. Exit codes: 0 the
command did its work (quarantined or refused sales included); 1 the run failed; 2 it could not
start (a mapping, a connection, a key missing), with one line saying why.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


class Unusable(Exception):
    """The command cannot start: the message is the one line that says why."""


def _json_default(value: Any) -> str:
    return str(value)


def _line(payload: dict[str, Any]) -> str:
    return json.dumps(payload, default=_json_default, ensure_ascii=False)


# --- mapping check --------------------------------------------------------------------------------


def mapping_check(mapping: str, url: str, limit: int, aiq_endpoint: str | None, company: str | None) -> int:
    """Connect, check every table and column the mapping names, read up to `limit` sales through
    the code the flow uses, validate them (against AIQ when it is given), one JSON line each."""
    from sqlalchemy.exc import SQLAlchemyError

    from aiq_flows.domain.fields import Rejection
    from aiq_flows.domain.sales import ReferenceData, validate_sale
    from aiq_flows.domain.watermark import Watermark
    from aiq_flows.sources.mapped_sql import MappedSqlSource
    from aiq_flows.sources.mapping import MappingError, load_mapping

    try:
        source = MappedSqlSource(url, load_mapping(mapping), "mapping-check")
        source.check()
        page = source.changed_sales(Watermark.beginning(), timedelta(0), limit=limit)
    except MappingError as error:
        raise Unusable(str(error)) from None
    except SQLAlchemyError as error:
        raise Unusable(f"database: {str(error).splitlines()[0]}") from None
    reference = _reference(aiq_endpoint, company) if aiq_endpoint else ReferenceData.unknown()
    valid = quarantined = 0
    for record in page.records:
        result = validate_sale(record, reference)
        if isinstance(result, Rejection):
            quarantined += 1
            print(_line({"sale_id": result.sale_id, "quarantined": result.message, "field": result.field}))
        else:
            valid += 1
            print(_line({"sale_id": result.sale_id, "valid": result.model_dump(mode="json")}))
    source.dispose()
    print(f"checked: {len(page.records)} sales, {valid} valid, {quarantined} quarantined")
    return EXIT_OK


def _reference(endpoint: str, company: str | None) -> Any:
    from tasks.lookups import reference_data

    return reference_data(_connection(endpoint, company, None).gateway())


# --- sync nightly ---------------------------------------------------------------------------------


def _connection(endpoint: str, company: str | None, api_version: str | None) -> Any:
    from pydantic import SecretStr, ValidationError

    from blocks.aiq import AiqConnection

    if not company:
        raise Unusable("--company is required with --aiq-endpoint")
    version = api_version or ("2.0" if os.environ.get("AIQ_CLIENT_ID") else "1.1")
    needed = (
        ("AIQ_PARTNER_KEY", "AIQ_USER_KEY") if version == "1.1" else ("AIQ_CLIENT_ID", "AIQ_CLIENT_SECRET")
    )
    missing = [name for name in needed if not os.environ.get(name)]
    if missing:
        raise Unusable(
            f"API {version} needs {' and '.join(missing)} in the environment (never on the command line)"
        )
    try:
        if version == "1.1":
            return AiqConnection(
                endpoint_url=endpoint,
                company_id=company,
                partner_key=SecretStr(os.environ["AIQ_PARTNER_KEY"]),
                user_key=SecretStr(os.environ["AIQ_USER_KEY"]),
            )
        return AiqConnection(
            api_version="2.0",
            endpoint_url=endpoint,
            company_id=company,
            client_id=os.environ["AIQ_CLIENT_ID"],
            client_secret=SecretStr(os.environ["AIQ_CLIENT_SECRET"]),
        )
    except ValidationError as error:
        raise Unusable(f"AIQ connection: {error.errors()[0]['msg']}") from None


def sync_nightly(args: argparse.Namespace) -> int:
    """Run the nightly-sales-sync flow once, in this process (against PREFECT_API_URL, or a
    temporary local Prefect server), with blocks saved for it under names derived from its
    source: the same source keeps its watermark from one run to the next."""
    from pydantic import SecretStr

    from aiq_flows.secrets import install_redaction, register_secret
    from aiq_flows.sources.mapping import MappingError, load_mapping
    from blocks.crm import SqlSalesSource
    from blocks.store import StateStore

    install_redaction()
    try:
        mapping_text = (
            Path(args.mapping).read_text(encoding="utf-8") if Path(args.mapping).is_file() else args.mapping
        )
        load_mapping(args.mapping)
    except MappingError as error:
        raise Unusable(str(error)) from None
    register_secret(args.url)
    aiq = _connection(args.aiq_endpoint, args.company, args.api_version)
    store_url = args.store_url or f"sqlite:///{Path.cwd() / 'aiq-store.db'}"
    name = "cli-" + hashlib.sha256(f"{args.url}\n{mapping_text}".encode()).hexdigest()[:12]
    aiq.save(f"{name}-aiq", overwrite=True)
    SqlSalesSource(url=SecretStr(args.url), mapping=mapping_text).save(name, overwrite=True)
    StateStore(url=SecretStr(store_url)).save(f"{name}-store", overwrite=True)

    from flows.nightly_sales_sync import nightly_sales_sync

    state = nightly_sales_sync(
        aiq_connection=f"{name}-aiq",
        crm_database=f"sql-sales-source/{name}",
        state_store=f"{name}-store",
        dry_run=args.dry_run,
        return_state=True,
    )
    if not state.is_completed():
        print(_line({"state": state.name, "message": str(state.message or "")}))
        return EXIT_FAILED
    print(_line(state.result()))
    return EXIT_OK


# --- db upgrade -----------------------------------------------------------------------------------


def db_upgrade(url: str) -> int:
    """Bring a store to this release's schema (back it up first)."""
    from aiq_flows.db import make_engine
    from aiq_flows.store.schema import upgrade

    engine = make_engine(url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    print(_line({"store": engine.url.render_as_string(hide_password=True), "from": before, "to": after}))
    return EXIT_OK


# --- automations -----------------------------------------------------------------------------------


def automations_apply(path: str, channels: list[str], within: list[str]) -> int:
    """The repository's automations onto the Prefect server (PREFECT_API_URL), replaced by name."""
    from aiq_flows.automations import AutomationsError, apply

    try:
        overrides = dict(_pair(c, "--channel") for c in channels)
        waits = {name: float(seconds) for name, seconds in (_pair(w, "--within") for w in within)}
        applied = apply(path, overrides, waits)
    except (AutomationsError, ValueError) as error:
        raise Unusable(str(error)) from None
    for automation in applied:
        told = ", ".join(automation.channels) or "no channel"
        print(f"{'replaced' if automation.replaced else 'created'}: {automation.name} (tells: {told})")
    print(f"applied: {len(applied)} automations")
    return EXIT_OK


def _pair(text: str, option: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise ValueError(f"{option} {text!r}: expected NAME=VALUE")
    return name, value


# --- the command ------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="aiq-flows", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    mapping = commands.add_parser("mapping", help="source mappings").add_subparsers(
        dest="action", required=True
    )
    check = mapping.add_parser("check", help="check a mapping against a database and read sales through it")
    check.add_argument("--mapping", required=True, help="the mapping file (YAML)")
    check.add_argument("--url", required=True, help="the database's SQLAlchemy URL")
    check.add_argument("--limit", type=int, default=20, help="how many sales to read (default 20)")
    check.add_argument("--aiq-endpoint", help="validate against this AIQ too (keys from the environment)")
    check.add_argument("--company", help="the AIQ entity, with --aiq-endpoint")

    sync = commands.add_parser("sync", help="run a sync once").add_subparsers(dest="action", required=True)
    nightly = sync.add_parser("nightly", help="the nightly sales sync, once, in this process")
    nightly.add_argument("--mapping", required=True, help="the mapping file (YAML)")
    nightly.add_argument("--url", required=True, help="the database's SQLAlchemy URL")
    nightly.add_argument("--aiq-endpoint", required=True, help="the AIQ .asmx URL")
    nightly.add_argument("--company", required=True, help="the AIQ entity, e.g. ACME_UK")
    nightly.add_argument("--store-url", help="the store (default: sqlite file aiq-store.db here)")
    nightly.add_argument("--dry-run", action="store_true", help="show the plan, write nothing")
    nightly.add_argument(
        "--api-version", choices=("1.1", "2.0"), help="default: 2.0 when AIQ_CLIENT_ID is set"
    )

    rules = commands.add_parser("automations", help="who is told what").add_subparsers(
        dest="action", required=True
    )
    apply = rules.add_parser("apply", help="create or replace the automations on the Prefect server")
    apply.add_argument("--file", default="automations.yaml", help="default: automations.yaml here")
    apply.add_argument(
        "--channel", action="append", default=[], help="NAME=TYPE/BLOCK, e.g. email=aiq-email-notification/ar"
    )
    apply.add_argument(
        "--within", action="append", default=[], help="AUTOMATION NAME=SECONDS (a proactive wait)"
    )

    db = commands.add_parser("db", help="the store").add_subparsers(dest="action", required=True)
    upgrade = db.add_parser("upgrade", help="bring a store to this release's schema")
    upgrade.add_argument("--url", required=True, help="the store's SQLAlchemy URL")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "mapping":
            return mapping_check(args.mapping, args.url, args.limit, args.aiq_endpoint, args.company)
        if args.command == "sync":
            return sync_nightly(args)
        if args.command == "automations":
            return automations_apply(args.file, args.channel, args.within)
        return db_upgrade(args.url)
    except Unusable as error:
        print(f"aiq-flows: {error}", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
