"""Caller audio in a pipeline call: each carrier frame to the STT stream and to the SDK's own VAD.

The hot path of a pipeline call, once per 20 ms frame. The STT and TTS are first asked for the
carrier's own format (``for_wire``; carrier-native by default), so the frame goes to the STT untouched.
The SDK's VAD runs at the carrier's rate: on a mu-law carrier it scores the codes themselves (a squares
table, :meth:`~getpatter.audio.vad.VoiceActivity.feed_mulaw`), elsewhere the decoded frame; no
resampling. Only an ``audio_filter``, STT hooks or a VAD of another rate bring back the PCM16 16 kHz
path (they are defined on it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from getpatter.audio.convert import FormatConverter
from getpatter.audio.filters import filter_for_call
from getpatter.audio.format import MULAW_8K, PCM16_16K, AudioFormat
from getpatter.audio.vad import VAD, EnergyVAD, VadEvent, VoiceActivity
from getpatter.call.hooks import HookRunner
from getpatter.call.stt_link import ResilientSTTStream

log = logging.getLogger("getpatter.pipeline")


class CallerAudio:
    """Routes caller frames for one call; ``stream_ms`` counts the audio taken so far."""

    def __init__(
        self,
        *,
        call_id: str,
        wire_format: AudioFormat,
        stt_format: AudioFormat,
        vad: VAD | None,
        audio_filter: Callable[[bytes], bytes] | None,
        hooks: HookRunner | None,
    ) -> None:
        self._call_id = call_id
        self._hooks = hooks
        self._filter = None if audio_filter is None else filter_for_call(audio_filter)
        # The lean path: no filter and no STT hooks, which are both defined on PCM16 16 kHz.
        self._lean = self._filter is None and hooks is None
        if vad is None:
            lean_rate = wire_format.sample_rate if wire_format.sample_rate in (8000, 16000) else 16000
            vad = EnergyVAD(sample_rate=lean_rate if self._lean else 16000)
        self.vad = VoiceActivity(vad)
        vad_pcm = AudioFormat("pcm16", vad.sample_rate if self._lean else 16000)
        self._pcm_bytes_per_ms = vad_pcm.sample_rate / 500.0
        self._to_pcm = FormatConverter(wire_format, vad_pcm)
        self._stt_passthrough = stt_format == wire_format
        # The common phone path (mu-law in, mu-law to the STT): the VAD scores the codes themselves.
        self._vad_on_codes = (
            self._lean and self._stt_passthrough and wire_format == MULAW_8K and vad.sample_rate == 8000
        )
        self._to_stt: FormatConverter | None
        if self._lean:  # the STT gets the wire bytes, the VAD's PCM, or its own conversion of the wire
            same = self._stt_passthrough or stt_format == vad_pcm
            self._to_stt = None if same else FormatConverter(wire_format, stt_format)
        else:
            self._to_stt = None if stt_format == PCM16_16K else FormatConverter(PCM16_16K, stt_format)
        self.stream_ms = 0.0

    async def take(self, wire: bytes, stream: ResilientSTTStream | None) -> list[VadEvent]:
        """Send ``wire`` (one carrier frame) on to ``stream`` and return the VAD events it caused."""
        vad = self.vad
        if self._vad_on_codes:
            self.stream_ms += len(wire) / 8.0  # mu-law 8 kHz: 8 bytes a millisecond
            if stream is not None:
                stream.caller_speaking(vad.speaking)
                await stream.send(wire)
            return vad.feed_mulaw(wire)
        pcm = self._to_pcm.process(wire)  # PCM16 at the VAD's rate (lean: the wire's, decode only)
        if self._lean:
            self.stream_ms += len(pcm) / self._pcm_bytes_per_ms
            if stream is not None:
                stream.caller_speaking(vad.speaking)
                if self._stt_passthrough:
                    await stream.send(wire)  # carrier-native STT: every frame, bytes untouched
                elif self._to_stt is None:
                    await stream.send(pcm)
                elif out := self._to_stt.process(wire):
                    await stream.send(out)
            return vad.feed(pcm)
        if self._filter is not None and pcm:
            pcm = self._filtered(pcm)
        self.stream_ms += len(pcm) / self._pcm_bytes_per_ms
        if stream is not None and pcm:
            stream.caller_speaking(vad.speaking)
            hooked = await self._hooks.before_send_to_stt(pcm) if self._hooks is not None else pcm
            if hooked:
                await stream.send(hooked if self._to_stt is None else self._to_stt.process(hooked))
        return vad.feed(pcm)

    def _filtered(self, pcm: bytes) -> bytes:
        """The agent's ``audio_filter``; one that raises is logged and bypassed for the rest of the call."""
        assert self._filter is not None
        try:
            return self._filter(pcm)
        except Exception:
            log.exception("call %s: audio_filter raised; passing caller audio unfiltered", self._call_id)
            self._filter = None
            return pcm
