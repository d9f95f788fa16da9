"""Runtime plumbing every training workload needs: command line, seeding, device, CPU threads, torchrun DDP."""
from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist


MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64-bit seeds; numpy takes the seed modulo 2**32


def seed_value(text: str) -> int:
    """A seed from the command line: a whole number in [0, 2**63 - 1], or one sentence saying why not."""
    try:
        seed = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be a whole number, not {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"the seed must be between 0 and {MAX_SEED}, not {text}")
    return seed


def parse_args(description: str, argv=None) -> argparse.Namespace:
    """The command line every workload's train.py accepts (run_and_time.sh passes these)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=seed_value, required=True)
    parser.add_argument("--smoke", action="store_true", help="tiny configuration used by the tests (seconds)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    parser.add_argument("--log-file", type=Path, default=None, help="MLLOG output (rank 0); default: stdout only")
    parser.add_argument("--device", default=os.environ.get("DEVICE"), help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--count-flops", type=Path, default=None, metavar="JSON",
                        help="count the model FLOPs of the first training step into JSON, then exit (invoke bench)")
    parser.add_argument("--synthetic-data", action="store_true", default=os.environ.get("SYNTHETIC_DATA") == "1",
                        help="train on the definition's synthetic stand-in dataset (never a valid result; "
                             "default: SYNTHETIC_DATA=1)")
    parser.add_argument("--save-model", type=Path, default=os.environ.get("SAVE_MODEL") or None, metavar="PT",
                        help="after the run, save the model and its lineage here (inference benchmarks serve it)")
    return parser.parse_args(argv)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def select_device(preferred: str | None = None) -> torch.device:
    """cuda > mps > cpu, unless a device is named (argument or DEVICE environment variable)."""
    if preferred:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def shutdown(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device_hint: str | None = None) -> tuple[Distributed, torch.device]:
    """Join the torchrun process group when launched by torchrun (gloo on CPU, nccl on GPU).

    Also sets CPU threads: OMP_NUM_THREADS if given, else the cores shared evenly among local processes,
    so that two processes on a 2-core laptop do not oversubscribe it.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    ctx = Distributed(int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    device = select_device(device_hint)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = int(os.environ.get("OMP_NUM_THREADS") or max(1, (os.cpu_count() or 1) // local_world))
    torch.set_num_threads(threads)
    if ctx.enabled:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ctx, device
