#!/usr/bin/env python
"""Render the EmojiVOC sprite sheet from Noto Color Emoji (run once; the outputs are committed).

Writes into ``lcmc_core/images/assets/``:

* ``emoji_voc_sprites.png`` -- one RGBA sheet with one sprite per PASCAL VOC class, each trimmed
  to its alpha bounding box and downscaled so that its longer side is ``--max-side`` pixels;
* ``emoji_voc_sprites.json`` -- the index: class name, emoji, code points and box in the sheet,
  in the official VOC class order, plus the sheet's SHA-256;
* ``NotoColorEmoji-LICENSE.txt`` -- the font's licence notice (SIL Open Font License 1.1).

Scene generation (``lcmc_core.images.toyworld``) reads only the committed sheet, never the font, so the
rendered toy world is the same on every machine. Needs Pillow and the Noto Color Emoji font
(Debian/Ubuntu: ``apt-get install fonts-noto-color-emoji``).

Usage: ``python scripts/render_sprites.py [--font PATH] [--max-side 64]``
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lcmc_core.text.labels import get_label_set  # noqa: E402

ASSETS = REPO / "lcmc_core" / "images" / "assets"
SHEET_NAME = "emoji_voc_sprites.png"
INDEX_NAME = "emoji_voc_sprites.json"
LICENSE_NAME = "NotoColorEmoji-LICENSE.txt"
DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
DEBIAN_COPYRIGHT = "/usr/share/doc/fonts-noto-color-emoji/copyright"
FONT_SIZE = 109  # the only size of the font's colour bitmaps (CBDT strikes)
COLUMNS = 5
PAD = 1  # transparent pixels between sprites so that resampling never bleeds across boxes

# One emoji per VOC class, in the official class order.
EMOJI = {
    "aeroplane": "\u2708\ufe0f",      # airplane
    "bicycle": "\U0001f6b2",          # bicycle
    "bird": "\U0001f426",             # bird
    "boat": "\u26f5",                 # sailboat
    "bottle": "\U0001f37e",           # bottle with popping cork
    "bus": "\U0001f68c",              # bus (side view)
    "car": "\U0001f697",              # automobile
    "cat": "\U0001f408",              # cat (full body)
    "chair": "\U0001fa91",            # chair
    "cow": "\U0001f404",              # cow (full body)
    "diningtable": "\U0001f37d\ufe0f",  # fork and knife with plate (no table emoji exists)
    "dog": "\U0001f415",              # dog (full body)
    "horse": "\U0001f40e",            # horse
    "motorbike": "\U0001f3cd\ufe0f",  # motorcycle
    "person": "\U0001f9cd",           # person standing
    "pottedplant": "\U0001fab4",      # potted plant
    "sheep": "\U0001f411",            # ewe
    "sofa": "\U0001f6cb\ufe0f",       # couch and lamp
    "train": "\U0001f682",            # locomotive (side view)
    "tvmonitor": "\U0001f4fa",        # television
}

LICENSE_HEADER = """\
The sprites in emoji_voc_sprites.png are derived from Noto Color Emoji
(https://github.com/googlefonts/noto-emoji), rendered from the font file
NotoColorEmoji.ttf shipped by Debian's fonts-noto-color-emoji package (version {version}),
then trimmed and downscaled by scripts/render_sprites.py.

Noto Color Emoji: Copyright 2013-2017 Google Inc., Arjen Nienhuis <a.g.nienhuis@gmail.com>.
The font (and hence these derived sprites) is licensed under the SIL Open Font License,
Version 1.1, reproduced below. The rest of this repository is under its own licence.

"""


def render_emoji(font: ImageFont.FreeTypeFont, text: str) -> Image.Image:
    """Render one emoji in colour and trim it to its alpha bounding box (RGBA)."""
    canvas = Image.new("RGBA", (FONT_SIZE * 2, FONT_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((FONT_SIZE // 4, FONT_SIZE // 4), text, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    if box is None:
        raise RuntimeError(f"emoji {text!r} renders empty with this font; pick another")
    return canvas.crop(box)


def downscale(sprite: Image.Image, max_side: int) -> Image.Image:
    """Resize so the longer side is ``max_side`` (premultiplied-alpha Lanczos), then re-trim."""
    w, h = sprite.size
    f = max_side / max(w, h)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = sprite.resize(size, Image.Resampling.LANCZOS)
    box = small.getchannel("A").getbbox()
    return small.crop(box)


def font_license_text(version: str) -> str:
    """Licence notice: provenance header plus the OFL 1.1 text taken from Debian's copyright file."""
    lines = Path(DEBIAN_COPYRIGHT).read_text(encoding="utf-8").splitlines()
    # The stand-alone licence stanza (not the "Files:" stanza that merely names the licence).
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("License:") and line.split(":", 1)[1].strip() == "SIL-1.1"
                 and i > 0 and not lines[i - 1].strip())
    body = []
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break  # next stanza
        body.append("" if line.strip() == "." else line[1:])
    return LICENSE_HEADER.format(version=version) + "\n".join(body).rstrip() + "\n"


