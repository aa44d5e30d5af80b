"""The package surface: every public name resolves, and importing getpatter stays light."""

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
