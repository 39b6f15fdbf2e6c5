// AffineGAN in the browser: encode the photo once, decode one frame per intensity.
// The graphs and model.json come from `affinegan export --web`; onnxruntime-web and gifenc
// were copied next to this file from the npm packages pinned by web/package-lock.json.
import * as ort from "./ort/ort.wasm.min.mjs";
import { GIFEncoder, applyPalette, quantize } from "./gifenc.esm.js";

ort.env.wasm.numThreads = 1; // no SharedArrayBuffer: any static server will do
ort.env.wasm.proxy = false;
ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;

const $ = (id) => document.getElementById(id);
const state = { manifest: null, encoder: null, decoder: null, codes: null, size: 0 };
let pending = null; // the latest slider value not yet decoded
let busy = false;

function setStatus(text, key) {
  $("status").textContent = text;
  if (key) document.body.dataset.state = key;
}

async function loadVariant(name) {
  const v = state.manifest.variants[name];
  const opts = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  state.encoder = await ort.InferenceSession.create(`model/${v.encode}`, opts);
  state.decoder = await ort.InferenceSession.create(`model/${v.decode}`, opts);
  state.variant = name;
}

async function init() {
  state.manifest = await (await fetch("model/model.json")).json();
  state.size = state.manifest.image_size;
  $("model-name").textContent =
    `${state.manifest.name} (${state.size} px, ${state.manifest.expressions.join(", ")})`;
  for (const [name, v] of Object.entries(state.manifest.variants)) {
    const opt = new Option(`${name} (${(v.bytes / 1e6).toFixed(1)} MB)`, name);
    $("variant").add(opt);
  }
  for (const id of ["input", "output"]) [$(id).width, $(id).height] = [state.size, state.size];
  makeSliders(state.manifest.expressions);
  await loadVariant("fp32");
  setStatus("pick a photo", "ready");
}

// One intensity slider per expression (ids alpha, alpha-1, ...), each its own z_r direction.
// The names come from model.json, which travels with a shared export: they go in as text and
// attribute values only, never as HTML.
function makeSliders(names) {
  names.forEach((name, e) => {
    const id = e === 0 ? "alpha" : `alpha-${e}`;
    const label = document.createElement("label");
    const input = document.createElement("input");
    Object.assign(input, { type: "range", id, className: "intensity", min: "0", max: "1" });
    Object.assign(input, { step: "0.01", value: "0", disabled: true });
    input.dataset.expression = String(name);
    const value = document.createElement("output");
    Object.assign(value, { id: `${id}-value`, textContent: "0.00" });
    label.append(names.length > 1 ? `${name} ` : "Intensity ", input, " ", value);
    $("sliders").append(label);
    input.addEventListener("input", guard(onSlide));
  });
}

function sliders() {
  return Array.from(document.querySelectorAll("input.intensity"));
}

// The photo: the largest centred square, resized to the model's size in the page.
async function photoPixels(blob) {
  const bitmap = await createImageBitmap(blob);
  const side = Math.min(bitmap.width, bitmap.height);
  const sx = (bitmap.width - side) / 2;
  const sy = (bitmap.height - side) / 2;
  const ctx = $("input").getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, sx, sy, side, side, 0, 0, state.size, state.size);
  bitmap.close();
  return ctx.getImageData(0, 0, state.size, state.size).data;
}

// RGBA uint8 -> (1,3,S,S) float32 in [-1, 1], as model.json's normalisation says.
function toTensor(rgba) {
  const n = state.size * state.size;
  const x = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) x[c * n + i] = (rgba[4 * i + c] / 255) * 2 - 1;
  }
  return new ort.Tensor("float32", x, [1, 3, state.size, state.size]);
}

async function encode(blob) {
  const feeds = { [state.encoder.inputNames[0]]: toTensor(await photoPixels(blob)) };
  state.codes = await state.encoder.run(feeds);
}

// Frames at the given intensities, one decoder call: a list of RGBA ImageData. Each entry is
// one frame: a number (the first expression) or one intensity per expression.
async function decode(alphas) {
  const e = state.manifest.expressions.length;
  const a = new Float32Array(alphas.length * e);
  alphas.forEach((v, i) => [].concat(v).forEach((w, j) => (a[i * e + j] = w)));
  const feeds = { alpha: new ort.Tensor("float32", a, [alphas.length, e]) };
  for (const name of state.decoder.inputNames) if (name !== "alpha") feeds[name] = state.codes[name];
  const t0 = performance.now();
  const out = await state.decoder.run(feeds);
  const ms = (performance.now() - t0) / alphas.length;
  const y = out[state.decoder.outputNames[0]].data;
  const n = state.size * state.size;
  const frames = alphas.map((_, f) => {
    const img = new ImageData(state.size, state.size);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.round(((y[(f * 3 + c) * n + i] + 1) / 2) * 255);
        img.data[4 * i + c] = Math.min(255, Math.max(0, v));
      }
      img.data[4 * i + 3] = 255;
    }
    return img;
  });
  window.affinegan.msPerFrame = ms;
  $("speed").textContent = `${ms.toFixed(1)} ms/frame (${state.variant}, ${alphas.length} frame${
    alphas.length > 1 ? "s" : ""} per call, WebAssembly, 1 thread)`;
  $("speed").dataset.ms = ms.toFixed(3);
  return frames;
}

