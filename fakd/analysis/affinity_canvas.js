// The explorer's drawing surface (fakd/analysis/affinity_canvas.py): a grid of small maps drawn
// client-side from one byte buffer, column headers, colour bars, a marker at the chosen pixel, and
// pointer events that send the pixel to Python. Python quantises every map to 0..255; here a
// 256-colour palette turns the indices into pixels, so an update is one message of one byte per map
// pixel and no image encoding. Captions and headers arrive as HTML made (and escaped) in Python.

const BAR_WIDTH = 16, BAR_TEXT = 84, GAP = 10;

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
      if (overlay) {  // the map over the image's grey levels (20%), as in the saved figures
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
    context.lineWidth = 3;
    context.strokeStyle = "#000000";
    context.strokeRect(left * zoom, top * zoom, boxW * zoom, boxH * zoom);
    context.lineWidth = 1.5;
    context.strokeStyle = "#ffff00";
    context.strokeRect(left * zoom, top * zoom, boxW * zoom, boxH * zoom);
  }
  if (panel.line !== null && panel.line !== undefined) {  // a matrix: the clicked position's row and column
    const at = (panel.line + 0.5) * zoom, size = panel.width * zoom;
    context.lineWidth = Math.max(1, zoom);
    context.strokeStyle = "rgba(0, 255, 255, 0.75)";
    context.beginPath(); context.moveTo(0, at); context.lineTo(size, at);
    context.moveTo(at, 0); context.lineTo(at, size); context.stroke();
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

function drawBar(canvas, panel, palette) {  // high values at the top, three values written beside
  const context = canvas.getContext("2d");
  const height = canvas.height - 12;
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (let y = 0; y < height; y++) {
    const colour = 3 * Math.round(255 * (1 - y / (height - 1)));
    context.fillStyle = `rgb(${palette[colour]}, ${palette[colour + 1]}, ${palette[colour + 2]})`;
    context.fillRect(0, 6 + y, BAR_WIDTH, 1);
  }
  context.strokeStyle = "#888";
  context.strokeRect(0.5, 6.5, BAR_WIDTH - 1, height - 1);
  const [low, high] = panel.limits;
  context.fillStyle = "#000";
  context.font = "11px sans-serif";
  context.textBaseline = "middle";
  [[high, 6], [(low + high) / 2, 6 + height / 2], [low, 6 + height - 1]].forEach(([value, y]) => {
    context.fillText(value.toFixed(2), BAR_WIDTH + 4, y);
  });
}

function layoutKey(model, panels, side) {  // what the grid's cells are
  return JSON.stringify([side, model.get("columns"),
    panels.map((panel) => [panel.row, panel.column, panel.rows, panel.height, panel.width, panel.source, panel.clickable])]);
}

function mapSide(model, el) {  // the map columns share the width the page gives the widget
  const columns = model.get("columns");
  const maps = Math.max(1, columns.filter((column) => column.kind === "map").length);
  const bars = columns.length - maps;
  const width = el.clientWidth || 1200;
  const free = width - bars * (BAR_WIDTH + BAR_TEXT) - (columns.length - 1) * GAP - 4;
  return Math.max(96, Math.min(model.get("max_px"), Math.floor(free / maps)));
}

function render({ model, el }) {
  el.classList.add("fakd-affinity");
  const grid = document.createElement("div");
  grid.className = "fakd-affinity-grid";
  const legend = document.createElement("div");
  legend.className = "fakd-affinity-legend";
  el.append(grid, legend);
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

  function build(panels, side) {  // headers, canvases and captions; rebuilt only when the layout changes
    grid.replaceChildren();
    const columns = model.get("columns");
    grid.style.gridTemplateColumns = columns.map((column) =>
      column.kind === "bar" ? `${BAR_WIDTH + BAR_TEXT}px` : `${side}px`).join(" ");
    grid.style.columnGap = `${GAP}px`;
    columns.forEach((column, index) => {
      const header = document.createElement("div");
      header.className = "fakd-affinity-header";
      header.style.gridColumn = String(index + 1);
      header.style.gridRow = "1";
      header.innerHTML = column.header;
      grid.appendChild(header);
    });
    const rows = panels.reduce((most, panel) => Math.max(most, panel.row + 1), 0);
    if (rows > 1) {  // the legend in the free cells under the image, else under the grid
      legend.style.gridColumn = "1";
      legend.style.gridRow = `3 / span ${rows - 1}`;
      grid.appendChild(legend);
    } else {
      legend.style.gridColumn = legend.style.gridRow = "";
      el.appendChild(legend);
    }
    shown = panels.map((panel, index) => {
      const figure = document.createElement("figure");
      figure.className = "fakd-affinity-panel";
      figure.style.gridColumn = String(panel.column + 1);
      figure.style.gridRow = `${panel.row + 2} / span ${panel.rows || 1}`;
      const canvas = document.createElement("canvas");
      canvas.dataset.role = panel.source;
      let zoom = 1;
      if (panel.source === "bar") {
        canvas.width = BAR_WIDTH + BAR_TEXT;
        canvas.height = side;
      } else {
        zoom = Math.max(1, Math.ceil(side / Math.max(panel.height, panel.width)));
        canvas.width = panel.width * zoom;
        canvas.height = panel.height * zoom;
        canvas.style.width = `${Math.round(side * panel.width / Math.max(panel.height, panel.width))}px`;
      }
      if (panel.clickable) {
        canvas.classList.add("fakd-clickable");
        canvas.addEventListener("pointerdown", (event) => select(event, index));
        canvas.addEventListener("pointermove", (event) => {
          if (model.get("hover") && !pending) select(event, index);
        });
      }
      const caption = document.createElement("figcaption");
      figure.append(canvas, caption);
      grid.appendChild(figure);
      return { panel, zoom, canvas, caption };
    });
  }

  function draw() {
    const panels = model.get("panels");
    const side = mapSide(model, el);
    const key = layoutKey(model, panels, side);
    if (key !== shownKey) { build(panels, side); shownKey = key; }
    const values = bytes(model, "maps");
    const image = bytes(model, "image");
    const imageSize = model.get("image_size");
    const colours = palettes(model);
    panels.forEach((panel, index) => {
      const entry = shown[index];
      entry.panel = panel;
      entry.caption.innerHTML = panel.title;
      if (panel.source === "bar") { drawBar(entry.canvas, panel, colours[panel.palette]); return; }
      const small = new OffscreenCanvas(panel.width, panel.height);
      small.getContext("2d").putImageData(paint(panel, values, image, colours[panel.palette], imageSize), 0, 0);
      const context = entry.canvas.getContext("2d");
      context.imageSmoothingEnabled = false;
      context.drawImage(small, 0, 0, entry.canvas.width, entry.canvas.height);
      drawMarks(context, panel, entry.zoom);
    });
    legend.innerHTML = model.get("legend");
    pending = false;
    el.dataset.pixel = model.get("pixel").join(",");
    el.dataset.imageSize = imageSize.join(",");
    el.dataset.version = String(model.get("version"));
  }

  model.on("change:version", draw);
  let width = el.clientWidth;
  const resized = new ResizeObserver(() => {  // the page's width decides the maps' size
    if (Math.abs(el.clientWidth - width) > 8) { width = el.clientWidth; draw(); }
  });
  resized.observe(el);
  draw();
  return () => resized.disconnect();
}

export default { render };
