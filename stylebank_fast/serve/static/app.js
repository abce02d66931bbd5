// The page of `python -m stylebank_fast.serve`: plain JavaScript, no build step.
// It keeps the photo at preview size, a label per preview pixel (the brush that painted it),
// and asks /api/stylize for a preview whenever something changes (one request in flight).
"use strict";

const PREVIEW_SIZE = 512; // longer side of the preview, in pixels
// Brush i's colour: stylizer.REGION_COLOURS, the colours of region maps (a test checks them)
const PALETTE = [
  [230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25],
  [145, 30, 180], [70, 240, 240], [245, 130, 48], [240, 50, 230],
];
const MAX_BRUSHES = PALETTE.length;

const $ = (id) => document.getElementById(id);
const state = {
  styles: [],
  file: null, // the photo as chosen (full resolution)
  previewBlob: null, // the photo at preview size, JPEG
  width: 0, height: 0, // preview size
  fullSize: null, // [w, h] of the photo
  labels: null, // Uint8Array, one brush index per preview pixel
  brushes: [], // style name per brush
  active: 1,
  eraser: false,
  inFlight: false,
  dirty: false,
  resultUrl: null,
};

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function mode() {
  return $("mode-regions").checked ? "regions" : "style";
}

// --- styles, sliders and brushes ---

function buildSliders() {
  const box = $("sliders");
  box.textContent = "";
  state.styles.forEach((name, i) => {
    const row = document.createElement("label");
    row.className = "slider";
    row.innerHTML = `<span title="${name}">${name}</span><input type="range" min="0" max="100" value="${i === 0 ? 100 : 0}" data-style="${name}"><output>${i === 0 ? 100 : 0}</output>`;
    const input = row.querySelector("input");
    input.addEventListener("input", () => {
      row.querySelector("output").textContent = input.value;
      changed();
    });
    box.append(row);
  });
}

function blendSpec() {
  const parts = [...document.querySelectorAll("#sliders input")]
    .filter((input) => Number(input.value) > 0)
    .map((input) => `${input.dataset.style}:${input.value}`);
  return parts.join(",");
}

function addBrush(style) {
  if (state.brushes.length >= MAX_BRUSHES) return;
  state.brushes.push(style ?? state.styles[state.brushes.length % state.styles.length]);
  buildBrushes();
}

function buildBrushes() {
  const box = $("brushes");
  box.textContent = "";
  state.brushes.forEach((style, i) => {
    const row = document.createElement("div");
    row.className = "brush" + (i === state.active && !state.eraser ? " active" : "");
    const [r, g, b] = PALETTE[i];
    row.innerHTML = `<button type="button" class="swatch" style="background:rgb(${r},${g},${b})" aria-label="paint with brush ${i + 1}"></button><span>${i + 1}</span><select aria-label="style of brush ${i + 1}"></select>`;
    const select = row.querySelector("select");
    for (const name of state.styles) select.add(new Option(name, name, false, name === style));
    select.addEventListener("change", () => {
      state.brushes[i] = select.value;
      changed();
    });
    row.querySelector(".swatch").addEventListener("click", () => selectBrush(i));
    row.addEventListener("click", (event) => {
      if (event.target.tagName !== "SELECT") selectBrush(i);
    });
    box.append(row);
  });
  $("add-brush").disabled = state.brushes.length >= MAX_BRUSHES;
}

function selectBrush(i) {
  state.active = i;
  setEraser(false);
}

function setEraser(on) {
  state.eraser = on;
  $("eraser").setAttribute("aria-pressed", String(on));
  buildBrushes();
}

// --- the photo ---

async function loadPhoto(file) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus(`${file ? file.name : "that"} is not an image`, true);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    setStatus(`cannot read ${file.name} as an image`, true);
    return;
  }
  const scale = Math.min(1, PREVIEW_SIZE / Math.max(bitmap.width, bitmap.height));
  state.width = Math.max(1, Math.round(bitmap.width * scale));
  state.height = Math.max(1, Math.round(bitmap.height * scale));
  state.fullSize = [bitmap.width, bitmap.height];
  state.file = file;
  for (const canvas of [$("photo"), $("overlay")]) {
    canvas.width = state.width;
    canvas.height = state.height;
  }
  const context = $("photo").getContext("2d");
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, state.width, state.height);
  state.previewBlob = await new Promise((done) => $("photo").toBlob(done, "image/jpeg", 0.92));
  state.labels = new Uint8Array(state.width * state.height);
  $("empty").hidden = true;
  $("full").disabled = false;
  drawOverlay();
  changed();
}

// --- painting ---

