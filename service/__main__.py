"""Command line: `python -m service run` starts the processor; `--help` lists subcommands."""

from __future__ import annotations

import argparse
import sys

from service import __version__
from service.app import run
from service.config import SECRET_FIELDS, load_settings
from service.errors import ConfigError, ServiceError
from service.logs import configure_logging


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
        help="validate the settings and print them (secrets hidden), then exit",
        description="Read the settings from the environment, report the first problem "
        "in one line, or print the effective settings with secrets hidden.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "check-config":
            for name, value in settings.model_dump(mode="json").items():
                shown = "***" if name in SECRET_FIELDS and value else value
                print(f"{name.upper()}={shown}")
            return 0
        configure_logging(settings.log_level.value)
        return run(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
