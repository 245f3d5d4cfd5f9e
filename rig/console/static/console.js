// The surgeon's console page. Everything it shows comes over one WebSocket from `rig console`
// (rig/console/server.py); every command goes back the same way and is answered by the daemon.
"use strict";

const $ = (id) => document.getElementById(id);
const TREND_S = 60;
const AUDIO = {
  // IEC 60601-1-8 burst patterns: HIGH 10 pulses, MEDIUM 3, LOW 1; repeated while the alarm
  // sounds (inter-burst intervals within the standard's ranges).
  high: { pulses: [0, 0.2, 0.4, 1.0, 1.2, 2.0, 2.2, 2.4, 3.0, 3.2], hz: 880, every_s: 8 },
  medium: { pulses: [0, 0.25, 0.5], hz: 660, every_s: 10 },
  low: { pulses: [0, 0.3], hz: 520, every_s: 20 },
};

const view = {
  role: null, canCommand: false, video: false, state: null, online: null, brokerUp: true,
  trend: [], nextId: 1, pending: new Map(), audio: null, lastBurst: {},
};
// For tests and the telemetry benchmark: what the page showed, and when (epoch seconds).
window.__console = {
  alarmsShown: [], telemetryLatencyMs: [], bursts: [], replies: [], video: scopeVideo.stats,
};

function send(command) {
  if (!view.socket || view.socket.readyState !== WebSocket.OPEN) {
    showMessage("not connected to the console server");
    return;
  }
  const id = view.nextId++;
  view.pending.set(id, command.op);
  view.socket.send(JSON.stringify({ type: "command", id, command }));
}

function showMessage(text) { $("message").textContent = text; }

function connect() {
  const socket = new WebSocket(`ws://${location.host}/ws`);
  view.socket = socket;
  socket.onmessage = (message) => onMessage(JSON.parse(message.data));
  socket.onclose = () => {
    view.brokerUp = false;
    render();
    setTimeout(connect, 1000);
  };
  socket.onopen = () => { view.brokerUp = true; };
}

function onMessage(message) {
  switch (message.type) {
    case "hello":
      view.role = message.role;
      view.canCommand = message.can_command;
      view.video = message.video;
      break;
    case "state":
      view.state = message.data;
      view.online = message.data.online !== false;
      break;
    case "telemetry":
      onTelemetry(message.data);
      return;
    case "event":
      onEvent(message.data);
      return;
    case "reply":
      onReply(message.id, message.reply);
      return;
    case "console":
      view.brokerUp = message.broker;
      break;
  }
  render();
}

function fmt(value, digits) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

function onTelemetry(t) {
  $("pressure").textContent = fmt(t.pressure_mmhg, 1);
  $("flow").textContent = fmt(t.flow_ml_min, 2);
  $("resistance").textContent = fmt(t.resistance_mmhg_min_per_ml, 1);
  $("volumes").textContent = `${fmt(t.saline_ml, 2)} / ${fmt(t.contrast_ml, 2)}`;
  const now = Date.now() / 1000;
  if (typeof t.wall_time === "number") {
    const latencies = window.__console.telemetryLatencyMs;
    latencies.push((now - t.wall_time) * 1000);
    if (latencies.length > 10000) latencies.shift();
  }
  // One point per pixel of the trend is all it can show: 50 Hz telemetry is thinned to that.
  const last = view.trend[view.trend.length - 1];
  if (!last || now - last.t >= TREND_S / $("trend").width) {
    view.trend.push({ t: now, p: t.pressure_mmhg, q: t.flow_ml_min });
    while (view.trend.length && view.trend[0].t < now - TREND_S) view.trend.shift();
  }
}

function onEvent(event) {
  if (event.kind === "stop" && event.latched) {
    showMessage(`stopped: ${event.words || event.cause}`);
  }
}

function onReply(id, reply) {
  const op = view.pending.get(id);
  view.pending.delete(id);
  window.__console.replies.push({ op, reply });
  if (reply.ok) {
    showMessage(`${op}: done`);
  } else {
    const error = reply.error || {};
    showMessage(`${op} refused (${error.code}): ${error.message}`);
  }
}

