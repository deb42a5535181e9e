// The explorer's drawing surface (fakd/analysis/affinity_canvas.py): panels of small maps drawn
// client-side from one byte buffer, a marker at the chosen pixel, and pointer events that send the
// pixel to Python. Python quantises every map to 0..255; here a 256-colour palette turns the indices
// into pixels, so an update is one message of one byte per map pixel and no image encoding.

function bytes(model, name) {  // a Bytes trait arrives as a DataView (possibly into a larger buffer)
  const view = model.get(name);
  return view ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength) : new Uint8Array(0);
}

function palettes(model) {
  const names = model.get("palette_names");
  const data = bytes(model, "palette_data");
  const out = {};
  names.forEach((name, index) => { out[name] = data.subarray(index * 768, (index + 1) * 768); });
  return out;
}

function paint(panel, values, image, palette, imageSize) {
  const { height, width } = panel;
  const pixels = new ImageData(width, height);
  const overlay = panel.overlay && imageSize[0] === height && imageSize[1] === width;
  for (let index = 0; index < height * width; index++) {
    let red, green, blue;
    if (panel.source === "image") {
      red = image[3 * index]; green = image[3 * index + 1]; blue = image[3 * index + 2];
    } else {
      const colour = 3 * values[panel.offset + index];
      red = palette[colour]; green = palette[colour + 1]; blue = palette[colour + 2];
      if (overlay) {  // the map over the image's grey levels, as in the saved figures
        const grey = (image[3 * index] * 0.299 + image[3 * index + 1] * 0.587 + image[3 * index + 2] * 0.114);
        red = 0.8 * red + 0.2 * grey; green = 0.8 * green + 0.2 * grey; blue = 0.8 * blue + 0.2 * grey;
      }
    }
    pixels.data.set([red, green, blue, 255], 4 * index);
  }
  return pixels;
}

function drawMarks(context, panel, zoom) {
  if (panel.box) {
    const [top, left, boxH, boxW] = panel.box;
    context.strokeStyle = "#ffff00";
    context.lineWidth = 2;
    context.strokeRect(left * zoom, top * zoom, boxW * zoom, boxH * zoom);
  }
  if (panel.marker) {
    const x = (panel.marker[1] + 0.5) * zoom, y = (panel.marker[0] + 0.5) * zoom, arm = Math.max(6, 1.5 * zoom);
    context.lineWidth = 3;
    context.strokeStyle = "#000000";
    context.beginPath(); context.moveTo(x - arm, y); context.lineTo(x + arm, y);
    context.moveTo(x, y - arm); context.lineTo(x, y + arm); context.stroke();
    context.lineWidth = 1.5;
    context.strokeStyle = "#00ffff";
    context.stroke();
  }
}

function layoutKey(panels) {
  return JSON.stringify(panels.map((panel) => [panel.row, panel.height, panel.width, panel.source, panel.clickable]));
}

function render({ model, el }) {
  el.classList.add("fakd-affinity");
  const grid = document.createElement("div");
  grid.className = "fakd-affinity-grid";
  el.appendChild(grid);
  let pending = false, shown = [], shownKey = "";

  function select(event, index) {
    const { panel, zoom } = shown[index];
    const canvas = event.target, box = canvas.getBoundingClientRect();
    const ratio = canvas.width / (canvas.clientWidth || canvas.width) / zoom;  // CSS pixels -> map pixels
    const y = Math.floor((event.clientY - box.top - canvas.clientTop) * ratio);
    const x = Math.floor((event.clientX - box.left - canvas.clientLeft) * ratio);
    if (y < 0 || x < 0 || y >= panel.height || x >= panel.width) return;
    const [oldY, oldX] = model.get("pixel");
    if (y === oldY && x === oldX) return;
    pending = true;
    model.set("pixel", [y, x]);
    model.save_changes();
  }

  function build(panels) {  // the canvases and captions; rebuilt only when the layout changes
    grid.replaceChildren();
    const side = model.get("display_px");
    let rowElement = null, rowIndex = null;
    shown = panels.map((panel, index) => {
      if (panel.row !== rowIndex) {
        rowIndex = panel.row;
        rowElement = document.createElement("div");
        rowElement.className = "fakd-affinity-row";
        grid.appendChild(rowElement);
      }
      const zoom = Math.max(1, Math.floor(side / Math.max(panel.height, panel.width)));
      const figure = document.createElement("figure");
      figure.className = "fakd-affinity-panel";
      const canvas = document.createElement("canvas");
      canvas.width = panel.width * zoom;
      canvas.height = panel.height * zoom;
      canvas.dataset.role = panel.source;
      if (panel.clickable) {
        canvas.classList.add("fakd-clickable");
        canvas.addEventListener("pointerdown", (event) => select(event, index));
        canvas.addEventListener("pointermove", (event) => {
          if (model.get("hover") && !pending) select(event, index);
        });
      }
      const caption = document.createElement("figcaption");
      figure.append(canvas, caption);
      rowElement.appendChild(figure);
      return { panel, zoom, canvas, caption };
    });
  }

  function draw() {
    const panels = model.get("panels");
    const key = layoutKey(panels);
    if (key !== shownKey) { build(panels); shownKey = key; }
    const values = bytes(model, "maps");
    const image = bytes(model, "image");
    const imageSize = model.get("image_size");
    const colours = palettes(model);
    panels.forEach((panel, index) => {
      const entry = shown[index];
      entry.panel = panel;
      const small = new OffscreenCanvas(panel.width, panel.height);
      small.getContext("2d").putImageData(paint(panel, values, image, colours[panel.palette], imageSize), 0, 0);
      const context = entry.canvas.getContext("2d");
      context.imageSmoothingEnabled = false;
      context.drawImage(small, 0, 0, entry.canvas.width, entry.canvas.height);
      drawMarks(context, panel, entry.zoom);
      entry.caption.textContent = panel.title;
    });
    pending = false;
    el.dataset.pixel = model.get("pixel").join(",");
    el.dataset.imageSize = imageSize.join(",");
    el.dataset.version = String(model.get("version"));
  }

  model.on("change:version", draw);
  draw();
}

export default { render };
