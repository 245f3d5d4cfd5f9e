// The scope's video on the console page. Frames come over a WebSocket of their own from this
// page's server (`/video`, rig/console/server.py), which relays them from the rig's broker;
// each is a header and a JPEG (rig/camera/stream.py). The newest frame is drawn; one that
// arrives while another decodes replaces the waiting one. No frame for the camera's video
// timeout (the header's timeout_ms) is lost video, shown at once over the picture: a frozen
// picture must never pass for a live one.
"use strict";

const scopeVideo = (() => {
  const v = {
    wanted: false, socket: null, timeoutMs: 400, pending: null, drawing: false, timer: null,
    live: false,
  };
  // For tests and `rig bench console-video`: frames received and drawn, their bytes, latency
  // from capture to the frame's arrival in the page and to the canvas (both clocks this
  // machine's), and when the page last showed the loss (epoch ms).
  const stats = {
    frames: 0, received: 0, bytes: 0, latencyMs: [], arrivalMs: [], lastFrameAt: null,
    lostShownAt: null, lostReason: null,
  };
  const nowMs = () => performance.timeOrigin + performance.now();

  function record(list, ms) {
    list.push(ms);
    if (list.length > 10000) list.shift();
  }

  function placeholder(text, lost) {
    const box = document.getElementById("no-video");
    box.textContent = text;
    box.classList.toggle("lost", lost);
    box.classList.remove("hidden");
    document.getElementById("video").classList.add("hidden");
  }

  function lost(reason) {
    clearTimeout(v.timer);
    if (!v.wanted) return;
    if (v.live || stats.lostShownAt === null) {
      stats.lostShownAt = nowMs();
      stats.lostReason = reason;
    }
    v.live = false;
    placeholder(`VIDEO LOST: ${reason}`, true);
  }

  function connect() {
    if (v.socket || !v.wanted) return;
    const socket = new WebSocket(`ws://${location.host}/video`);
    socket.binaryType = "arraybuffer";
    v.socket = socket;
    socket.onmessage = (message) => onFrame(message.data);
    socket.onclose = () => {
      v.socket = null;
      lost("no connection to the console server");
      setTimeout(connect, 1000);
    };
  }

  function onFrame(data) {
    stats.received += 1;
    stats.bytes += data.byteLength;
    const size = new DataView(data).getUint16(0);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 2, size)));
    if (typeof header.wall_ms === "number") record(stats.arrivalMs, nowMs() - header.wall_ms);
    v.pending = { header, jpeg: new Blob([new Uint8Array(data, 2 + size)], { type: "image/jpeg" }) };
    if (!v.drawing) draw();
  }

  async function draw() {
    v.drawing = true;
    while (v.pending) {
      const { header, jpeg } = v.pending;
      v.pending = null;
      let bitmap;
      try {
        bitmap = await createImageBitmap(jpeg);
      } catch (error) {
        continue;  // a frame that does not decode is skipped; the watchdog still runs
      }
      const canvas = document.getElementById("video");
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
      }
      canvas.getContext("2d").drawImage(bitmap, 0, 0);
      bitmap.close();
      const drawnAt = nowMs();
      stats.frames += 1;
      stats.lastFrameAt = drawnAt;
      if (typeof header.wall_ms === "number") record(stats.latencyMs, drawnAt - header.wall_ms);
      if (typeof header.timeout_ms === "number") v.timeoutMs = header.timeout_ms;
      if (v.wanted && !v.live) {
        v.live = true;
        document.getElementById("no-video").classList.add("hidden");
        canvas.classList.remove("hidden");
      }
      clearTimeout(v.timer);
      v.timer = setTimeout(() => lost(`no frame for ${v.timeoutMs} ms`), v.timeoutMs);
    }
    v.drawing = false;
  }

  // wanted: this page's role sees video and the rig has a camera; else `why` is shown.
  function show(wanted, why) {
    v.wanted = wanted;
    if (!wanted) {
      clearTimeout(v.timer);
      v.live = false;
      placeholder(why, false);
      if (v.socket) v.socket.close();
      return;
    }
    if (!v.live && !v.socket) placeholder("waiting for video", false);
    connect();
  }

  return { show, stats };
})();
