"""`python -m gateway keys create|list|revoke`: API keys in the job database that SDG_DATABASE_URL
(or SDG_OUTPUT_DIR's SQLite file) names. A running gateway sees a new or revoked key at once."""

from __future__ import annotations

import argparse
import json
import sys

from gateway import db
from gateway.jobs import utc_now
from gateway.keys import KeyLimits, KeyRing
from gateway.settings import GatewaySettings


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m gateway keys", description="Manage the gateway's API keys.")
    commands = cli.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print its secret, once")
    create.add_argument("--name", required=True, help="who or what the key is for: 1-48 letters, digits, _ . -")
    for field in KeyLimits.model_fields:
        create.add_argument(f"--{field.replace('_', '-')}", type=int, dest=field, help=f"its own {field}, instead of SDG_KEY_{field.upper()}")
    commands.add_parser("list", help="the keys, without their secrets")
    revoke = commands.add_parser("revoke", help="delete a key from the database")
    revoke.add_argument("key", help="its key_id or name")
    return cli


def main(argv: list[str], settings: GatewaySettings) -> int:
    args = parser().parse_args(argv)
    engine = db.open_database(settings.database_url, settings.output_dir)
    keys = KeyRing(engine, settings.api_keys)
    try:
        if args.command == "create":
            limits = KeyLimits.model_validate({field: getattr(args, field) for field in KeyLimits.model_fields})
            key, secret = keys.create(args.name, limits, utc_now())
            print(f"created key {key.key_id} ({key.name}); its secret, shown only now:", file=sys.stderr)
            print(secret)
        elif args.command == "list":
            for key in keys.configured() + keys.stored():
                where = "SDG_API_KEYS" if key.configured else key.created_at
                print(f"{key.key_id}\t{key.name}\t{where}\t{json.dumps(key.limits.model_dump(exclude_none=True))}")
        else:
            key = keys.revoke(args.key)
            print(f"revoked key {key.key_id} ({key.name})", file=sys.stderr)
    except (ValueError, LookupError) as err:  # pydantic's ValidationError is a ValueError too
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0
