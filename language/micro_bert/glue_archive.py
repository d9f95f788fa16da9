"""Unpack SST-2's train.tsv and dev.tsv from the canonical GLUE archive into DATA_DIR/sst2/ (download_dataset.sh
runs this when no DATASET_MIRROR is set). The archive itself is not kept; the files it leaves are checked against
benchmark.yaml's sha256 by `common.fetch download`, which then finds them present and fetches nothing.

    python language/micro_bert/glue_archive.py [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from common import benchmark, fetch  # noqa: E402

MEMBER_DIR = "SST-2"  # the archive holds SST-2/train.tsv, SST-2/dev.tsv, SST-2/test.tsv and SST-2/original/


def unpack(archive: Path, definition: dict, data_dir: Path) -> None:
    """Write each dataset file of the definition from the archive member of the same name."""
    with zipfile.ZipFile(archive) as zf:
        for entry in definition["dataset"]["files"]:
            member = f"{MEMBER_DIR}/{Path(entry['path']).name}"
            dest = fetch.destination(entry, data_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as source, open(dest, "wb") as target:
                shutil.copyfileobj(source, target)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $DATA_DIR or <repo>/data")
    args, _ = parser.parse_known_args(argv)
    definition = benchmark.load(HERE)
    data_dir = Path(args.data_dir or fetch.default_data_dir())
    if all(fetch.destination(e, data_dir).is_file() for e in definition["dataset"]["files"]):
        return 0  # already there; `common.fetch download` verifies them
    url = definition["dataset"]["files"][0]["url"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "SST-2.zip"
            with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
            unpack(archive, definition, data_dir)
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        print(f"error: cannot unpack SST-2 from {url}: {error} (set DATASET_MIRROR to a mirror holding "
              f"sst2/train.tsv and sst2/dev.tsv)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
