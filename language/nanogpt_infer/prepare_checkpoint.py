"""The checkpoint nanogpt_infer serves: make the reference one, or record and check one you bring.

    python prepare_checkpoint.py make   [--smoke] [--data-dir D]   train nanogpt (reference seed) if none is there
    python prepare_checkpoint.py verify [--smoke] [--data-dir D]   the checkpoint still has its recorded sha256

The checkpoint is $CHECKPOINT, else $DATA_DIR/<checkpoint.file of benchmark.yaml>. Beside it, <file>.json records
its sha256 and lineage (the training benchmark, seed, log and its sha256, the validation loss the run reached),
which serve.py checks and logs. `make` runs the training benchmark's own run_and_time.sh with SAVE_MODEL.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from common import benchmark  # noqa: E402
from common.fetch import sha256_of  # noqa: E402


def checkpoint_path(definition: dict, data_dir: Path) -> Path:
    return Path(os.environ.get("CHECKPOINT") or data_dir / definition["checkpoint"]["file"])


def record_lineage(path: Path, training_log: Path | None) -> dict:
    """Write <checkpoint>.json: the checkpoint's sha256 and what the checkpoint says about the run that made it."""
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    lineage = {"checkpoint": path.name, "sha256": sha256_of(path), "training_benchmark": checkpoint.get("benchmark"),
               "smoke": checkpoint.get("smoke"), "training_seed": checkpoint.get("seed"),
               "training_status": checkpoint.get("status"), "training_quality": checkpoint.get("quality"),
               "training_log": str(training_log) if training_log else checkpoint.get("training_log"),
               "training_log_sha256": checkpoint.get("training_log_sha256")}
    path.with_name(path.name + ".json").write_text(json.dumps(lineage, indent=2) + "\n")
    return lineage


def verify(path: Path) -> str | None:
    """None when the checkpoint exists and matches its recorded sha256, else one sentence saying why not."""
    lineage_file = path.with_name(path.name + ".json")
    if not path.is_file():
        return f"no checkpoint at {path}"
    if not lineage_file.is_file():
        return f"{lineage_file} is missing: run download_dataset.sh to record the checkpoint's sha256"
    recorded = json.loads(lineage_file.read_text()).get("sha256")
    actual = sha256_of(path)
    if recorded != actual:
        return f"checkpoint {path} has sha256 {actual}, but {lineage_file.name} recorded {recorded}"
    return None


def make(definition: dict, data_dir: Path, smoke: bool) -> int:
    path = checkpoint_path(definition, data_dir)
    if path.is_file():
        if not path.with_name(path.name + ".json").is_file():
            record_lineage(path, None)  # a checkpoint you brought: record its sha256 once
        problem = verify(path)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        print(f"checkpoint {path}: sha256 verified")
        return 0
    if os.environ.get("CHECKPOINT"):
        print(f"error: CHECKPOINT={path} does not exist", file=sys.stderr)
        return 1
    training = definition["checkpoint"]["training_benchmark"]
    seed = str(definition["checkpoint"].get("reference_seed", 1))
    training_log = path.with_name(path.stem + ".train_log.txt")
    if training_log.exists():
        print(f"error: {training_log} exists from an earlier, unfinished attempt: remove it to train again",
              file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"no checkpoint at {path}: training the reference one ({training}, seed {seed})", flush=True)
    env = {**os.environ, "SAVE_MODEL": str(path), "LOGFILE": str(training_log), "DATA_DIR": str(data_dir),
           "SMOKE": "1" if smoke else "0", "NPROC": "1", "NNODES": "1"}
    script = benchmark.workload_dir(training) / "run_and_time.sh"
    code = subprocess.call([str(script), seed], env=env)
    if code != 0 or not path.is_file():
        print(f"error: the {training} training run did not reach its target (exit code {code}); no checkpoint "
              f"(its log: {training_log})", file=sys.stderr)
        path.unlink(missing_ok=True)
        return 1
    lineage = record_lineage(path, training_log)
    print(f"checkpoint {path}: sha256 {lineage['sha256']}, {lineage['training_quality']}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["make", "verify"])
    parser.add_argument("--smoke", action="store_true", default=os.environ.get("SMOKE") == "1")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR") or HERE.parents[1] / "data"))
    args = parser.parse_args(argv)
    definition = benchmark.load(HERE, smoke=args.smoke)
    if args.action == "make":
        return make(definition, args.data_dir, args.smoke)
    problem = verify(checkpoint_path(definition, args.data_dir))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print("checkpoint: sha256 verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
