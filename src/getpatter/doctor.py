"""``patter doctor``: check this machine's setup and say exactly what to fix.

Checks only *presence* of secrets, never their values: the report is meant to be pasted into an issue.
A check is ``ok``, ``warn`` (works, but a feature is unavailable) or ``fail`` (``serve()`` would not
start as configured); the exit code is 1 when anything fails.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.markup import escape

from getpatter.carriers import CREDENTIAL_ENV
from getpatter.settings import DEFAULT_BIND_HOST

Status = Literal["ok", "warn", "fail"]

#: provider -> the env vars that hold its key (any one is enough).
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "OpenAI": ("OPENAI_API_KEY",),
    "Deepgram": ("DEEPGRAM_API_KEY",),
    "ElevenLabs": ("ELEVENLABS_API_KEY",),
    "Anthropic": ("ANTHROPIC_API_KEY",),
    "Groq": ("GROQ_API_KEY",),
    "Cerebras": ("CEREBRAS_API_KEY",),
    "Google": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "Cartesia": ("CARTESIA_API_KEY",),
    "AssemblyAI": ("ASSEMBLYAI_API_KEY",),
    "Soniox": ("SONIOX_API_KEY",),
    "Speechmatics": ("SPEECHMATICS_API_KEY",),
    "Rime": ("RIME_API_KEY",),
    "LMNT": ("LMNT_API_KEY",),
}
CARRIER_KEYS = CREDENTIAL_ENV
LOCAL_MODULES = (("faster_whisper", "faster-whisper"), ("py_nanotts", "py-nanotts"))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _set(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())


def check_carriers(env: Mapping[str, str]) -> Check:
    complete, partial = [], []
    for carrier, names in CARRIER_KEYS.items():
        present = [n for n in names if _set(env, n)]
        if len(present) == len(names):
            complete.append(carrier)
        elif present:
            missing = ", ".join(n for n in names if n not in present)
            partial.append(f"{carrier} (missing {missing})")
    if partial:
        return Check(
            "carrier credentials",
            "fail",
            "incomplete: " + "; ".join(partial),
            "set the missing variable(s), or unset the others",
        )
    if complete:
        return Check("carrier credentials", "ok", "set: " + ", ".join(complete))
    return Check(
        "carrier credentials",
        "warn",
        "no Twilio or Telnyx credentials (fine for `patter demo` and phone.test())",
        "for real calls set TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN, or TELNYX_API_KEY + TELNYX_CONNECTION_ID",
    )


def check_provider_keys(env: Mapping[str, str]) -> Check:
    found = [p for p, names in PROVIDER_KEYS.items() if any(_set(env, n) for n in names)]
    if found:
        return Check("provider keys", "ok", "set: " + ", ".join(found))
    return Check(
        "provider keys",
        "warn",
        "no AI provider key set (the offline local providers still work)",
        "set e.g. OPENAI_API_KEY, or DEEPGRAM_API_KEY + ELEVENLABS_API_KEY for a pipeline",
    )


def check_bind_host(env: Mapping[str, str]) -> Check:
    raw = env.get("PATTER_BIND_HOST", "").strip()
    host = raw or DEFAULT_BIND_HOST
    if raw and raw != "localhost":
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            return Check(
                "PATTER_BIND_HOST",
                "fail",
                f"{raw!r} is not an IP address",
                "use 127.0.0.1 (default) or 0.0.0.0 in containers",
            )
    public = host in ("0.0.0.0", "::")
    return Check(
        "PATTER_BIND_HOST",
        "warn" if public else "ok",
        f"{host}" + (" (reachable from other machines)" if public else ""),
        "protect the dashboard with serve(dashboard_token=...)" if public else "",
    )


def check_port(env: Mapping[str, str], port: int) -> Check:
    host = env.get("PATTER_BIND_HOST", "").strip() or DEFAULT_BIND_HOST
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return Check(
                f"port {port}",
                "fail",
                f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                "stop what uses it, or serve(port=...) / doctor --port with another port",
            )
    return Check(f"port {port}", "ok", f"{host}:{port} is free")


def check_cloudflared(which: Callable[[str], str | None]) -> Check:
    path = which("cloudflared")
    if path:
        return Check("cloudflared", "ok", path)
    return Check(
        "cloudflared",
        "warn",
        "not on PATH (only needed for tunnel=True)",
        "brew install cloudflared | apt-get install cloudflared | winget install Cloudflare.cloudflared",
    )


def check_local_extra(find: Callable[[str], object]) -> Check:
    missing = [package for module, package in LOCAL_MODULES if find(module) is None]
    if not missing:
        return Check("local extra", "ok", "offline STT/TTS importable (patter demo works)")
    return Check(
        "local extra",
        "warn",
        "missing " + ", ".join(missing),
        "pip install 'getpatter[local]' for the offline demo and local providers",
    )


def check_onnx_telemetry(env: Mapping[str, str]) -> Check:
    value = env.get("ORT_DISABLE_TELEMETRY")
    if value is None:
        return Check(
            "onnxruntime telemetry",
            "ok",
            "ORT_DISABLE_TELEMETRY unset; getpatter.local sets it to 1 before onnxruntime loads",
            "export ORT_DISABLE_TELEMETRY=1 if other code imports onnxruntime first",
        )
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return Check("onnxruntime telemetry", "ok", "disabled (ORT_DISABLE_TELEMETRY=1)")
    return Check(
        "onnxruntime telemetry",
        "warn",
        f"ORT_DISABLE_TELEMETRY={value!r}: onnxruntime may send usage telemetry",
        "export ORT_DISABLE_TELEMETRY=1",
    )


def check_python() -> Check:
    """Informational: the package itself requires Python >= 3.11, so an older one never gets here."""
    return Check("python", "ok", f"{'.'.join(map(str, sys.version_info[:3]))} ({sys.executable})")


def run_checks(
    env: Mapping[str, str] | None = None,
    *,
    port: int = 8000,
    which: Callable[[str], str | None] = shutil.which,
    find_module: Callable[[str], object] = importlib.util.find_spec,
) -> list[Check]:
    environ: Mapping[str, str] = os.environ if env is None else env
    return [
        check_python(),
        check_carriers(environ),
        check_provider_keys(environ),
        check_bind_host(environ),
        check_port(environ, port),
        check_cloudflared(which),
        check_local_extra(find_module),
        check_onnx_telemetry(environ),
    ]


_MARK = {"ok": "[green]  ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


def report(console: Console, checks: list[Check]) -> int:
    """Print one line per check (and the fix under anything not ok); return 1 if any check failed."""
    console.print("[bold]getpatter doctor[/]")
    for check in checks:
        console.print(f"{_MARK[check.status]}  [bold]{escape(check.name)}[/]: {escape(check.detail)}")
        if check.status != "ok" and check.fix:
            console.print(f"        [dim]fix:[/] {escape(check.fix)}")
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        console.print(f"[bold red]{len(failed)} problem(s) to fix:[/] " + ", ".join(failed))
        return 1
    console.print("[green]No blocking problems.[/]")
    return 0


__all__ = ["Check", "report", "run_checks"]
