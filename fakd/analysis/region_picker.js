// The whole photo, scaled to a preview, with the region the explorer shows (fakd/analysis/region_picker.py).
// A click sends the clicked point, in the photo's own pixels, as the region's new centre.

function render({ model, el }) {
  el.classList.add("fakd-region-picker");
  const canvas = document.createElement("canvas");
  canvas.style.cursor = "crosshair";
  canvas.style.border = "1px solid #8884";
  const caption = document.createElement("div");
  caption.style.font = "12px sans-serif";
  el.append(canvas, caption);

  function draw() {
    const [height, width] = model.get("preview_size");
    if (!height || !width) return;
    const view = model.get("preview");
    const rgb = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    canvas.width = width; canvas.height = height;
    const pixels = new ImageData(width, height);
    for (let index = 0; index < height * width; index++) {
      pixels.data.set([rgb[3 * index], rgb[3 * index + 1], rgb[3 * index + 2], 255], 4 * index);
    }
    const context = canvas.getContext("2d");
    context.putImageData(pixels, 0, 0);
    const [photoH, photoW] = model.get("photo_size");
    const [top, left, boxH, boxW] = model.get("box");
    const sy = height / photoH, sx = width / photoW;
    context.lineWidth = 3; context.strokeStyle = "#000";
    context.strokeRect(left * sx, top * sy, Math.max(2, boxW * sx), Math.max(2, boxH * sy));
    context.lineWidth = 1.5; context.strokeStyle = "#ffff00";
    context.strokeRect(left * sx, top * sy, Math.max(2, boxW * sx), Math.max(2, boxH * sy));
    caption.textContent = model.get("caption");
    el.dataset.box = model.get("box").join(",");
  }

  canvas.addEventListener("pointerdown", (event) => {
    const box = canvas.getBoundingClientRect();
    const [photoH, photoW] = model.get("photo_size");
    const y = Math.floor((event.clientY - box.top - canvas.clientTop) / canvas.clientHeight * photoH);
    const x = Math.floor((event.clientX - box.left - canvas.clientLeft) / canvas.clientWidth * photoW);
    model.set("centre", [Math.min(photoH - 1, Math.max(0, y)), Math.min(photoW - 1, Math.max(0, x))]);
    model.save_changes();
  });
  model.on("change:box", draw);
  model.on("change:preview", draw);
  model.on("change:caption", draw);
  draw();
}

export default { render };