async function show(alpha) {
  const [frame] = await decode([alpha]);
  $("output").getContext("2d").putImageData(frame, 0, 0);
  return frame;
}

// Sliders: decode the newest values only, so dragging never queues stale frames.
async function onSlide() {
  pending = sliders().map((s) => Number(s.value));
  sliders().forEach((s) => ($(`${s.id}-value`).textContent = Number(s.value).toFixed(2)));
  if (busy) return;
  busy = true;
  while (pending !== null) {
    const a = pending;
    pending = null;
    await show(a);
  }
  busy = false;
}

// 0 -> 1 -> 0 over the frames; with several expressions each rises to its slider's value (the
// first to 1 while all sliders are at 0), so Play shows the mix the sliders set.
function videoAlphas() {
  const n = Math.max(2, Math.min(120, Number($("frames").value) || 20));
  const up = Math.ceil(n / 2);
  const t = Array.from({ length: n }, (_, i) => (i < up ? i / (up - 1 || 1) : (n - 1 - i) / (n - up)));
  const peaks = sliders().map((s) => Number(s.value));
  if (peaks.length === 1 || peaks.every((p) => p === 0)) return t;
  return t.map((v) => peaks.map((p) => v * p));
}

async function video() {
  const alphas = videoAlphas();
  return { alphas, frames: await decode(alphas) };
}

async function play() {
  setStatus("decoding the video…");
  const { alphas, frames } = await video();
  const ctx = $("output").getContext("2d");
  for (let i = 0; i < frames.length; i++) {
    ctx.putImageData(frames[i], 0, 0);
    $("alpha-value").textContent = [].concat(alphas[i])[0].toFixed(2);
    await new Promise((r) => setTimeout(r, 100));
  }
  setStatus(`played ${frames.length} frames (alpha 0 → 1 → 0)`, "encoded");
}

async function downloadGif() {
  const { frames } = await video();
  const gif = GIFEncoder();
  for (const f of frames) {
    const palette = quantize(f.data, 256);
    gif.writeFrame(applyPalette(f.data, palette), f.width, f.height, { palette, delay: 100 });
  }
  gif.finish();
  const link = $("download");
  URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([gif.bytes()], { type: "image/gif" }));
  link.download = `${state.manifest.name}.gif`;
  link.click();
  setStatus(`GIF of ${frames.length} frames made in the page`, "encoded");
}

function guard(fn) {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (err) {
      setStatus(`error: ${err.message || err}`, "error");
      throw err;
    }
  };
}

$("photo").addEventListener("change", guard(async () => {
  const file = $("photo").files[0];
  if (!file) return;
  setStatus("encoding the photo…");
  await encode(file);
  for (const el of [...sliders(), $("play"), $("gif")]) el.disabled = false;
  await show(sliders().map((s) => Number(s.value)));
  setStatus("drag the intensity slider, or press Play", "encoded");
}));
$("variant").addEventListener("change", guard(async () => {
  setStatus(`loading ${$("variant").value} weights…`);
  await loadVariant($("variant").value);
  const file = $("photo").files[0];
  if (file) {
    await encode(file);
    await show(sliders().map((s) => Number(s.value)));
  }
  setStatus(`${$("variant").value} weights loaded`, file ? "encoded" : "ready");
}));
$("play").addEventListener("click", guard(play));
$("gif").addEventListener("click", guard(downloadGif));

// For tests and the console: RGB bytes of the frame at ``alpha`` (row-major, 3 per pixel): a
// number for the first expression, or one intensity per expression.
window.affinegan = {
  msPerFrame: null,
  expressions: () => sliders().map((s) => s.dataset.expression),
  async frame(alpha) {
    const values = [].concat(alpha);
    sliders().forEach((s, e) => {
      s.value = values[e] ?? 0;
      $(`${s.id}-value`).textContent = Number(s.value).toFixed(2);
    });
    const img = await show(values);
    return Array.from(img.data).filter((_, i) => i % 4 !== 3);
  },
  async video() {
    const { frames } = await video();
    return frames.length;
  },
};
window.affinegan.ready = guard(init)();
