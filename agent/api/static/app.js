// Artemis web page: plain JS, no build step. Talks to the service's HTTP API.
"use strict";

const TRACK_COLOURS = ["#ff00ff", "#00ff00", "#ffa500", "#00bfff", "#ffff00", "#ff4040"];
const $ = (id) => document.getElementById(id);

const state = {
  video: null,            // metadata of the selected video
  frameIdx: 0,
  frames: new Map(),      // frame_idx -> ImageBitmap
  box: null,              // [x1, y1, x2, y2] on state.boxFrame
  boxFrame: 0,
  drag: null,
  tracks: [],             // [{target_id, label, boxes: [[x1,y1,x2,y2] | null]}]
  candidates: [],         // clarification candidates [{number, label, frame_idx, box}]
  conversationId: null,
  playing: false,
  busy: false,
};
window.artemis = { state, render: () => render() };

// ---- HTTP --------------------------------------------------------------------------------------------
function headers(extra = {}) {
  const key = $("api-key").value.trim();
  return key ? { ...extra, "X-API-Key": key } : extra;
}

async function api(method, path, body) {
  const opts = { method, headers: headers() };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  const r = await fetch(path, opts);
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error((data && data.detail) || `${r.status} ${r.statusText}`);
  return data;
}

function setStatus(s) { document.body.dataset.status = s; }

// Service errors (a missing key, a failed upload) show in one notice, cleared once the service answers again.
function showNotice(text) { $("notice").textContent = text; }
function clearNotice() { $("notice").textContent = ""; }

