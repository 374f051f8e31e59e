"""Command line: `python -m service run` starts the processor; `--help` lists subcommands."""

from __future__ import annotations

import argparse
import json
import sys

from service import __version__
from service.adapters.logs import REDACT, configure_logging
from service.core.errors import ConfigError, ServiceError
from service.entry.app import run
from service.entry.event_input import event_mapping
from service.entry.redrive import (
    DEFAULT_MAX_REDRIVES,
    STATUSES,
    RedriveOptions,
    parse_instant,
    redrive,
)
from service.entry.settings import SECRET_FIELDS, Settings, check_files, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Upserts subscription events from Kafka into HubSpot in batches. "
        "Settings come from environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "run",
        help="start the processor (the container's default command)",
        description="Consume KAFKA_INPUT_TOPIC, upsert to HubSpot, publish results; "
        "stops cleanly on SIGTERM.",
    )
    commands.add_parser(
        "check-config",
        help="validate the settings and the event mapping and print them (secrets hidden)",
        description="Read the settings from the environment and the event mapping file, "
        "report the problems one line each, or print the effective settings with secrets "
        "hidden and the mapping in use with every default filled in.",
    )
    redrive = commands.add_parser(
        "redrive",
        help="republish dead letters to the input topic (filters, dry run, loop guard)",
        description="Read KAFKA_DLQ_TOPIC with its own consumer group up to the end offsets "
        "present at start and republish the selected records to KAFKA_INPUT_TOPIC with "
        "their original key, value and headers plus a `redrive.count` header.",
    )
    redrive.add_argument(
        "--category",
        action="append",
        default=[],
        help="only records with this error.category (repeatable)",
    )
    redrive.add_argument(
        "--status", action="append", choices=STATUSES, default=[], help="only failed or invalid"
    )
    redrive.add_argument("--since", help="only dead letters written at or after this ISO time")
    redrive.add_argument("--until", help="only dead letters written before this ISO time")
    redrive.add_argument(
        "--max-redrives",
        type=int,
        default=DEFAULT_MAX_REDRIVES,
        help="skip records already redriven this many times (default %(default)s)",
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="list what would be sent; send and commit nothing"
    )
    redrive.add_argument("--group", help="consumer group (default: KAFKA_GROUP_ID + '-redrive')")
    return parser


def _redrive_options(args: argparse.Namespace) -> RedriveOptions:
    return RedriveOptions(
        categories=frozenset(args.category),
        statuses=frozenset(args.status),
        since=parse_instant(args.since) if args.since else None,
        until=parse_instant(args.until) if args.until else None,
        max_redrives=args.max_redrives,
        dry_run=args.dry_run,
        group=args.group,
    )


def _print_config(settings: Settings) -> None:
    """The effective settings (secrets hidden), then the event mapping in use, if any (read
    first: a mapping with problems prints nothing but them)."""
    mapping = event_mapping(settings)
    for name, value in settings.model_dump(mode="json").items():
        shown = "***" if name in SECRET_FIELDS and value else value
        print(f"{name.upper()}={shown}")
    if mapping is not None:
        source = settings.event_mapping_file or "the contract's event shape"
        print(f"# the event mapping in use (from {source}):")
        print(json.dumps(mapping.described, indent=2, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        check_files(settings)
        if args.command == "check-config":
            _print_config(settings)
            return 0
        configure_logging(settings.log_level.value)
        if args.command == "redrive":
            return redrive(settings, _redrive_options(args))
        return run(settings)
    except ConfigError as exc:
        for line in str(exc).splitlines():  # one line per problem
            print(f"error: {REDACT(line)}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"error: {REDACT(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
