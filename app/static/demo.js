// streamkit demo page: stream tokens with EventSource (GET) or a fetch ReadableStream reader (POST),
// show time to first token, tokens/s and the gap timeline, and stop on demand.
// State is also kept on window.streamkit so browser tests can read what the page saw.
"use strict";

const $ = (id) => document.getElementById(id);
const state = (window.streamkit = { status: "idle", arrivals: [], text: "", requests: 0, stop: null,
  model: "streamkit-fake" });
const FAKE_MODEL = "streamkit-fake";

// The served model comes from /v1/models; the fake LLM's pacing knobs are sent only to the fake.
fetch("/v1/models").then((r) => r.json()).then((list) => {
  state.model = list.data[0].id;
  const fake = state.model === FAKE_MODEL;
  for (const id of ["tokens", "rate"]) $(id).disabled = !fake;
});

function setStatus(status) {
  state.status = status;
  $("status").textContent = status;
  const busy = status === "streaming" || status === "waiting";
  $("start").disabled = busy;
  $("stop").disabled = !busy;
}

function reset() {
  state.requestId = null;
  state.arrivals = [];
  state.text = "";
  state.started = performance.now();
  $("output").textContent = "";
  for (const id of ["ttft", "tps", "maxgap"]) $(id).textContent = "–";
  $("count").textContent = "0";
  draw();
}

function onToken(delta) {
  const now = performance.now();
  state.arrivals.push(now);
  state.text += delta;
  $("output").textContent = state.text;
  const n = state.arrivals.length;
  $("count").textContent = String(n);
  if (n === 1) $("ttft").textContent = `${Math.round(now - state.started)} ms`;
  if (n > 1) {
    const span = (now - state.arrivals[0]) / 1000;
    $("tps").textContent = (span > 0 ? (n - 1) / span : 0).toFixed(1);
    const gaps = state.arrivals.slice(1).map((t, i) => t - state.arrivals[i]);
    $("maxgap").textContent = `${Math.round(Math.max(...gaps))} ms`;
  }
  draw();
}

// One bar per token; bar height = gap since the previous token (log scale, 1 ms .. 10 s).
function draw() {
  const canvas = $("timeline");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const times = state.arrivals;
  if (times.length < 2) return;
  const width = Math.max(2, Math.floor(canvas.width / Math.max(times.length, 60)));
  for (let i = 1; i < times.length; i++) {
    const gap = Math.max(1, times[i] - times[i - 1]);
    const h = Math.min(1, Math.log10(gap) / 4) * (canvas.height - 4);
    ctx.fillStyle = gap > 1000 ? "#b3261e" : "#2f6fde";
    ctx.fillRect((i - 1) * width, canvas.height - h - 2, width - 1, h + 2);
  }
}

function params() {
  return { prompt: $("prompt").value, tokens: Number($("tokens").value), rate: Number($("rate").value) };
}

// EventSource: GET only. Close it on the terminal event, otherwise the browser reconnects and
// asks for the whole answer again.
function streamWithEventSource({ prompt, tokens, rate }) {
  const query = state.model === FAKE_MODEL ? { prompt, tokens, tokens_per_second: rate } : { prompt };
  const url = `/v1/chat/stream?${new URLSearchParams(query)}`;
  const source = new EventSource(url);
  state.requests += 1;
  state.stop = () => { source.close(); setStatus("stopped"); };
  source.addEventListener("start", (e) => { state.requestId = JSON.parse(e.data).id; });
  source.addEventListener("token", (e) => { setStatus("streaming"); onToken(JSON.parse(e.data).delta); });
  source.addEventListener("done", () => { source.close(); setStatus("done"); });
  source.addEventListener("error", (e) => {
    source.close();
    if (e.data) {
      const error = JSON.parse(e.data).error;
      setStatus(`error: ${error.type}`);
    } else if (state.status !== "done" && state.status !== "stopped") {
      setStatus("error: connection lost");
    }
  });
}

// fetch + ReadableStream: POST works, and the body must be consumed as it arrives.
async function streamWithFetch({ prompt, tokens, rate }) {
  const controller = new AbortController();
  state.stop = () => { controller.abort(); setStatus("stopped"); };
  state.requests += 1;
  const body = { model: state.model, stream: true, messages: [{ role: "user", content: prompt }] };
  if (state.model === FAKE_MODEL) body.fake = { tokens, tokens_per_second: rate };
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      signal: controller.signal,
    });
    state.requestId = response.headers.get("x-request-id");
    if (!response.ok) {
      const error = (await response.json()).error;
      setStatus(`error: ${error.type}`);
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (!data) continue; // a heartbeat comment
        if (data === "[DONE]") { setStatus("done"); return; }
        const chunk = JSON.parse(data);
        if (chunk.error) { setStatus(`error: ${chunk.error.type}`); return; }
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta.content;
        if (delta) { setStatus("streaming"); onToken(delta); }
      }
    }
    if (state.status === "streaming") setStatus("error: stream cut (no [DONE])");
  } catch (err) {
    if (err.name !== "AbortError") setStatus(`error: ${err.message}`);
  }
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  reset();
  setStatus("waiting");
  const run = $("mode").value === "fetch" ? streamWithFetch : streamWithEventSource;
  run(params());
});
$("stop").addEventListener("click", () => state.stop && state.stop());
