"""Every Python snippet in the docs and the README works (issue 25: the docs cannot rot).

* Executed snippets run offline, each in a fresh interpreter with an empty working directory and fake
  credentials in the environment, so constructors that read keys succeed and nothing real is reachable
  (a proxy on a closed local port catches any HTTP request that would leave the machine).
* Snippets marked ``<!-- snippet: fake-openai -->`` run the same way while a fake OpenAI Chat Completions
  server (``tests/fakes/openai_chat.py``) listens on 127.0.0.1; its ``/v1`` URL is in ``OPENAI_BASE_URL``.
* Compile-only snippets (marked ``<!-- snippet: compile-only -->``: they need a real account) are compiled.
* All snippets, both kinds, are type-checked together in one mypy run against ``src/getpatter``.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs._snippets import ROOT, Snippet, all_snippets
from tests.fakes._patience import PATIENCE
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.server import running

SNIPPETS = all_snippets()
EXECUTED = [s for s in SNIPPETS if not s.mode]
WITH_FAKE_OPENAI = [s for s in SNIPPETS if s.mode == "fake-openai"]
FAKE_REPLY = "We are open nine to five, Monday to Friday."
COMPILE_ONLY = [s for s in SNIPPETS if s.compile_only]

FAKE_CREDENTIALS = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "docs-test-token",
    "TELNYX_API_KEY": "KEYdocs",
    "TELNYX_CONNECTION_ID": "docs-connection",
    "OPENAI_API_KEY": "sk-docs",
    "DEEPGRAM_API_KEY": "docs",
    "ELEVENLABS_API_KEY": "docs",
    "ELEVENLABS_AGENT_ID": "docs-agent",
    "ANTHROPIC_API_KEY": "docs",
    "GROQ_API_KEY": "docs",
    "CEREBRAS_API_KEY": "docs",
    "GEMINI_API_KEY": "docs",
    "ASSEMBLYAI_API_KEY": "docs",
    "CARTESIA_API_KEY": "docs",
    "SONIOX_API_KEY": "docs",
    "SPEECHMATICS_API_KEY": "docs",
    "RIME_API_KEY": "docs",
    "LMNT_API_KEY": "docs",
}
# Anything that tries the network goes to a closed local port and fails at once.
DEAD_PROXY = "http://127.0.0.1:9"


def snippet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATTER_", "TWILIO_", "TELNYX_"))}
    env.update(FAKE_CREDENTIALS)
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        HF_HUB_OFFLINE="1",
        ORT_DISABLE_TELEMETRY="1",
        HTTP_PROXY=DEAD_PROXY,
        HTTPS_PROXY=DEAD_PROXY,
        ALL_PROXY=DEAD_PROXY,
        NO_PROXY="127.0.0.1,localhost",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("PATTER_TEST_PATIENCE", None)
    return env


@pytest.mark.parametrize("snippet", EXECUTED, ids=[s.id for s in EXECUTED])
def test_snippet_runs_offline(snippet: Snippet, tmp_path: Path) -> None:
    script = tmp_path / f"{snippet.module_name}.py"
    script.write_text(snippet.code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=snippet_env(),
        capture_output=True,
        text=True,
        timeout=60 * PATIENCE,
        check=False,
    )
    assert done.returncode == 0, (
        f"the snippet at {snippet.id} failed (exit {done.returncode}):\n"
        f"{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
    )


@pytest.mark.parametrize("snippet", WITH_FAKE_OPENAI, ids=[s.id for s in WITH_FAKE_OPENAI])
async def test_snippet_runs_against_the_fake_openai(snippet: Snippet, tmp_path: Path) -> None:
    fake = FakeOpenAIChat(api_key=FAKE_CREDENTIALS["OPENAI_API_KEY"], fallback_text=FAKE_REPLY)
    script = tmp_path / f"{snippet.module_name}.py"
    script.write_text(snippet.code, encoding="utf-8")
    async with running(fake.app) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            cwd=tmp_path,
            env={**snippet_env(), "OPENAI_BASE_URL": server.http_url + "/v1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60 * PATIENCE)
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, f"the snippet at {snippet.id} failed:\n{stderr[-4000:]}\n{stdout[-2000:]}"
    assert fake.requests, f"the snippet at {snippet.id} never called the (fake) OpenAI API"
    assert FAKE_REPLY in " ".join(stdout.split()), f"the model's reply is not in the output:\n{stdout}"


@pytest.mark.parametrize("snippet", COMPILE_ONLY, ids=[s.id for s in COMPILE_ONLY])
def test_compile_only_snippet_compiles(snippet: Snippet) -> None:
    module = ast.parse(snippet.code, snippet.id)  # a SyntaxError fails the test
    assert module.body, f"{snippet.id} is empty"
    compile(module, snippet.id, "exec")


def test_snippets_type_check(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        if os.environ.get("CI"):
            pytest.fail(
                "mypy is not installed, and CI=1 needs the snippets type-checked: install the dev extra"
            )
        pytest.skip("mypy is not installed (dev extra); the snippets are not type-checked")
    where: dict[str, str] = {}
    for snippet in SNIPPETS:
        (tmp_path / f"{snippet.module_name}.py").write_text(snippet.code, encoding="utf-8")
        where[f"{snippet.module_name}.py"] = snippet.id
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\npython_version = 3.11\ncheck_untyped_defs = True\nfollow_imports = silent\n"
        "ignore_missing_imports = True\nwarn_unused_ignores = True\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "docs-snippets"),
            *sorted(where),
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=300 * PATIENCE,
        check=False,
    )
    report = done.stdout
    for name, snippet_id in where.items():
        report = report.replace(name, f"{snippet_id} ({name})")
    assert done.returncode == 0, f"mypy found errors in doc snippets:\n{report}\n{done.stderr[-2000:]}"
