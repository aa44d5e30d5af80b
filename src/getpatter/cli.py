"""The ``patter`` command (also ``getpatter``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from getpatter._version import __version__
from getpatter.cli_commands import COMMAND_NAMES, add_commands, run_command

DEMO_DESCRIPTION = (
    "Place a simulated phone call to a sample dental-clinic agent, entirely on this machine: offline "
    "speech recognition, a scripted assistant and offline speech synthesis, with the live dashboard. "
    "No API keys, phone number or internet needed. Needs the local extra: pip install 'getpatter[local]'."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patter",
        description="getpatter: give your AI agent a phone number.",
        epilog=(
            "New here? Run 'patter demo' for a simulated call, then 'patter doctor' to check your setup. "
            "'patter COMMAND --help' explains each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"getpatter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    demo = sub.add_parser(
        "demo",
        help="a whole phone call on this machine, no keys and no phone needed",
        description=DEMO_DESCRIPTION,
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the server (and dashboard, with its 'Call this agent' button) up after the call",
    )
    demo.add_argument(
        "--browser",
        dest="softphone",
        action="store_true",
        help="no simulated call: talk to the agent yourself from the dashboard in your browser",
    )
    demo.add_argument("--save-audio", type=Path, metavar="FILE", help="write the call as a stereo WAV")
    demo.add_argument("--no-log", action="store_true", help="do not write the call log to disk")
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command in COMMAND_NAMES:
        return run_command(args)
    _parser().print_help()
    return 0


def _demo_log_root(args: argparse.Namespace) -> bool | str:
    """The demo keeps its call log (PATTER_LOG_DIR if set, else the platform data dir) unless --no-log."""
    import os

    if args.no_log:
        return False
    return os.environ.get("PATTER_LOG_DIR") or True


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from getpatter.demo import run_demo

    console = Console()
    try:
        result = asyncio.run(
            run_demo(
                console,
                save_audio=args.save_audio,
                persist=_demo_log_root(args),
                keep=args.keep,
                softphone=args.softphone,
            )
        )
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI reports, it does not dump a traceback at a newcomer
        console.print(f"[bold red]demo failed:[/] {escape(str(exc))}")  # keeps 'getpatter[local]' intact
        return 1
    return 0 if result.transcript or args.softphone else 1


if __name__ == "__main__":
    sys.exit(main())