function drawOverlay() {
  if (!state.labels) return;
  const context = $("overlay").getContext("2d");
  const image = context.createImageData(state.width, state.height);
  const show = mode() === "regions";
  for (let i = 0; i < state.labels.length; i++) {
    const [r, g, b] = PALETTE[state.labels[i]];
    image.data.set([r, g, b, show ? 255 : 0], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

function stamp(x, y) {
  const radius = (Number($("brush-size").value) / 2) * (state.width / $("overlay").clientWidth);
  const value = state.eraser ? 0 : state.active;
  const r2 = radius * radius;
  const top = Math.max(0, Math.floor(y - radius));
  const bottom = Math.min(state.height - 1, Math.ceil(y + radius));
  for (let row = top; row <= bottom; row++) {
    const span = Math.sqrt(Math.max(0, r2 - (row - y) ** 2));
    const left = Math.max(0, Math.ceil(x - span));
    const right = Math.min(state.width - 1, Math.floor(x + span));
    if (left <= right) state.labels.fill(value, row * state.width + left, row * state.width + right + 1);
  }
}

function canvasPoint(event) {
  const box = $("overlay").getBoundingClientRect();
  return [
    ((event.clientX - box.left) * state.width) / box.width,
    ((event.clientY - box.top) * state.height) / box.height,
  ];
}

let lastPoint = null;
function paintTo(event) {
  const point = canvasPoint(event);
  const [x0, y0] = lastPoint ?? point;
  const steps = Math.max(1, Math.ceil(Math.hypot(point[0] - x0, point[1] - y0) / 2));
  for (let s = 1; s <= steps; s++) {
    stamp(x0 + ((point[0] - x0) * s) / steps, y0 + ((point[1] - y0) * s) / steps);
  }
  lastPoint = point;
  drawOverlay();
  changed();
}

function setUpPainting() {
  const overlay = $("overlay");
  overlay.addEventListener("pointerdown", (event) => {
    if (!state.labels) return;
    if (mode() !== "regions") {
      $("mode-regions").checked = true;
      modeChanged();
    }
    overlay.setPointerCapture(event.pointerId);
    lastPoint = null;
    paintTo(event);
  });
  overlay.addEventListener("pointermove", (event) => {
    if (overlay.hasPointerCapture(event.pointerId)) paintTo(event);
  });
  const end = (event) => {
    if (overlay.hasPointerCapture(event.pointerId)) overlay.releasePointerCapture(event.pointerId);
    lastPoint = null;
  };
  overlay.addEventListener("pointerup", end);
  overlay.addEventListener("pointercancel", end);
}

// --- requests ---

function labelImage() {
  // the labels as a grey PNG (value = brush index), with the styles of the brushes used in
  // ascending order: the server numbers regions by sorted value
  const used = [...new Set(state.labels)].sort((a, b) => a - b);
  const canvas = document.createElement("canvas");
  canvas.width = state.width;
  canvas.height = state.height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(state.width, state.height);
  for (let i = 0; i < state.labels.length; i++) {
    const v = state.labels[i];
    image.data.set([v, v, v, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
  return new Promise((done) =>
    canvas.toBlob((blob) => done([blob, used.map((i) => state.brushes[i]).join(",")]), "image/png"),
  );
}

async function requestForm(full) {
  const form = new FormData();
  form.append("image", full ? state.file : state.previewBlob, full ? state.file.name : "preview.jpg");
  if (mode() === "regions") {
    const [blob, styles] = await labelImage();
    form.append("regions", blob, "regions.png");
    form.append("region_styles", styles);
    // feather is set in preview pixels; the full image is larger
    const scale = full ? Math.max(...state.fullSize) / Math.max(state.width, state.height) : 1;
    form.append("feather", String(Math.round(Number($("feather").value) * scale)));
  } else {
    const spec = blendSpec();
    if (!spec) throw new Error("move at least one style slider above 0");
    form.append("style", spec);
  }
  form.append("strength", String(Number($("strength").value) / 100));
  form.append("preserve_color", $("preserve-color").checked ? "1" : "0");
  form.append("format", full ? "png" : "jpeg");
  return form;
}

async function stylize(full) {
  const started = performance.now();
  const response = await fetch("/api/stylize", { method: "POST", body: await requestForm(full) });
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: response.statusText }));
    throw new Error(body.error || `the server answered ${response.status}`);
  }
  const blob = await response.blob();
  const seconds = (performance.now() - started) / 1000;
  showResult(blob, full, seconds, response.headers.get("X-Batch-Size"));
}

function showResult(blob, full, seconds, batch) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  const result = $("result");
  result.src = state.resultUrl;
  result.dataset.kind = full ? "full" : "preview";
  result.dataset.updates = String(Number(result.dataset.updates) + 1);
  const [w, h] = full ? state.fullSize : [state.width, state.height];
  const shared = batch && batch !== "1" ? `, in a batch of ${batch}` : "";
  $("result-info").textContent = `${full ? "Full resolution" : "Preview"} ${w}×${h}`;
  setStatus(`${full ? "full resolution" : "preview"} in ${seconds.toFixed(2)} s${shared}`);
  const link = $("download");
  link.href = state.resultUrl;
  link.download = full ? "stylized.png" : "stylized-preview.jpg";
  link.textContent = full ? "Download" : "Download preview";
  link.classList.remove("disabled");
  link.removeAttribute("aria-disabled");
}

function changed() {
  if (!state.previewBlob) return;
  state.dirty = true;
  if (!state.inFlight) update();
}

async function update() {
  state.inFlight = true;
  while (state.dirty) {
    state.dirty = false;
    try {
      await stylize(false);
    } catch (error) {
      setStatus(error.message, true);
    }
  }
  state.inFlight = false;
}

async function fullResolution() {
  const button = $("full");
  button.disabled = true;
  setStatus("stylizing at full resolution…");
  try {
    await stylize(true);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    button.disabled = false;
  }
}

async function autoRegions() {
  if (!state.previewBlob) return setStatus("choose a photo first", true);
  const count = Number($("auto-count").value);
  const form = new FormData();
  form.append("image", state.previewBlob, "preview.jpg");
  form.append("regions", `auto:${count}`);
  setStatus(`finding ${count} regions…`);
  const response = await fetch("/api/regions", { method: "POST", body: form });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    return setStatus(body.error || `the server answered ${response.status}`, true);
  }
  // the region map's colours are PALETTE's: region i -> brush i
  const bitmap = await createImageBitmap(await response.blob());
  const canvas = document.createElement("canvas");
  canvas.width = state.width;
  canvas.height = state.height;
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0, state.width, state.height);
  const pixels = context.getImageData(0, 0, state.width, state.height).data;
  for (let i = 0; i < state.labels.length; i++) {
    let best = 0;
    let bestDistance = Infinity;
    PALETTE.slice(0, count).forEach(([r, g, b], j) => {
      const d = (pixels[4 * i] - r) ** 2 + (pixels[4 * i + 1] - g) ** 2 + (pixels[4 * i + 2] - b) ** 2;
      if (d < bestDistance) [best, bestDistance] = [j, d];
    });
    state.labels[i] = best;
  }
  while (state.brushes.length < count) addBrush();
  $("mode-regions").checked = true;
  modeChanged();
  setStatus(`${count} regions found: repaint them, or choose their styles`);
}

