"""Extract the verified Visual Wake Words archive beside itself (download_dataset.sh runs this after
`python -m common.fetch download micronet_vww` has checked its sha256).

    python tiny/micronet_vww/extract_dataset.py [--data-dir DIR]

$DATA_DIR/vww/vw_coco2014_96.tar.gz  ->  $DATA_DIR/vww/vw_coco2014_96/{non_person,person}/*.jpg

Before extracting, the archive's SHA-1 is compared with the one Silicon Labs publishes for it (siliconlabs/mltk,
mltk/models/tinyml/visual_wake_words.py): the sha256 in benchmark.yaml is a third party's pin, and this check ties
it to the publisher's file. The tree is extracted into a temporary folder with tarfile's "data" filter (no
absolute paths, no `..`, no links out of the folder, no device files) and renamed into place; a stamp file
records which archive it came from, so a second run with the same archive does nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common`

from common import benchmark, fetch  # noqa: E402

SILABS_SHA1 = "a5a465082d3f396407f8b5abaf824dd5b28439c4"
ARCHIVE_ROOT = "vw_coco2014_96"  # the archive's top-level folder (its name without .tar.gz)
CLASSES = ("non_person", "person")


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract(data_dir: Path, expected_sha1: str = SILABS_SHA1) -> Path:
    """Extract the archive (verified against the definition's sha256 and the publisher's SHA-1) once; returns the
    extracted folder. Raises fetch.DatasetError with one sentence on any problem."""
    entry = benchmark.load(HERE)["dataset"]["files"][0]
    archive = Path(data_dir) / entry["path"]
    target = archive.parent / ARCHIVE_ROOT
    stamp = archive.parent / f".{ARCHIVE_ROOT}.extracted"
    if target.is_dir() and stamp.is_file() and stamp.read_text().strip() == entry["sha256"]:
        return target  # already extracted from this archive
    fetch.verify_file(entry, data_dir)  # the definition's sha256 (the archive may have changed since download)
    sha1 = sha1_of(archive)
    if sha1 != expected_sha1:
        raise fetch.DatasetError(f"{archive} matches the definition's sha256 but not the SHA-1 Silicon Labs "
                                 f"publishes for it ({expected_sha1}, got {sha1}); the sha256 pin in "
                                 f"benchmark.yaml is wrong, do not use this file")
    with tempfile.TemporaryDirectory(prefix=f".{ARCHIVE_ROOT}.", dir=archive.parent) as scratch:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError) as error:
            raise fetch.DatasetError(f"cannot extract {archive}: {error}") from None
        extracted = Path(scratch) / ARCHIVE_ROOT
        missing = [name for name in CLASSES if not (extracted / name).is_dir()]
        if missing:
            raise fetch.DatasetError(f"{archive} has no {ARCHIVE_ROOT}/{missing[0]}/ folder: not the Visual Wake "
                                     f"Words archive this benchmark expects")
        stamp.unlink(missing_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    stamp.write_text(entry["sha256"] + "\n")
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $DATA_DIR or <repo>/data")
    args = parser.parse_args()
    try:
        root = extract(args.data_dir or fetch.default_data_dir())
    except fetch.DatasetError as error:
        sys.exit(f"error: {error}")
    print(f"micronet_vww: images in {root}")