function logEvent(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("events").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

// ---- videos ------------------------------------------------------------------------------------------
async function refreshVideos(selectId) {
  const { videos } = await api("GET", "/videos");
  clearNotice();
  const sel = $("video-select");
  sel.innerHTML = "";
  for (const v of videos) {
    const o = document.createElement("option");
    o.value = v.id;
    o.textContent = `${v.filename} (${v.num_frames} fr, ${v.width}×${v.height})`;
    sel.appendChild(o);
  }
  const id = selectId || (state.video && state.video.id) || (videos[0] && videos[0].id);
  if (id) { sel.value = id; await selectVideo(videos.find((v) => v.id === id)); }
}

async function selectVideo(meta) {
  if (!meta) return;
  state.video = meta;
  state.frames.clear();
  state.frameIdx = 0;
  state.box = null;
  state.tracks = [];
  state.candidates = [];
  state.conversationId = null;
  const c = $("frame-canvas");
  c.width = meta.width;   // the canvas holds the frame in video pixels; CSS scales it to fit the page
  c.height = meta.height;
  fitCanvas();
  $("scrub").max = meta.num_frames - 1;
  $("scrub").value = 0;
  $("answer").textContent = "";
  $("events").innerHTML = "";
  $("candidates").innerHTML = "";
  await showFrame(0);
  await refreshConversations();
  setStatus("ready");
}

async function uploadVideo(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  $("upload-status").textContent = `uploading ${file.name}…`;
  setStatus("uploading");
  const r = await fetch("/videos", { method: "POST", body: form, headers: headers() });
  const data = await r.json();
  if (!r.ok) {
    $("upload-status").textContent = `upload failed: ${data.detail}`;
    showNotice(`upload failed: ${data.detail}`);
    setStatus("error");
    return;
  }
  $("upload-status").textContent = `uploaded ${data.filename}`;
  await refreshVideos(data.id);
}

// Any video size fits: the canvas is shown as large as its column and 70% of the window's height allow
// (at most 4x), keeping the aspect ratio. Boxes stay in video pixels (toFrame converts the mouse).
function fitCanvas() {
  if (!state.video) return;
  const c = $("frame-canvas");
  const room = $("viewer").clientWidth || state.video.width;
  const scale = Math.min(4, room / state.video.width, (window.innerHeight * 0.7) / state.video.height);
  c.style.width = `${Math.floor(state.video.width * scale)}px`;
  c.style.height = `${Math.floor(state.video.height * scale)}px`;
}

// Video pixels per CSS pixel: strokes and labels keep a readable size on large videos shown small.
function pxPerCss() {
  const c = $("frame-canvas");
  const w = c.getBoundingClientRect().width;
  return w > 0 ? Math.max(1, c.width / w) : 1;
}

// ---- frames ------------------------------------------------------------------------------------------
async function loadFrame(idx) {
  if (state.frames.has(idx)) return state.frames.get(idx);
  const r = await fetch(`/videos/${state.video.id}/frames/${idx}`, { headers: headers() });
  if (!r.ok) throw new Error(`frame ${idx}: ${r.status}`);
  const bmp = await createImageBitmap(await r.blob());
  state.frames.set(idx, bmp);
  return bmp;
}

async function showFrame(idx) {
  if (!state.video) return;
  idx = Math.max(0, Math.min(state.video.num_frames - 1, idx));
  await loadFrame(idx);
  state.frameIdx = idx;
  $("scrub").value = idx;
  $("frame-label").textContent = `frame ${idx} / ${state.video.num_frames - 1}`;
  render();
}

function strokeBox(ctx, b, colour, width, dash = []) {
  const k = pxPerCss();
  width *= k;
  dash = dash.map((d) => d * k);
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.setLineDash(dash);
  ctx.strokeRect(b[0] + width / 2, b[1] + width / 2, b[2] - b[0] - width, b[3] - b[1] - width);
  ctx.restore();
}

function label(ctx, text, x, y, colour) {
  ctx.save();
  const size = Math.round(10 * pxPerCss());
  ctx.font = `bold ${size}px sans-serif`;
  ctx.fillStyle = colour;
  ctx.fillText(text, x + 2, Math.max(size, y - 3));
  ctx.restore();
}

function render() {
  const c = $("frame-canvas");
  const ctx = c.getContext("2d");
  const img = state.frames.get(state.frameIdx);
  ctx.clearRect(0, 0, c.width, c.height);
  if (img) ctx.drawImage(img, 0, 0, c.width, c.height);
  state.tracks.forEach((t, i) => {
    const b = t.boxes[state.frameIdx];
    if (!b) return;
    const colour = TRACK_COLOURS[i % TRACK_COLOURS.length];
    strokeBox(ctx, b, colour, 3);
    label(ctx, `#${t.target_id} ${t.label}`, b[0], b[1], colour);
  });
  for (const cand of state.candidates) {
    if (cand.frame_idx !== state.frameIdx) continue;
    strokeBox(ctx, cand.box, "#ffff00", 2, [4, 2]);
    label(ctx, String(cand.number), cand.box[0], cand.box[1], "#ffff00");
  }
  // the user's box, until the answer's track replaces it
  const box = state.drag ? state.drag.box : state.tracks.length ? null : state.box;
  if (box && (state.drag || state.boxFrame === state.frameIdx)) strokeBox(ctx, box, "#00ffff", 2, [5, 3]);
}

// ---- drawing a box -----------------------------------------------------------------------------------
function toFrame(ev) {
  const c = $("frame-canvas");
  const r = c.getBoundingClientRect();
  const x = ((ev.clientX - r.left) / r.width) * c.width;
  const y = ((ev.clientY - r.top) / r.height) * c.height;
  return [Math.max(0, Math.min(c.width, x)), Math.max(0, Math.min(c.height, y))];
}

function onDown(ev) {
  if (!state.video) return;
  const [x, y] = toFrame(ev);
  state.drag = { x0: x, y0: y, box: [x, y, x, y] };
}

function onMove(ev) {
  if (!state.drag) return;
  const [x, y] = toFrame(ev);
  const { x0, y0 } = state.drag;
  state.drag.box = [Math.min(x0, x), Math.min(y0, y), Math.max(x0, x), Math.max(y0, y)];
  render();
}

function onUp(ev) {
  if (!state.drag) return;
  const b = state.drag.box;
  state.drag = null;
  if (b[2] - b[0] >= 3 && b[3] - b[1] >= 3) {
    state.box = b.map((v) => Math.round(v));
    state.boxFrame = state.frameIdx;
    state.tracks = [];
    $("box-label").textContent = `box [${state.box.join(", ")}] on frame ${state.boxFrame}`;
  } else if (state.candidates.length) {
    const [x, y] = toFrame(ev);
    const hit = state.candidates.find(
      (c) => c.frame_idx === state.frameIdx && x >= c.box[0] && x <= c.box[2] && y >= c.box[1] && y <= c.box[3]);
    if (hit) choose(hit);
  }
  render();
}

// ---- conversations -----------------------------------------------------------------------------------
async function refreshConversations() {
  const { conversations } = await api("GET", `/conversations?video_id=${state.video.id}`);
  const sel = $("conversation-select");
  sel.innerHTML = "";
  for (const c of conversations) {
    const o = document.createElement("option");
    o.value = c.id;
    o.textContent = c.title;
    sel.appendChild(o);
  }
}

async function ensureConversation() {
  if (state.conversationId) return state.conversationId;
  const conv = await api("POST", "/conversations", { video_id: state.video.id });
  state.conversationId = conv.id;
  await refreshConversations();
  $("conversation-select").value = conv.id;
  return conv.id;
}

async function openConversation(id) {
  state.conversationId = id;
  const h = await api("GET", `/conversations/${id}/messages`);
  $("events").innerHTML = "";
  for (const m of h.messages) {
    logEvent("question", `you: ${m.text}`);
    if (m.answer) logEvent("answer", `artemis: ${m.answer}`);
    if (!["done", "clarification"].includes(m.status)) logEvent("error", `(${m.status.replace("_", " ")})`);
  }
  const last = h.messages[h.messages.length - 1];
  state.tracks = (last && last.tracks) || [];
  $("answer").textContent = (last && last.answer) || "";
  showCandidates(h.pending_clarification);
  render();
}

function showCandidates(clar) {
  const div = $("candidates");
  div.innerHTML = "";
  state.candidates = clar ? clar.candidates : [];
  if (!clar) return;
  const p = document.createElement("p");
  p.textContent = clar.question;
  div.appendChild(p);
  for (const cand of clar.candidates) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "candidate";
    b.dataset.number = cand.number;
    b.textContent = `${cand.number}: ${cand.label}`;
    b.onclick = () => choose(cand);
    div.appendChild(b);
  }
  if (clar.candidates.length) showFrame(clar.candidates[0].frame_idx);
}