function topAlarm(alarms) {
  return alarms && alarms.length ? alarms[0] : null;  // the daemon orders them: HIGH first
}

function render() {
  const s = view.state;
  $("offline").classList.toggle("hidden", view.online !== false && view.brokerUp);
  $("offline").textContent = view.brokerUp
    ? "RIG OFFLINE: no control daemon. The pump stops on its own; do not rely on this screen."
    : "CONSOLE DISCONNECTED from the rig: do not rely on this screen.";
  $("role").textContent = view.role ? `${view.role}${view.canCommand ? "" : " (read only)"}` : "-";
  if (!s) return;
  $("rig-state").textContent = `rig ${s.state || "offline"}`;
  $("mode").textContent = s.mode || "-";
  const holder = s.control && s.control.holder;
  $("control").textContent = `control: ${holder || "anyone"}`;
  renderAlarm(s.alarms || []);
  renderLastStop(s.last_stop);
  const commanding = view.canCommand && view.online !== false;
  for (const button of document.querySelectorAll("footer .control, #ack")) {
    button.disabled = !commanding;
  }
  $("estop").disabled = !commanding;
  const basket = !!s.basket;
  for (const button of document.querySelectorAll(".basket")) button.classList.toggle("hidden", !basket);
  if (!view.video) {
    scopeVideo.show(false, `no video for this console's login (${view.role})`);
  } else {
    scopeVideo.show(!!s.camera, "no video: the rig has no camera");
  }
}

function renderAlarm(alarms) {
  const alarm = topAlarm(alarms);
  const box = $("alarm");
  box.classList.remove("high", "medium", "low");
  if (!alarm) {
    box.classList.add("hidden");
    return;
  }
  box.classList.remove("hidden");
  box.classList.add(alarm.priority);
  $("alarm-priority").textContent = alarm.priority.toUpperCase();
  $("alarm-text").textContent = alarm.message;
  const paused = alarm.audio_paused_until && alarm.audio_paused_until > Date.now() / 1000;
  $("alarm-audio").textContent = paused ? "audio paused" : "";
  const shown = window.__console.alarmsShown;
  if (!shown.some((a) => a.id === alarm.id && a.raised === alarm.raised)) {
    shown.push({ id: alarm.id, priority: alarm.priority, raised: alarm.raised, shown: Date.now() / 1000 });
  }
}

function renderLastStop(stop) {
  if (!stop) return;
  const figures = stop.figures || {};
  const parts = [];
  if (typeof figures.pressure_mmhg === "number") parts.push(`${figures.pressure_mmhg.toFixed(1)} mmHg`);
  if (typeof figures.flow_ml_min === "number") parts.push(`${figures.flow_ml_min.toFixed(2)} mL/min`);
  if (typeof figures.resistance_mmhg_min_per_ml === "number") {
    parts.push(`R ${figures.resistance_mmhg_min_per_ml.toFixed(1)} mmHg·min/mL`);
  }
  $("last-stop").textContent =
    `last stop: ${stop.words || stop.cause}${parts.length ? ` (${parts.join(", ")})` : ""}`;
}

// -- the trend ---------------------------------------------------------------------------------

// Redrawn ten times a second, not at every display frame: the 60-second trend moves 1.4 px in
// that time, and a page busy stroking it at 60 Hz (software rendering: no GPU in the operating
// room's PC, nor in CI's headless Chromium) writes each telemetry value into the DOM later.
const TREND_REDRAW_MS = 100;
let trendDrawnAt = 0;

