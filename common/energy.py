"""Energy of the timed region, measured from real counters or honestly absent.

    meter = EnergyMeter()          # finds the counters this machine exposes
    meter.start()                  # at run_start
    ...
    record = meter.stop()          # at run_stop: {"measured": True, "joules": ..., "mean_watts": ..., ...}
                                   #           or {"measured": False, "reason": "..."}

Sources (each read only where it is there; never a constant, never an estimate from a TDP):
- CPU packages: Linux RAPL through the powercap interface, /sys/class/powercap/intel-rapl:<n>/energy_uj (the
  package domains; their sub-domains, core and uncore, are inside the package figure and are not added again).
  The counter wraps at max_energy_range_uj; one wrap per interval is accounted for.
- NVIDIA GPUs: NVML's total energy counter (nvmlDeviceGetTotalEnergyConsumption, millijoules, Volta and newer)
  through nvidia-ml-py, for every GPU the process can see.

A source that cannot be read says why ("no /sys/class/powercap", "energy_uj is readable by root only",
"nvidia-ml-py is not installed", "no NVIDIA driver"), and the record keeps every reason, so a reviewer knows
whether a run without an energy figure had no counter or could not read it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


@dataclass
class _Counter:
    """One monotonic energy counter in joules, with the value where it wraps (None: it does not wrap)."""
    name: str
    source: str
    read: callable
    wrap_joules: float | None = None
    start: float | None = None


def rapl_counters(root: Path = POWERCAP) -> tuple[list[_Counter], str | None]:
    """The package-level RAPL counters under root, or ([], why not)."""
    if not root.is_dir():
        return [], f"no {root} (no RAPL powercap interface on this machine or in this container)"
    packages = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not packages:
        return [], f"{root} has no intel-rapl package domains"
    counters, problems = [], []
    for domain in packages:
        energy = domain / "energy_uj"
        try:
            int(energy.read_text())
        except OSError as error:
            reason = "readable by root only" if isinstance(error, PermissionError) else (error.strerror or str(error))
            problems.append(f"{energy}: {reason}")
            continue
        try:
            wrap = int((domain / "max_energy_range_uj").read_text()) / 1e6
        except (OSError, ValueError):
            wrap = None
        try:
            label = (domain / "name").read_text().strip()
        except OSError:
            label = domain.name
        counters.append(_Counter(f"{label} ({domain.name})", "rapl",
                                 lambda path=energy: int(path.read_text()) / 1e6, wrap))
    return counters, ("; ".join(problems) or None) if not counters else None


def nvml_counters() -> tuple[list[_Counter], str | None]:
    """One NVML total-energy counter per visible NVIDIA GPU, or ([], why not)."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py (pynvml) is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return [], f"NVML cannot start ({error}): no NVIDIA driver or GPU"
    counters, problems = [], []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except pynvml.NVMLError as error:
            problems.append(f"GPU {index} ({name}): {error}")
            continue
        counters.append(_Counter(f"GPU {index} ({name})", "nvml",
                                 lambda h=handle: pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1e3))
    if not counters:
        return [], "; ".join(problems) or "NVML sees no GPU"
    return counters, None


@dataclass
class EnergyMeter:
    """Joules and mean watts over an interval, summed over every counter found (CPU packages and GPUs)."""
    powercap_root: Path = POWERCAP
    use_nvml: bool = True
    counters: list = field(default_factory=list)
    unavailable: list = field(default_factory=list)   # "source: reason" of each source that could not be read
    _t0: float | None = None

    def __post_init__(self):
        sources = [("rapl", lambda: rapl_counters(self.powercap_root))]
        if self.use_nvml:
            sources.append(("nvml", nvml_counters))
        for label, find in sources:
            found, why = find()
            self.counters += found
            if why:
                self.unavailable.append(f"{label}: {why}")

    def start(self) -> None:
        self._t0 = time.perf_counter()
        for counter in self.counters:
            counter.start = counter.read()

    def stop(self) -> dict:
        """The interval's record. Every counter is read again; a counter that fails mid-run makes the whole
        figure unmeasured (a partial sum would understate the energy)."""
        if self._t0 is None:
            raise RuntimeError("EnergyMeter.stop() before start()")
        seconds = time.perf_counter() - self._t0
        if not self.counters:
            return {"measured": False, "reason": "; ".join(self.unavailable) or "no energy counter found",
                    "seconds": round(seconds, 6)}
        per_counter = {}
        for counter in self.counters:
            try:
                end = counter.read()
            except Exception as error:  # noqa: BLE001  (a driver or sysfs failure: report it, never guess)
                return {"measured": False, "reason": f"{counter.name}: read failed at the end ({error})",
                        "seconds": round(seconds, 6)}
            delta = end - counter.start
            if delta < 0 and counter.wrap_joules:
                delta += counter.wrap_joules
            per_counter[counter.name] = {"source": counter.source, "joules": round(delta, 3)}
        joules = sum(c["joules"] for c in per_counter.values())
        record = {"measured": True, "joules": round(joules, 3),
                  "mean_watts": round(joules / seconds, 3) if seconds > 0 else None, "seconds": round(seconds, 6),
                  "sources": sorted({c["source"] for c in per_counter.values()}), "counters": per_counter}
        if self.unavailable:
            record["not_measured"] = self.unavailable  # e.g. the GPU counted, the CPU packages not readable
        return record


def main() -> int:
    """python -m common.energy: which counters this machine exposes, and one second's reading."""
    meter = EnergyMeter()
    meter.start()
    time.sleep(1.0)
    record = meter.stop()
    print(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
