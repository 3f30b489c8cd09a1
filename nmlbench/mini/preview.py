"""A PNG contact sheet of the mini benchmark: one labelled row per set (upstream, then each task)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nmlbench.io import atomic_path

LABEL_WIDTH = 150


def preview_grid(rows: list[tuple[str, np.ndarray]], dest: str | Path, per_row: int = 12,
                 scale: int = 2) -> Path:
    """Write a grid: each row is (title, uint8 images (n, H, W, 3)); the first `per_row` are shown."""
    h, w = rows[0][1].shape[1:3]
    cell_h, cell_w = h * scale + 4, w * scale + 4
    sheet = Image.new("RGB", (LABEL_WIDTH + per_row * cell_w, len(rows) * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (title, images) in enumerate(rows):
        y0 = r * cell_h
        draw.text((4, y0 + cell_h // 2 - 6), title, fill=(0, 0, 0))
        for c, img in enumerate(images[:per_row]):
            tile = Image.fromarray(img).resize((w * scale, h * scale), Image.NEAREST)
            sheet.paste(tile, (LABEL_WIDTH + c * cell_w + 2, y0 + 2))
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        sheet.save(tmp, format="PNG")
    return dest
