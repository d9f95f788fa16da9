"""common/energy.py: joules from real counters (RAPL through powercap, NVML), or "unmeasured" with the reason;
never a constant. The counters are simulated here (a powercap tree in a temporary folder, a stand-in pynvml),
since this machine has neither; the training log carries the record of whatever the machine has."""
from __future__ import annotations

import sys
import types

import pytest

from common import energy


def powercap(root, packages: dict[str, int], wrap_uj: int = 262_143_328_850):
    """A powercap tree: intel-rapl:<n> package domains (with a core sub-domain that must not be added again)."""
    for index, (name, microjoules) in enumerate(packages.items()):
        domain = root / f"intel-rapl:{index}"
        domain.mkdir(parents=True)
        (domain / "name").write_text(name + "\n")
        (domain / "energy_uj").write_text(f"{microjoules}\n")
        (domain / "max_energy_range_uj").write_text(f"{wrap_uj}\n")
        core = root / f"intel-rapl:{index}:0"
        core.mkdir()
        (core / "name").write_text("core\n")
        (core / "energy_uj").write_text("999999999\n")
    return root


def set_uj(root, index: int, microjoules: int):
    (root / f"intel-rapl:{index}" / "energy_uj").write_text(f"{microjoules}\n")


def test_rapl_packages_are_summed_and_subdomains_not_added(tmp_path):
    root = powercap(tmp_path / "powercap", {"package-0": 1_000_000, "package-1": 5_000_000})
    meter = energy.EnergyMeter(powercap_root=root, use_nvml=False)
    meter.start()
    set_uj(root, 0, 31_000_000)   # +30 J
    set_uj(root, 1, 17_500_000)   # +12.5 J
    record = meter.stop()
    assert record["measured"] is True and record["sources"] == ["rapl"]
    assert record["joules"] == pytest.approx(42.5)
    assert record["seconds"] > 0 and record["mean_watts"] == pytest.approx(42.5 / record["seconds"], rel=1e-2)
    assert set(record["counters"]) == {"package-0 (intel-rapl:0)", "package-1 (intel-rapl:1)"}


def test_a_wrapped_rapl_counter_is_accounted_for(tmp_path):
    root = powercap(tmp_path / "powercap", {"package-0": 262_000_000_000}, wrap_uj=262_143_328_850)
    meter = energy.EnergyMeter(powercap_root=root, use_nvml=False)
    meter.start()
    set_uj(root, 0, 856_671_150)  # wrapped: 143.32885 J to the top, then 856.67115 J
    assert meter.stop()["joules"] == pytest.approx(1000.0)


def test_no_counter_is_unmeasured_with_the_reason(tmp_path):
    meter = energy.EnergyMeter(powercap_root=tmp_path / "absent", use_nvml=False)
    meter.start()
    record = meter.stop()
    assert record["measured"] is False and "joules" not in record
    assert "no " + str(tmp_path / "absent") in record["reason"]


def test_an_unreadable_counter_is_named(tmp_path, monkeypatch):
    root = powercap(tmp_path / "powercap", {"package-0": 1})
    real_read = energy.Path.read_text

    def read_text(path, *args, **kwargs):
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(energy.Path, "read_text", read_text)
    counters, why = energy.rapl_counters(root)
    assert counters == [] and "energy_uj: readable by root only" in why


def test_nvml_counters_are_read_in_millijoules(tmp_path, monkeypatch):
    readings = {0: 10_000, 1: 20_000}
    fake = types.SimpleNamespace(
        NVMLError=RuntimeError, nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetName=lambda h: f"NVIDIA H200 #{h}",
        nvmlDeviceGetTotalEnergyConsumption=lambda h: readings[h])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter = energy.EnergyMeter(powercap_root=tmp_path / "absent")
    meter.start()
    readings[0] += 150_000  # 150 J
    readings[1] += 50_500   # 50.5 J
    record = meter.stop()
    assert record["measured"] is True and record["sources"] == ["nvml"]
    assert record["joules"] == pytest.approx(200.5)
    assert any(reason.startswith("rapl: no ") for reason in record["not_measured"])  # the CPU side says why


def test_a_counter_failing_mid_run_makes_the_figure_unmeasured(tmp_path):
    root = powercap(tmp_path / "powercap", {"package-0": 1_000_000})
    meter = energy.EnergyMeter(powercap_root=root, use_nvml=False)
    meter.start()
    (root / "intel-rapl:0" / "energy_uj").unlink()
    record = meter.stop()
    assert record["measured"] is False and "read failed at the end" in record["reason"]


def test_the_training_log_carries_the_energy_record(smoke_logs):
    _, _, events = smoke_logs("micro_gcn")
    keys = [e["key"] for e in events]
    record = events[keys.index("energy")]["value"]
    assert keys.index("run_start") < keys.index("energy") < keys.index("run_stop")
    assert isinstance(record["measured"], bool)
    if record["measured"]:
        assert record["joules"] >= 0 and record["sources"]
    else:
        assert record["reason"]  # this machine: no powercap interface and no NVIDIA driver, said as such
