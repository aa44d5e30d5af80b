"""``Patter.call()``: place an outbound call through the running server (API.md A.5).

Its own module because its typed overloads (``wait=True`` returns a :class:`CallResult`, else the call
id) are long; ``Patter`` inherits it and keeps every other method in ``patter.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, overload

from getpatter._patter_checks import serving_state
from getpatter._serving import _resolve_agent

if TYPE_CHECKING:
    from getpatter._serving import Server
    from getpatter.agent import Agent
    from getpatter.call.results import CallResult

Callback = Callable[..., Any]


class OutboundDialing:
    """The ``call()`` method of :class:`~getpatter.Patter`; dials from ``_phone_number`` via ``_server``."""

    _server: Server
    _phone_number: str

    @overload
    async def call(
        self,
        to: str,
        agent: Agent | None = None,
        first_message: str = "",
        from_number: str = "",
        machine_detection: bool = False,
        on_machine_detection: Callback | None = None,
        on_machine: Callback | None = None,
        voicemail_message: str = "",
        ring_timeout: int | None = 25,
        wait: Literal[False] = False,
    ) -> str: ...

    @overload
    async def call(
        self,
        to: str,
        agent: Agent | None = None,
        first_message: str = "",
        from_number: str = "",
        machine_detection: bool = False,
        on_machine_detection: Callback | None = None,
        on_machine: Callback | None = None,
        voicemail_message: str = "",
        ring_timeout: int | None = 25,
        *,
        wait: Literal[True],
    ) -> CallResult: ...

    @overload
    async def call(
        self,
        to: str,
        agent: Agent | None = None,
        first_message: str = "",
        from_number: str = "",
        machine_detection: bool = False,
        on_machine_detection: Callback | None = None,
        on_machine: Callback | None = None,
        voicemail_message: str = "",
        ring_timeout: int | None = 25,
        wait: bool = False,
    ) -> str | CallResult: ...

    async def call(
        self,
        to: str,
        agent: Agent | None = None,
        first_message: str = "",
        from_number: str = "",
        machine_detection: bool = False,
        on_machine_detection: Callback | None = None,
        on_machine: Callback | None = None,
        voicemail_message: str = "",
        ring_timeout: int | None = 25,
        wait: bool = False,
    ) -> str | CallResult:
        """Place an outbound call (API.md A.5) through the running server; returns the call id, or with
        ``wait=True`` the :class:`CallResult` once the call is over.

        ``agent`` defaults to the served agent; ``first_message`` overrides its greeting for this call.
        ``machine_detection=True`` (or a voicemail message, this call's or ``serve()``'s) turns on
        answering-machine detection: ``on_machine_detection`` (alias ``on_machine``) gets the
        :class:`MachineDetectionResult` once; a machine gets the voicemail message then a hang-up.
        """
        from getpatter.outbound import place_call, validate_call_options

        state = await serving_state(self._server)
        options = validate_call_options(
            carrier=state.carrier,
            phone_number=self._phone_number,
            default_voicemail=state.outbound.default_voicemail,
            to=to,
            agent=agent,
            first_message=first_message,
            from_number=from_number,
            machine_detection=machine_detection,
            on_machine_detection=on_machine_detection,
            on_machine=on_machine,
            voicemail_message=voicemail_message,
            ring_timeout=ring_timeout,
            wait=wait,
        )
        if options.agent is not None:
            options = replace(options, agent=_resolve_agent(options.agent, state.runtime.on_message))
        return await place_call(state, options)


__all__ = ["OutboundDialing"]
