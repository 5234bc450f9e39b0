"""``aiq-sandbox``: start a local AccountsIQ, or print the credentials of a seeded database."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from aiq_flows.sandbox.server import make_server, open_ledger


def _serve(args: argparse.Namespace) -> int:
    server = make_server(args.host, args.port, args.db, token_ttl_seconds=args.token_ttl, fresh=not args.keep)
    print(f"aiq-sandbox listening on {server.url}", flush=True)
    try:
        server.serve()  # until SIGINT or SIGTERM; calls in flight are finished first
    finally:
        server.socket.close()
        server.ledger.close()
    return 0


def _credentials(args: argparse.Namespace) -> int:
    ledger = open_ledger(args.db, fresh=False)
    try:
        json.dump(ledger.credentials(), sys.stdout, indent=2)
        print()
    finally:
        ledger.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiq-sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="seed a fresh database and serve SOAP over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--db", required=True, help="SQLite file for the sandbox state")
    serve.add_argument(
        "--token-ttl", type=float, default=1200.0, help="token lifetime in seconds (AccountsIQ: 20 minutes)"
    )
    serve.add_argument(
        "--keep", action="store_true", help="keep an existing database instead of seeding a fresh one"
    )
    serve.set_defaults(handler=_serve)
    creds = commands.add_parser("credentials", help="print seeded entities and keys as JSON")
    creds.add_argument("--db", required=True)
    creds.set_defaults(handler=_credentials)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