function choose(cand) {
  send({ text: `${cand.number}`, choice: cand.number });
}

async function ask(ev) {
  ev.preventDefault();
  if (!state.video || state.busy) return;
  const text = $("question").value.trim() || $("question").placeholder;
  const body = { text };
  if (state.box) { body.box = state.box; body.frame_idx = state.boxFrame; }
  await send(body);
}

function describeEvent(name, d) {
  switch (name) {
    case "plan": return `plan (${d.planner}): ${d.steps.join(" → ")}`;
    case "tool_call": return `${d.tool}(${JSON.stringify(d.input)})`;
    case "tool_result": return `  → ${d.output}`;
    case "progress": return d.stage === "describe" ? `describing… (${d.status})` : null;
    case "step": return `${d.node}: ${d.output}`;
    case "clarification": return `? ${d.question}`;
    case "error": return `error: ${d.detail}`;
    case "cancelled": return d.reason === "timeout" ? `stopped: over the ${d.budget_s} s budget` : "cancelled";
    default: return null;
  }
}

function handleEvent(name, d) {
  const text = describeEvent(name, d);
  if (text) logEvent(name, text);
  if (name === "answer") $("answer").textContent = d.text;
  if (name === "tracks") {
    state.tracks = d.tracks;
    render();
  }
  if (name === "clarification") showCandidates(d);
  if (name === "done") setStatus(d.status === "done" ? "answered" : d.status);
}

async function send(body) {
  state.busy = true;
  setStatus("asking");
  $("answer").textContent = "";
  showCandidates(null);
  logEvent("question", `you: ${body.text}`);
  try {
    const id = await ensureConversation();
    const r = await fetch(`/conversations/${id}/messages`, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
    });
    if (!r.ok) {
      const err = await r.json().catch(() => ({ detail: r.statusText }));
      logEvent("error", `error ${r.status}: ${err.detail}`);
      setStatus("error");
      return;
    }
    await readSSE(r.body, handleEvent);
  } catch (e) {
    logEvent("error", String(e));
    setStatus("error");
  } finally {
    state.busy = false;
  }
}

async function readSSE(stream, onEvent) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

// ---- playback ----------------------------------------------------------------------------------------
async function play() {
  if (!state.video) return;
  state.playing = !state.playing;
  $("play").textContent = state.playing ? "❚❚ Pause" : "▶ Play";
  const delay = 1000 / Math.min(30, state.video.fps || 10);
  while (state.playing) {
    const next = (state.frameIdx + 1) % state.video.num_frames;
    const t0 = performance.now();
    await showFrame(next);
    await new Promise((ok) => setTimeout(ok, Math.max(0, delay - (performance.now() - t0))));
  }
}

// ---- wiring ------------------------------------------------------------------------------------------
function init() {
  $("api-key").value = localStorage.getItem("artemis-api-key") || "";
  $("api-key").addEventListener("change", () => {
    localStorage.setItem("artemis-api-key", $("api-key").value.trim());
    refreshVideos().catch((e) => showNotice(String(e.message || e)));
  });
  $("upload").addEventListener("change", (ev) => ev.target.files[0] && uploadVideo(ev.target.files[0]));
  $("video-select").addEventListener("change", async (ev) => {
    const meta = await api("GET", `/videos/${ev.target.value}`);
    await selectVideo(meta);
  });
  $("delete-video").addEventListener("click", async () => {
    if (!state.video) return;
    await api("DELETE", `/videos/${state.video.id}`);
    state.video = null;
    await refreshVideos();
  });
  $("conversation-select").addEventListener("change", (ev) => openConversation(ev.target.value));
  $("new-conversation").addEventListener("click", () => {
    state.conversationId = null;
    state.tracks = [];
    $("events").innerHTML = "";
    $("answer").textContent = "";
    render();
  });
  $("scrub").addEventListener("input", (ev) => showFrame(Number(ev.target.value)));
  $("play").addEventListener("click", play);
  $("clear-box").addEventListener("click", () => {
    state.box = null;
    $("box-label").textContent = "Drag on the frame to draw a box around an object.";
    render();
  });
  const c = $("frame-canvas");
  c.addEventListener("mousedown", onDown);
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  $("ask-form").addEventListener("submit", ask);
  window.addEventListener("resize", () => { fitCanvas(); render(); });
  refreshVideos().catch((e) => showNotice(String(e.message || e)));
}

init();