function drawTrend(frameMs) {
  requestAnimationFrame(drawTrend);
  if (frameMs - trendDrawnAt < TREND_REDRAW_MS) return;
  trendDrawnAt = frameMs;
  const canvas = $("trend");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const now = Date.now() / 1000;
  const x = (t) => ((t - (now - TREND_S)) / TREND_S) * w;
  const series = [
    { key: "p", colour: "#4fc3f7", max: 60, label: "pressure 0-60 mmHg" },
    { key: "q", colour: "#81c995", max: 3, label: "flow 0-3 mL/min" },
  ];
  ctx.font = "18px sans-serif";
  series.forEach((s, i) => {
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    for (const point of view.trend) {
      const v = point[s.key];
      if (v === null || v === undefined) { started = false; continue; }
      const y = h - (Math.min(v, s.max) / s.max) * (h - 10) - 5;
      if (started) ctx.lineTo(x(point.t), y); else ctx.moveTo(x(point.t), y);
      started = true;
    }
    ctx.stroke();
    ctx.fillStyle = s.colour;
    ctx.fillText(s.label, 10, 24 + i * 22);
  });
}

// -- audio ---------------------------------------------------------------------------------

function soundAlarms() {
  const s = view.state;
  const alarm = s && topAlarm(s.alarms || []);
  const now = Date.now() / 1000;
  if (alarm && !(alarm.audio_paused_until && alarm.audio_paused_until > now) && view.online !== false) {
    const pattern = AUDIO[alarm.priority];
    const last = view.lastBurst[alarm.id] || 0;
    if (pattern && now - last >= pattern.every_s) {
      view.lastBurst[alarm.id] = now;
      burst(pattern);
      window.__console.bursts.push({ id: alarm.id, priority: alarm.priority, at: now });
    }
  }
}

function burst(pattern) {
  if (!view.audio) {
    try { view.audio = new AudioContext(); } catch (e) { return; }
  }
  const ctx = view.audio;
  for (const offset of pattern.pulses) {
    const start = ctx.currentTime + offset;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";  // harmonics make the pulse easier to place (60601-1-8)
    osc.frequency.value = pattern.hz;
    gain.gain.setValueAtTime(0, start);
    gain.gain.linearRampToValueAtTime(0.2, start + 0.02);
    gain.gain.setValueAtTime(0.2, start + 0.13);
    gain.gain.linearRampToValueAtTime(0, start + 0.16);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start);
    osc.stop(start + 0.17);
  }
}

// -- controls ------------------------------------------------------------------------------

const actions = {
  irrigate: () => send({ op: "fluid.irrigate", flow_ml_min: Number($("flow-input").value) }),
  stop: () => send({ op: "fluid.stop" }),
  bolus: () => send({ op: "fluid.bolus", volume_ml: Number($("bolus-volume").value), rate_ml_min: Number($("bolus-rate").value) }),
  "basket-open": () => send({ op: "basket.open" }),
  "basket-close": () => send({ op: "basket.close" }),
  "basket-retract": () => send({ op: "basket.retract" }),
  "basket-home": () => send({ op: "basket.home" }),
  snapshot: () => send({ op: "camera.snapshot", note: $("note").value || "snapshot" }),
  "empty-duct": () => send({ op: "camera.snapshot", note: "empty duct" }),
  reset: () => send({ op: "fault.reset" }),
  ack: () => send({ op: "alarm.ack" }),
  "take-control": () => send({ op: "control.take" }),
  estop: () => send({ op: "estop", source: "console" }),
};
for (const [id, action] of Object.entries(actions)) {
  $(id).addEventListener("click", action);
}
const keys = { i: "irrigate", s: "stop", escape: "stop", b: "bolus", o: "basket-open", c: "basket-close",
               t: "basket-retract", h: "basket-home", p: "snapshot", n: "empty-duct", r: "reset", a: "ack", x: "estop" };
document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement && event.key !== "Escape") return;
  const id = keys[event.key.toLowerCase()];
  if (id && !$(id).disabled && !$(id).classList.contains("hidden")) {
    event.preventDefault();
    actions[id]();
  }
});

connect();
requestAnimationFrame(drawTrend);
setInterval(soundAlarms, 250);
setInterval(render, 1000);  // the audio-paused mark ends on time without a new message
