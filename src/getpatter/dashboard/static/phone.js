// getpatter softphone: the dashboard's "Call this agent" button (main thread).
//
// One call at a time: microphone (with permission handling), an AudioWorklet for capture and playback
// (phone-worklet.js), one WebSocket to the server's in-page carrier. The transcript and per-turn
// latency of this call come from the dashboard's own live feed (patter:* events of index.html).
// Everything shown is set as text, never as markup.
(function () {
  "use strict";
  const D = window.patterDashboard;
  if (!D) return;
  const $ = (id) => document.getElementById(id);
  const panel = $("phone");
  if (!panel) return;
  const call = { ws: null, ctx: null, node: null, stream: null, id: "", muted: false, ending: false };
  const pending = new Map(); // live events by call id, for events that race the "started" reply
  // What the call did so far, published as data-* attributes of the panel (tests and curious users).
  const stats = { framesSent: 0, mediaReceived: 0, samplesPlayed: 0, clears: 0, marks: 0, level: 0, loudest: 0 };

  function show(id, on) { $(id).classList.toggle("hidden", !on); }

  function setState(state, message) {
    panel.dataset.state = state;
    const live = state === "live" || state === "connecting";
    show("phone-call", !live);
    show("phone-mute", state === "live");
    show("phone-hangup", live);
    $("phone-status").textContent = message || "";
  }

  function setError(message) {
    const box = $("phone-error");
    box.textContent = message || "";
    box.classList.toggle("hidden", !message);
  }

  function publish() {
    for (const key of Object.keys(stats)) panel.dataset[key] = String(stats[key]);
  }

  function socketUrl(path) {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + D.withToken(path);
  }

  function micError(error) {
    const name = (error && error.name) || "";
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "Microphone permission was denied. Allow the microphone for this page (the icon in the " +
        "address bar) and call again.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") return "No microphone was found.";
    if (name === "NotReadableError") return "The microphone is in use by another application.";
    return "Could not open the microphone: " + String((error && error.message) || error);
  }

  // -- this call's transcript and latency, from the dashboard's live feed --------------------------------
  function onLive(kind, data) {
    if (!data || typeof data.call_id !== "string") return;
    if (data.call_id !== call.id) {
      if (!call.id && call.ws) {
        const list = pending.get(data.call_id) || [];
        if (list.length < 500) list.push([kind, data]);
        pending.set(data.call_id, list);
      }
      return;
    }
    if (kind === "transcript_line") {
      const box = $("phone-transcript");
      box.appendChild(D.transcriptLine({ role: data.role, text: data.text }));
      box.scrollTop = box.scrollHeight;
    } else if (kind === "turn_complete") {
      const turn = data.turn || {};
      const lat = turn.latency || {};
      const total = D.turnLatency(turn);
      const parts = ["STT " + D.ms(lat.stt_ms), "LLM " + D.ms(lat.llm_ms), "TTS " + D.ms(lat.tts_ms)];
      const row = D.el("div", "phone-turn", "Turn " + String(turn.turn_index ?? "?") + ": " + D.ms(total) +
        " (" + parts.join(" · ") + ")");
      $("phone-turns").appendChild(row);
      $("phone-latency").textContent = total > 0 ? "last response " + D.ms(total) : "";
    } else if (kind === "call_end") {
      $("phone-status").textContent = "Call ended; it is in the call history below.";
    }
  }
  for (const kind of ["transcript_line", "turn_complete", "call_end"]) {
    document.addEventListener("patter:" + kind, (event) => onLive(kind, event.detail));
  }

  // -- the call ----------------------------------------------------------------------------------------
  function onWorklet(msg) {
    if (!msg || typeof msg !== "object") return;
    const ws = call.ws;
    if (msg.type === "frame") {
      if (ws && ws.readyState === WebSocket.OPEN && call.id) { ws.send(msg.pcm); stats.framesSent += 1; }
    } else if (msg.type === "mark") {
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ event: "mark", name: msg.name }));
        stats.marks += 1;
      }
    } else if (msg.type === "cleared") {
      stats.clears += 1;
    } else if (msg.type === "stats") {
      stats.samplesPlayed = msg.played;
      panel.dataset.buffered = String(msg.buffered);
      stats.level = Math.min(100, Math.round(Math.sqrt(msg.level) * 160));
      stats.loudest = Math.max(stats.loudest, stats.level);
      $("phone-level").style.width = stats.level + "%";
      publish();
    }
  }

  function decode(b64) {
    const raw = atob(b64);
    const bytes = new Uint8Array(raw.length & ~1);
    for (let i = 0; i < bytes.length; i++) bytes[i] = raw.charCodeAt(i);
    return new Int16Array(bytes.buffer); // PCM16 little-endian, as every browser platform is
  }

  function onSocketMessage(event) {
    if (typeof event.data !== "string") return;
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    if (!msg || typeof msg !== "object" || !call.node) return;
    const port = call.node.port;
    if (msg.event === "media" && typeof msg.audio === "string") {
      const samples = decode(msg.audio);
      port.postMessage({ type: "audio", samples: samples }, [samples.buffer]);
      stats.mediaReceived += 1;
    } else if (msg.event === "mark" && typeof msg.name === "string") {
      port.postMessage({ type: "mark", name: msg.name });
    } else if (msg.event === "clear") {
      port.postMessage({ type: "clear" });
    } else if (msg.event === "started" && typeof msg.call_id === "string") {
      call.id = msg.call_id;
      panel.dataset.callId = msg.call_id;
      port.postMessage({ type: "start", wireRate: Number(msg.sample_rate) });
      setState("live", "In call · " + String(Number(msg.sample_rate) / 1000) + " kHz");
      for (const [kind, data] of pending.get(call.id) || []) onLive(kind, data);
      pending.clear();
    }
  }

  async function release() {
    const { stream, ctx, node } = call;
    call.stream = call.ctx = call.node = null;
    if (node) { try { node.port.postMessage({ type: "close" }); node.disconnect(); } catch (e) { /* gone */ } }
    if (stream) for (const track of stream.getTracks()) track.stop();
    if (ctx) { try { await ctx.close(); } catch (e) { /* already closed */ } }
    $("phone-level").style.width = "0%";
    publish();
  }

  function onSocketClose(event) {
    const wasLive = !!call.id;
    call.ws = null;
    release();
    if (call.ending || event.code === 1000 || event.code === 1001) {
      setState("ended", wasLive ? "Call ended; it is in the call history below." : "Call ended.");
    } else {
      setState("error", "");
      setError(wasLive ? "The call was cut (code " + event.code + ")." :
        "The server refused the call (is the dashboard token right, or are too many calls running?).");
    }
  }

  async function startCall() {
    setError("");
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setError("The microphone needs a secure page: open the dashboard at http://127.0.0.1:<port>/ " +
        "(or localhost) on this machine, or over https.");
      return;
    }
    Object.assign(call, { id: "", muted: false, ending: false });
    for (const key of Object.keys(stats)) stats[key] = 0;
    delete panel.dataset.callId;
    $("phone-transcript").replaceChildren();
    $("phone-turns").replaceChildren();
    $("phone-latency").textContent = "";
    $("phone-mute").textContent = "Mute";
    $("phone-mute").setAttribute("aria-pressed", "false");
    setState("connecting", "Asking for the microphone…");
    try {
      call.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
    } catch (error) {
      await release();
      setState("error", "");
      setError(micError(error));
      return;
    }
    try {
      call.ctx = new AudioContext();
      await call.ctx.audioWorklet.addModule(D.withToken("/dashboard/phone-worklet.js"));
      call.node = new AudioWorkletNode(call.ctx, "patter-phone",
        { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
      call.node.port.onmessage = (event) => onWorklet(event.data);
      call.ctx.createMediaStreamSource(call.stream).connect(call.node);
      call.node.connect(call.ctx.destination);
      await call.ctx.resume();
    } catch (error) {
      await release();
      setState("error", "");
      setError("This browser cannot run the softphone's audio: " + String((error && error.message) || error));
      return;
    }
    setState("connecting", "Calling…");
    const ws = new WebSocket(socketUrl(panel.dataset.socket || "/api/dashboard/phone/socket"));
    ws.binaryType = "arraybuffer";
    call.ws = ws;
    ws.addEventListener("open", () => {
      const rates = JSON.parse(panel.dataset.rates || "[24000, 16000]");
      ws.send(JSON.stringify({ event: "start", sample_rates: rates }));
    });
    ws.addEventListener("message", onSocketMessage);
    ws.addEventListener("close", onSocketClose);
  }

  function hangUp() {
    const ws = call.ws;
    call.ending = true;
    if (ws && ws.readyState === WebSocket.OPEN) {
      try { ws.send(JSON.stringify({ event: "stop" })); } catch (e) { /* closing anyway */ }
      ws.close(1000);
    } else if (ws) {
      ws.close();
    } else {
      release();
      setState("ended", "Call ended.");
    }
  }

  function toggleMute() {
    call.muted = !call.muted;
    if (call.node) call.node.port.postMessage({ type: "mute", muted: call.muted });
    $("phone-mute").textContent = call.muted ? "Unmute" : "Mute";
    $("phone-mute").setAttribute("aria-pressed", call.muted ? "true" : "false");
  }

  $("phone-call").addEventListener("click", () => { startCall(); });
  $("phone-hangup").addEventListener("click", hangUp);
  $("phone-mute").addEventListener("click", toggleMute);
  window.addEventListener("pagehide", () => { if (call.ws) hangUp(); });

  D.api("/api/dashboard/phone").then((settings) => {
    if (!settings || settings.enabled !== true) return;
    panel.dataset.socket = String(settings.socket || "");
    panel.dataset.rates = JSON.stringify((settings.sample_rates || []).filter((r) => typeof r === "number"));
    panel.classList.remove("hidden");
    setState("idle", "");
    publish();
  }, () => { /* no softphone on this server */ });
})();
