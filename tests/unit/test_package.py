"""The package surface: every public name resolves, and importing getpatter stays light."""

import pathlib
import subprocess
import sys

import getpatter


def test_every_lazy_public_name_resolves() -> None:
    for name in getpatter._LAZY:
        assert getattr(getpatter, name) is not None, name
    assert set(getpatter._LAZY) <= set(getpatter.__all__)


def test_documented_core_names_import() -> None:
    from getpatter import Patter, PatterConfigError, Telnyx, Twilio

    assert issubclass(PatterConfigError, ValueError)
    assert Twilio.kind == "twilio" and Telnyx.kind == "telnyx" and callable(Patter)


def test_import_does_not_load_the_server_or_network_stacks() -> None:
    heavy = "('fastapi', 'uvicorn', 'httpx', 'websockets', 'numpy', 'soxr')"
    code = f"import sys, getpatter; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_a_twilio_server_app_loads_neither_ed25519_nor_the_httpx_cli() -> None:
    """Idle RSS (issue 11): cryptography is for Telnyx signatures only; httpx's CLI drags in rich/pygments."""
    code = """
import sys
from getpatter import Patter, Twilio
twilio = Twilio("AC" + "0" * 32, "x" * 32)
phone = Patter(carrier=twilio, phone_number="+15550002222", webhook_url="a.example")
from getpatter.engines.openai_realtime import OpenAIRealtime
phone.asgi_app(phone.agent("p", engine=OpenAIRealtime(api_key="sk-test"), first_message="hi"))
import httpx
assert "fastapi" in sys.modules and "getpatter.carriers.twilio.routes" in sys.modules
heavy = ("cryptography", "pygments", "getpatter.carriers.telnyx.routes")
print(",".join(m for m in heavy if m in sys.modules))
"""
    # An empty environment (no carrier or vendor keys), but the same getpatter as this test imports.
    env = {"PATH": "", "PYTHONPATH": str(pathlib.Path(getpatter.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert out == ""
