"""Write the synthetic pipeline fixture of micronet_vww: JPEG images in the extracted layout of the real Visual
Wake Words archive (vw_coco2014_96.tar.gz), so the same loader reads both.

    python tiny/micronet_vww/make_fixture.py --data-dir DIR [--smoke]

writes DIR/vww_synthetic_fixture/vw_coco2014_96/{non_person,person}/fixture_NNNNNN.jpg (96x96 RGB, JPEG quality
90) and, last, DIR/vww_synthetic_fixture/SHA256SUMS (`<sha256>  <relative path>` per file, sorted, every file but
itself). It is a FIXTURE for testing the pipeline, not a proxy task: "person" images are a bright, thick stick
figure (head, body, arms, legs) on a muted random two-colour background with clutter, "non_person" images are the
same kind of background and clutter with no figure. Nothing a model learns on it, and no accuracy measured on it, says
anything about Visual Wake Words. Deterministic: every image comes from its own seeded random generator.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import random
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common`

from common import benchmark  # noqa: E402

SIZE = 96
JPEG_QUALITY = 90
IMAGES_PER_CLASS = {"smoke": 160, "full": 1000}
ARCHIVE_ROOT = "vw_coco2014_96"  # the directory the real archive extracts to
CLASSES = ("non_person", "person")


def _colour(rng: random.Random, low: int = 0, high: int = 255) -> tuple[int, int, int]:
    return tuple(rng.randint(low, high) for _ in range(3))


def draw_image(index: int, person: bool) -> Image.Image:
    """One fixture image; its content depends only on (index, person). Backgrounds and clutter use muted colours
    (channels 0-150), the figure a bright one (200-255) and thick strokes, so a few training steps can pick it up."""
    rng = random.Random(f"micronet_vww-fixture-{index}-{int(person)}")
    image = Image.new("RGB", (SIZE, SIZE), _colour(rng, 0, 150))
    draw = ImageDraw.Draw(image)
    horizon = rng.randint(30, 70)  # a "ground" band of another colour
    draw.rectangle([0, horizon, SIZE, SIZE], fill=_colour(rng, 0, 150))
    for _ in range(rng.randint(1, 4)):  # clutter: rectangles and ellipses
        x, y = rng.randint(-10, SIZE), rng.randint(-10, SIZE)
        w, h = rng.randint(6, 30), rng.randint(6, 30)
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([x, y, x + w, y + h], fill=_colour(rng, 0, 150))
    if person:  # a stick figure, 50-80 pixels tall, somewhere in the frame
        height = rng.randint(50, 80)
        cx, top = rng.randint(22, SIZE - 22), rng.randint(2, SIZE - height - 2)
        colour, width = _colour(rng, 200, 255), max(4, height // 8)
        head = height // 6
        draw.ellipse([cx - head, top, cx + head, top + 2 * head], fill=colour)
        neck, hip = top + 2 * head, top + int(height * 0.62)
        draw.line([cx, neck, cx, hip], fill=colour, width=width)
        arm_y, span = neck + head // 2, height // 4
        draw.line([cx - span, arm_y + rng.randint(-span, span), cx, arm_y], fill=colour, width=width)
        draw.line([cx + span, arm_y + rng.randint(-span, span), cx, arm_y], fill=colour, width=width)
        foot = top + height
        draw.line([cx, hip, cx - span // 1.5, foot], fill=colour, width=width)
        draw.line([cx, hip, cx + span // 1.5, foot], fill=colour, width=width)
    return image


def write_sha256sums(root: Path) -> Path:
    """root/SHA256SUMS: `<sha256>  <relative path>` for every file under root except itself, sorted by path."""
    sums = root / "SHA256SUMS"
    files = sorted(p for p in root.rglob("*") if p.is_file() and p != sums)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}" for p in files]
    sums.write_text("".join(line + "\n" for line in lines))
    return sums


def generate(data_dir: Path, smoke: bool) -> Path:
    """Write the fixture (replacing any previous one) and its SHA256SUMS; returns its directory."""
    directory = benchmark.load(HERE)["dataset"]["synthetic"]["directory"]
    root = Path(data_dir) / directory
    if root.exists():
        shutil.rmtree(root)
    count = IMAGES_PER_CLASS["smoke" if smoke else "full"]
    for label, name in enumerate(CLASSES):
        folder = root / ARCHIVE_ROOT / name
        folder.mkdir(parents=True)
        for i in range(count):
            buffer = io.BytesIO()
            draw_image(i, person=bool(label)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
            (folder / f"fixture_{i:06d}.jpg").write_bytes(buffer.getvalue())
    write_sha256sums(root)
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true", help=f"{IMAGES_PER_CLASS['smoke']} images per class "
                                                             f"(default {IMAGES_PER_CLASS['full']})")
    args = parser.parse_args()
    print(f"synthetic fixture written to {generate(args.data_dir, args.smoke)}")
