// The bench engineer's view: link statistics, the raw state, and pressure and flow over a
// selectable window (up to 300 s of the 50 Hz telemetry, kept in the page).
"use strict";

const $ = (id) => document.getElementById(id);
const KEEP_S = 300;
const samples = [];

function connect() {
  const socket = new WebSocket(`ws://${location.host}/ws`);
  socket.onmessage = (message) => {
    const m = JSON.parse(message.data);
    if (m.type === "state") $("state").textContent = JSON.stringify(m.data, null, 2);
    if (m.type === "telemetry") onTelemetry(m.data);
  };
  socket.onclose = () => setTimeout(connect, 1000);
}

function onTelemetry(t) {
  const now = Date.now() / 1000;
  samples.push({ t: now, p: t.pressure_mmhg, q: t.flow_ml_min });
  while (samples.length && samples[0].t < now - KEEP_S) samples.shift();
  renderLinks(t.links || {});
}

function renderLinks(links) {
  const names = Object.keys(links);
  if (!names.length) return;
  const fields = Object.keys(links[names[0]]);
  const rows = [`<tr><th>device</th>${fields.map((f) => `<th>${f}</th>`).join("")}</tr>`];
  for (const name of names) {
    const cells = fields.map((f) => `<td>${cell(links[name][f])}</td>`).join("");
    rows.push(`<tr><th>${name}</th>${cells}</tr>`);
  }
  $("links").innerHTML = rows.join("");
}

// Round-trip times and the like to 0.01 ms: the float's other digits are noise on a screen.
function cell(value) {
  return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(2) : value;
}

function plot(id, key, label, colour) {
  const canvas = $(id);
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const span = Number($("window").value);
  const now = Date.now() / 1000;
  const shown = samples.filter((s) => s.t >= now - span && s[key] !== null && s[key] !== undefined);
  ctx.clearRect(0, 0, w, h);
  const values = shown.map((s) => s[key]);
  const top = Math.max(1, ...values) * 1.1;
  ctx.strokeStyle = colour;
  ctx.beginPath();
  shown.forEach((s, i) => {
    const x = ((s.t - (now - span)) / span) * w;
    const y = h - (s[key] / top) * (h - 20) - 10;
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = colour;
  ctx.font = "14px monospace";
  ctx.fillText(`${label} (0-${top.toFixed(1)}), last ${span} s`, 8, 16);
}

function draw() {
  plot("plot-pressure", "p", "pressure mmHg", "#4fc3f7");
  plot("plot-flow", "q", "flow mL/min", "#81c995");
  requestAnimationFrame(draw);
}

connect();
requestAnimationFrame(draw);
