"""Tools the model can call during a phone call: ``Tool``/``@tool``, webhook tools, system tools, executor.

Pure building blocks: nothing here knows about calls, carriers or the server. The call layer builds one
:class:`ToolExecutor` per call, offers ``executor.schemas()`` to the model and feeds each tool call to
``executor.execute(name, arguments_json)``.
"""

from __future__ import annotations

from getpatter.tools.executor import ToolExecutor, ToolOutcome, error_payload
from getpatter.tools.schema import function_schema, parse_docstring
from getpatter.tools.ssrf import WebhookBlockedError, check_webhook_url, is_forbidden_address
from getpatter.tools.system import END_CALL, RESERVED_TOOL_NAMES, TRANSFER_CALL, system_tool_schema
from getpatter.tools.tool import Tool, ToolArgumentError, ToolHandler, normalize_tools, tool
from getpatter.tools.webhook import WebhookCaller, WebhookToolError

__all__ = [
    "END_CALL",
    "RESERVED_TOOL_NAMES",
    "TRANSFER_CALL",
    "Tool",
    "ToolArgumentError",
    "ToolExecutor",
    "ToolHandler",
    "ToolOutcome",
    "WebhookBlockedError",
    "WebhookCaller",
    "WebhookToolError",
    "check_webhook_url",
    "error_payload",
    "function_schema",
    "is_forbidden_address",
    "normalize_tools",
    "parse_docstring",
    "system_tool_schema",
    "tool",
]