def index_json(index: dict) -> str:
    """The index as JSON with one line per sprite (readable diffs)."""
    head = {k: v for k, v in index.items() if k != "sprites"}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    rows = ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in index["sprites"])
    return text + ',\n "sprites": [\n' + rows + "\n ]\n}\n"


def debian_version() -> str:
    """Installed version of fonts-noto-color-emoji, or 'unknown'."""
    try:
        status = Path("/var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    for stanza in status.split("\n\n"):
        if "Package: fonts-noto-color-emoji\n" in stanza + "\n":
            for line in stanza.splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    return "unknown"


def main(argv=None) -> int:
    """Render the sheet, its JSON index and the licence notice into lcmc_core/images/assets/."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--font", default=DEFAULT_FONT, help="path to NotoColorEmoji.ttf")
    ap.add_argument("--max-side", type=int, default=64, help="longer side of each sprite in pixels")
    ap.add_argument("--out", type=Path, default=ASSETS, help="output folder")
    args = ap.parse_args(argv)
    if args.max_side < 8:
        ap.error(f"--max-side must be >= 8, got {args.max_side}")

    classnames = get_label_set("emoji-voc").classnames
    if set(EMOJI) != set(classnames):
        raise RuntimeError("EMOJI must map exactly the emoji-voc class names")
    font = ImageFont.truetype(args.font, FONT_SIZE)
    sprites = [downscale(render_emoji(font, EMOJI[c]), args.max_side) for c in classnames]

    cell = args.max_side + PAD
    rows = (len(sprites) + COLUMNS - 1) // COLUMNS
    sheet = Image.new("RGBA", (COLUMNS * cell + PAD, rows * cell + PAD), (0, 0, 0, 0))
    entries = []
    for i, (name, sprite) in enumerate(zip(classnames, sprites)):
        x, y = PAD + (i % COLUMNS) * cell, PAD + (i // COLUMNS) * cell
        sheet.paste(sprite, (x, y))
        entries.append({
            "class": name,
            "emoji": EMOJI[name],
            "codepoints": " ".join(f"U+{ord(ch):04X}" for ch in EMOJI[name]),
            "box": [x, y, sprite.width, sprite.height],
        })

    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    png = buf.getvalue()
    version = debian_version()
    index = {
        "description": "EmojiVOC sprites: one Noto Color Emoji per PASCAL VOC class, official order; "
                       "box = [x, y, width, height] in the sheet",
        "sheet": SHEET_NAME,
        "sheet_sha256": hashlib.sha256(png).hexdigest(),
        "max_side": args.max_side,
        "source": f"Noto Color Emoji (Debian fonts-noto-color-emoji {version}), rendered at {FONT_SIZE} px",
        "license": f"SIL Open Font License 1.1, see {LICENSE_NAME}",
        "sprites": entries,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / SHEET_NAME).write_bytes(png)
    (args.out / INDEX_NAME).write_text(index_json(index), encoding="utf-8")
    (args.out / LICENSE_NAME).write_text(font_license_text(version), encoding="utf-8")
    print(f"wrote {args.out / SHEET_NAME} ({len(png) / 1024:.1f} KiB, {sheet.width}x{sheet.height}), "
          f"{INDEX_NAME}, {LICENSE_NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