function modeChanged() {
  const regions = mode() === "regions";
  $("blend-panel").hidden = regions;
  $("region-panel").hidden = !regions;
  document.body.classList.toggle("painting", regions);
  drawOverlay();
  changed();
}

// --- wiring ---

function setUp() {
  $("file").addEventListener("change", () => loadPhoto($("file").files[0]));
  const drop = $("drop");
  for (const target of [drop, $("canvas-wrap")]) {
    target.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
    target.addEventListener("dragleave", () => drop.classList.remove("over"));
    target.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      loadPhoto(event.dataTransfer.files[0]);
    });
  }
  for (const input of document.getElementsByName("mode")) input.addEventListener("change", modeChanged);
  $("add-brush").addEventListener("click", () => {
    addBrush();
    selectBrush(state.brushes.length - 1);
  });
  $("eraser").addEventListener("click", () => setEraser(!state.eraser));
  $("clear").addEventListener("click", () => {
    if (!state.labels) return;
    state.labels.fill(0);
    drawOverlay();
    changed();
  });
  $("auto").addEventListener("click", autoRegions);
  $("feather").addEventListener("input", () => {
    $("feather-value").textContent = `${$("feather").value} px`;
    changed();
  });
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = `${$("strength").value}%`;
    changed();
  });
  $("preserve-color").addEventListener("change", changed);
  $("show-overlay").addEventListener("change", () =>
    $("overlay").classList.toggle("hidden", !$("show-overlay").checked),
  );
  $("full").addEventListener("click", fullResolution);
  setUpPainting();
}

async function start() {
  setUp();
  try {
    const response = await fetch("/api/styles");
    state.styles = await response.json();
  } catch {
    return setStatus("cannot reach the server", true);
  }
  buildSliders();
  state.brushes = [state.styles[0], state.styles[1 % state.styles.length]];
  buildBrushes();
  setStatus(`${state.styles.length} styles: drop a photo to start`);
}

start();
