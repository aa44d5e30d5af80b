"""The ``patter`` sub-commands beyond ``demo``: ``doctor``, ``logs``, ``call``, ``dashboard``.

``cli.py`` owns the top-level parser; :func:`add_commands` adds these, :func:`run_command` runs one and
returns the process exit code (0 ok, 1 the command failed, 2 bad arguments). Output goes through rich
to the current ``sys.stdout``, so ``main([...])`` can be captured in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from getpatter.errors import PatterConfigError

OUTBOUND_PENDING = (
    "outbound calls are not available in this build yet: phone.call(...) lands with issue 7 (outbound "
    "calls). Until then, call your agent's number, or try `patter demo` for a simulated call."
)


def add_commands(sub: Any) -> None:
    """Register the sub-commands on ``parser.add_subparsers(...)``."""
    doctor = sub.add_parser(
        "doctor",
        help="check keys, cloudflared, bind host, port and the local extra",
        description="Check this machine's setup for getpatter and say what to fix (never prints secrets).",
    )
    doctor.add_argument("--port", type=int, default=8000, help="port serve() will use (default 8000)")

    logs = sub.add_parser(
        "logs",
        help="list persisted calls, or show one",
        description="List calls persisted under the log root (calls/YYYY/MM/DD/<id>/), or show one call.",
    )
    logs.add_argument("call_id", nargs="?", help="show this call (a unique prefix is enough)")
    logs.add_argument("--root", type=Path, help="log root (default: PATTER_LOG_DIR, else the platform dir)")
    logs.add_argument("--limit", type=int, default=20, help="how many recent calls to list (default 20)")

    call = sub.add_parser(
        "call",
        help="place an outbound call with your agent",
        description=(
            "Start the server, place an outbound call, wait until it ends and print how it went. --agent "
            "names a factory 'module:function' (or 'path/to/file.py:function') returning (Patter, Agent), "
            "like the examples' build()."
        ),
    )
    call.add_argument("to", help="the number to call, E.164 (+15551234567)")
    call.add_argument(
        "--agent", required=True, metavar="MODULE:FACTORY", help="factory returning (phone, agent)"
    )
    call.add_argument("--from", dest="from_number", default="", help="caller id (default: the Patter number)")
    call.add_argument("--first-message", default="", help="greeting for this call")
    call.add_argument("--port", type=int, default=8000, help="local server port (default 8000)")

    dashboard = sub.add_parser(
        "dashboard",
        help="run the standalone dashboard",
        description="Run the standalone metrics dashboard on 127.0.0.1.",
    )
    dashboard.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    dashboard.add_argument("--token", default="", help="require this token (Bearer or ?token=)")
    dashboard.add_argument("--log-dir", default="", help="show the calls persisted under this directory")


COMMAND_NAMES = frozenset({"doctor", "logs", "call", "dashboard"})


def run_command(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    handlers: dict[str, Callable[[argparse.Namespace, Console], int]] = {
        "doctor": _doctor,
        "logs": _logs,
        "call": _call,
        "dashboard": _dashboard,
    }
    try:
        return handlers[args.command](args, console)
    except KeyboardInterrupt:
        return 130


# -- doctor ------------------------------------------------------------------------------------------
def _doctor(args: argparse.Namespace, console: Console) -> int:
    from getpatter.doctor import report, run_checks

    return report(console, run_checks(port=args.port))


# -- logs --------------------------------------------------------------------------------------------
def _log_root(explicit: Path | None) -> Path:
    from getpatter.persist_root import resolve_log_root

    if explicit is not None:
        return explicit.expanduser()
    root = resolve_log_root(None) or resolve_log_root(True)
    assert root is not None
    return root


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """JSONL rows that parse as objects, and how many lines did not."""
    rows: list[dict[str, Any]] = []
    bad = 0
    try:
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return rows, 0
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


def _call_dirs(root: Path) -> list[tuple[Path, dict[str, Any] | None]]:
    from getpatter.dashboard.persistence import iter_call_dirs

    found = [(d, _read_json(d / "metadata.json")) for d in iter_call_dirs(root)]
    # Newest first: date dirs, then the recorded start time within a day.
    return sorted(
        found, key=lambda item: (item[0].parent, str((item[1] or {}).get("started_at", ""))), reverse=True
    )


def _logs(args: argparse.Namespace, console: Console) -> int:
    root = _log_root(args.root)
    calls = _call_dirs(root)
    if not calls:
        console.print(f"No persisted calls under {escape(str(root))}.")
        console.print("Turn logging on with Patter(persist=True) or PATTER_LOG_DIR=auto (or a path).")
        return 0
    if args.call_id:
        return _show_call(console, args.call_id, calls)
    table = Table(title=f"calls under {root}")
    for column in ("started (UTC)", "call id", "dir", "from", "to", "status", "duration", "turns", "cost $"):
        table.add_column(column)
    for path, meta in calls[: max(args.limit, 1)]:
        if meta is None:
            table.add_row("?", escape(path.name), "", "", "", "[red]unreadable metadata[/]", "", "", "")
            continue
        table.add_row(*(escape(v) for v in _summary_cells(meta, path)))
    console.print(table)
    if len(calls) > args.limit:
        console.print(f"[dim]{len(calls) - args.limit} older call(s) not shown (--limit).[/]")
    return 0


def _summary_cells(meta: dict[str, Any], path: Path) -> list[str]:
    duration = meta.get("duration_ms")
    cost = meta.get("cost")
    total = cost.get("total") if isinstance(cost, dict) else None
    return [
        str(meta.get("started_at") or "?")[:19].replace("T", " "),
        str(meta.get("call_id") or path.name),
        str(meta.get("direction") or ""),
        str(meta.get("caller") or ""),
        str(meta.get("callee") or ""),
        str(meta.get("status") or ""),
        f"{float(duration) / 1000:.1f} s" if isinstance(duration, int | float) else "",
        str(meta.get("turns") if meta.get("turns") is not None else ""),
        f"{float(total):.4f}" if isinstance(total, int | float) else "",
    ]


def _show_call(console: Console, wanted: str, calls: list[tuple[Path, dict[str, Any] | None]]) -> int:
    matches = [(p, m) for p, m in calls if p.name == wanted or str((m or {}).get("call_id", "")) == wanted]
    if not matches:
        matches = [(p, m) for p, m in calls if p.name.startswith(wanted)]
    if not matches:
        console.print(f"[red]No call {escape(wanted)!s}[/] (run `patter logs` to list them).")
        return 1
    if len(matches) > 1:
        console.print(f"[red]{escape(wanted)} matches {len(matches)} calls;[/] give more of the id.")
        return 1
    path, meta = matches[0]
    console.print(f"[bold]Call {escape(path.name)}[/]  [dim]{escape(str(path))}[/]")
    if meta is None:
        console.print("[red]metadata.json is missing or not valid JSON.[/]")
    else:
        for key in ("started_at", "ended_at", "direction", "caller", "callee", "telephony_provider",
                    "provider_mode", "status", "error"):  # fmt: skip
            if meta.get(key) not in (None, ""):
                console.print(f"  {key}: {escape(str(meta[key]))}")
        cells = _summary_cells(meta, path)
        console.print(f"  duration: {cells[6] or '?'}  turns: {cells[7] or '?'}  cost: ${cells[8] or '?'}")
    rows, bad = _read_rows(path / "transcript.jsonl")
    console.print("[bold]Transcript[/]" if rows else "[dim]No transcript rows.[/]")
    for row in rows:
        for who, key in (("Caller", "user_text"), ("Agent ", "agent_text")):
            text = row.get(key)
            if isinstance(text, str) and text:
                console.print(f"  [cyan]{who}[/] {escape(text)}")
    events, bad_events = _read_rows(path / "events.jsonl")
    for event in events:
        if event.get("type") in ("tool_call", "tool_result", "error"):
            console.print(
                f"  [magenta]{escape(str(event.get('type')))}[/] {escape(json.dumps(event.get('data')))}"
            )
    if bad or bad_events:
        console.print(f"[yellow]{bad + bad_events} unreadable line(s) skipped.[/]")
    return 0


# -- call --------------------------------------------------------------------------------------------
def load_factory(spec: str) -> Callable[[], Any]:
    """``module:attr`` or ``path/to/file.py:attr`` -> the attribute (must be callable)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise PatterConfigError(f"--agent {spec!r} must look like 'module:function' or 'file.py:function'")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise PatterConfigError(f"--agent: no file {module_name!r}")
        loaded = importlib.util.spec_from_file_location(f"patter_agent_{path.stem}", path)
        if loaded is None or loaded.loader is None:
            raise PatterConfigError(f"--agent: cannot import {module_name!r}")
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PatterConfigError(f"--agent: cannot import module {module_name!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise PatterConfigError(f"--agent: {module_name!r} has no function {attr!r}")
    return factory  # type: ignore[no-any-return]


def _call(args: argparse.Namespace, console: Console) -> int:
    from getpatter.agent import Agent
    from getpatter.patter import Patter
    from getpatter.validation import validate_e164

    try:
        to = validate_e164(args.to.strip(), "to")
        built = load_factory(args.agent)()
        if not (isinstance(built, tuple) and len(built) == 2):
            raise PatterConfigError("--agent factory must return (phone, agent), like the examples' build()")
        phone, agent = built
        if not isinstance(phone, Patter) or not isinstance(agent, Agent):
            raise PatterConfigError("--agent factory must return (Patter, Agent)")
    except (PatterConfigError, ValueError, TypeError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    place = getattr(phone, "call", None)
    if not callable(place):
        console.print(f"[yellow]{OUTBOUND_PENDING}[/]")
        return 1
    return asyncio.run(_serve_and_call(console, phone, agent, place, to, args))


async def _serve_and_call(
    console: Console, phone: Any, agent: Any, place: Callable[..., Any], to: str, args: argparse.Namespace
) -> int:
    serving = asyncio.create_task(phone.serve(agent, port=args.port))
    try:
        while True:  # serve() creates its runner at once; wait for it, then for the socket (and tunnel)
            try:
                await asyncio.wait_for(asyncio.shield(phone.ready), 30)
                host = await asyncio.wait_for(asyncio.shield(phone.tunnel_ready), 60)
                break
            except PatterConfigError:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.02)
        console.print(f"Serving for https://{escape(host)}; calling {to}...")
        result = await place(
            to, agent=agent, first_message=args.first_message, from_number=args.from_number, wait=True
        )
        outcome = getattr(result, "outcome", "")
        duration = getattr(result, "duration_seconds", None)
        console.print(
            f"Call {escape(str(getattr(result, 'call_id', '')))}: [bold]{escape(str(outcome))}[/] "
            f"({escape(str(getattr(result, 'status', '')))}"
            + (f", {duration:.1f} s)" if isinstance(duration, int | float) else ")")
        )
        for line in getattr(result, "transcript", ()) or ():
            console.print(f"  {escape(str(line.get('role')))}: {escape(str(line.get('text')))}")
        return 0 if outcome in ("answered", "voicemail") else 1
    except Exception as exc:
        console.print(f"[bold red]call failed:[/] {escape(str(exc))}")
        return 1
    finally:
        await phone.disconnect()
        if not serving.done():
            serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


# -- dashboard ---------------------------------------------------------------------------------------
def _dashboard(args: argparse.Namespace, console: Console) -> int:
    """The standalone dashboard: the same UI over a log directory, fed live by SDK processes (ingest)."""
    import os

    from getpatter.server.dashboard_process import run_dashboard

    log_dir = args.log_dir or os.environ.get("PATTER_LOG_DIR") or None
    try:
        run_dashboard(args.port, token=args.token, log_dir=log_dir)
    except KeyboardInterrupt:
        return 0
    return 0


__all__ = ["COMMAND_NAMES", "add_commands", "load_factory", "run_command"]
