// getpatter softphone: the audio thread of the dashboard's "Call this agent" button.
//
// Capture: the microphone at the AudioContext's rate -> linear resampling to the call's wire rate
// (16 or 24 kHz) -> PCM16 frames of 20 ms, posted to the page (zeros while muted, so the call's
// timing and watchdog see a live line). Playback: PCM16 from the agent at the wire rate -> resampled to
// the context's rate. Marks are placed at the end of what was queued when they arrived and reported back
// when playback actually reaches them: that is how the server knows what the caller heard.
"use strict";

const RING = 1 << 20; // playback buffer, in wire samples (~43 s at 24 kHz)

class PatterPhone extends AudioWorkletProcessor {
  constructor() {
    super();
    this.wireRate = 0;
    this.muted = false;
    this.closed = false;
    // capture
    this.inStep = 1; this.inPos = 0; this.prev = 0;
    this.frame = null; this.fill = 0;
    this.levelSum = 0; this.levelCount = 0;
    // playback
    this.ring = new Float32Array(RING);
    this.read = 0; this.write = 0; this.frac = 0; this.outStep = 1;
    this.enqueued = 0; this.played = 0;
    this.marks = [];
    this.statsEvery = Math.round(sampleRate / 128 / 10); this.blocks = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "start") {
      this.wireRate = msg.wireRate;
      this.inStep = sampleRate / this.wireRate;
      this.outStep = this.wireRate / sampleRate;
      this.frame = new Int16Array(Math.round(this.wireRate / 50));
      this.fill = 0;
    } else if (msg.type === "audio") {
      const samples = msg.samples;
      const room = RING - (this.write - this.read) - 1;
      const n = Math.min(samples.length, room);
      for (let i = 0; i < n; i++) this.ring[(this.write + i) % RING] = samples[i] / 32768;
      this.write += n;
      this.enqueued += n;
    } else if (msg.type === "mark") {
      this.marks.push({ name: msg.name, at: this.enqueued });
      this.reachMarks();
    } else if (msg.type === "clear") {
      this.read = this.write; this.frac = 0;
      this.played = this.enqueued;
      this.reachMarks(); // cleared marks are echoed at once, as phone carriers do
      this.port.postMessage({ type: "cleared" });
    } else if (msg.type === "mute") {
      this.muted = !!msg.muted;
    } else if (msg.type === "close") {
      this.closed = true;
    }
  }

  reachMarks() {
    while (this.marks.length && this.played >= this.marks[0].at) {
      this.port.postMessage({ type: "mark", name: this.marks.shift().name });
    }
  }

  capture(input) {
    if (!this.frame) return;
    const n = input.length;
    for (let i = 0; i < n; i++) { this.levelSum += input[i] * input[i]; }
    this.levelCount += n;
    let t = this.inPos;
    while (t < n - 1) {
      const i = Math.floor(t);
      const a = i < 0 ? this.prev : input[i];
      const b = input[i + 1];
      let v = this.muted ? 0 : a + (b - a) * (t - i);
      v = v < -1 ? -1 : v > 1 ? 1 : v;
      this.frame[this.fill++] = v < 0 ? v * 32768 : v * 32767;
      if (this.fill === this.frame.length) {
        const out = this.frame;
        const size = out.length; // read before the transfer detaches it
        this.port.postMessage({ type: "frame", pcm: out.buffer }, [out.buffer]);
        this.frame = new Int16Array(size);
        this.fill = 0;
      }
      t += this.inStep;
    }
    this.inPos = t - n;
    this.prev = input[n - 1];
  }

  playback(output) {
    for (let k = 0; k < output.length; k++) {
      const available = this.write - this.read;
      if (available <= 0) { output[k] = 0; continue; }
      const a = this.ring[this.read % RING];
      const b = available >= 2 ? this.ring[(this.read + 1) % RING] : 0;
      output[k] = a + (b - a) * this.frac;
      this.frac += this.outStep;
      while (this.frac >= 1 && this.write - this.read > 0) {
        this.frac -= 1; this.read += 1; this.played += 1;
      }
      if (this.write - this.read <= 0) this.frac = 0;
    }
    this.reachMarks();
  }

  process(inputs, outputs) {
    if (this.closed) return false;
    const input = inputs[0] && inputs[0][0];
    if (input && input.length) this.capture(input);
    const output = outputs[0] && outputs[0][0];
    if (output) {
      this.playback(output);
      for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(output);
    }
    if (++this.blocks >= this.statsEvery) {
      this.blocks = 0;
      const level = this.levelCount ? Math.sqrt(this.levelSum / this.levelCount) : 0;
      this.levelSum = 0; this.levelCount = 0;
      this.port.postMessage({ type: "stats", level: this.muted ? 0 : level, played: this.played,
        buffered: this.write - this.read });
    }
    return true;
  }
}

registerProcessor("patter-phone", PatterPhone);
