"""tiny/micronet_vww: the synthetic fixture (layout, SHA256SUMS, determinism), image decoding, MLPerf Tiny's
deterministic split, the archive extraction, the model (parameter count, Keras padding, sizes), the augmentation,
and a leak check showing that nothing a training run decides depends on the validation split."""
from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "tiny" / "micronet_vww"
sys.path.insert(0, str(REPO))

from common import benchmark, fetch, model_size  # noqa: E402
from conftest import workload_modules  # noqa: E402

model_mod, train_mod, fixture_mod, extract_mod = workload_modules("micronet_vww", "model", "train", "make_fixture",
                                                                   "extract_dataset")
DEFINITION = benchmark.load(WORKLOAD)
SMOKE = benchmark.load(WORKLOAD, smoke=True)


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> Path:
    """A data directory holding the --smoke fixture, written by the generator itself."""
    data_dir = tmp_path_factory.mktemp("vww_data")
    fixture_mod.generate(data_dir, smoke=True)
    return data_dir


def test_fixture_layout_and_sha256sums(fixture_dir, tmp_path):
    root = fixture_dir / DEFINITION["dataset"]["synthetic"]["directory"]
    images = root / "vw_coco2014_96"
    assert sorted(p.name for p in images.iterdir()) == ["non_person", "person"]
    per_class = fixture_mod.IMAGES_PER_CLASS["smoke"]
    for name in ("non_person", "person"):
        files = sorted((images / name).iterdir())
        assert len(files) == per_class and all(f.suffix == ".jpg" for f in files)
    lines = (root / "SHA256SUMS").read_text().splitlines()
    listed = [line.split("  ", 1)[1] for line in lines]
    assert listed == sorted(listed)
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    assert listed == on_disk
    for line in lines[:5] + lines[-5:]:
        digest, rel = line.split("  ", 1)
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest
    assert fetch.verify_synthetic(DEFINITION, fixture_dir)  # the harness accepts it
    # deterministic: a second generation writes the same bytes
    fixture_mod.generate(tmp_path, smoke=True)
    assert (tmp_path / root.name / "SHA256SUMS").read_bytes() == (root / "SHA256SUMS").read_bytes()
    # a corrupted image is caught by the harness's check
    victim = tmp_path / root.name / listed[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    with pytest.raises(fetch.DatasetError, match="checksum mismatch"):
        fetch.verify_synthetic(DEFINITION, tmp_path)


def test_image_root_real_and_synthetic(tmp_path):
    assert train_mod.image_root(DEFINITION, tmp_path, False) == tmp_path / "vww" / "vw_coco2014_96"
    assert train_mod.image_root(DEFINITION, tmp_path, True) == tmp_path / "vww_synthetic_fixture" / "vw_coco2014_96"


def test_decode_to_96x96x3_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    Image.new("L", (120, 80), 200).save(gray)  # grayscale, another size: converted to RGB, resized (nearest)
    colour = tmp_path / "colour.jpg"
    Image.new("RGB", (96, 96), (250, 10, 10)).save(colour, quality=95)
    out = train_mod.decode_images([gray, colour], 96)
    assert out.shape == (2, 3, 96, 96) and out.dtype == torch.uint8
    assert (out[0] == 200).all()
    assert out[1, 0].float().mean() > 240 and out[1, 1].float().mean() < 20


def test_split_is_mlperf_tinys_and_disjoint(tmp_path):
    """Keras' validation_split=0.1: per class, sorted names, the first int(0.1 * n) validate, the rest train."""
    root = tmp_path / "vw_coco2014_96"
    names = {"non_person": [f"COCO_train2014_{i:012d}.jpg" for i in (5, 3, 99, 12, 7, 40, 1, 8, 60, 2, 33, 21)],
             "person": [f"COCO_val2014_{i:012d}.jpg" for i in range(25)] + [f"COCO_train2014_{i:012d}.jpg" for i in (9, 4)]}
    for cls, files in names.items():
        (root / cls).mkdir(parents=True)
        for f in files:
            (root / cls / f).write_bytes(b"")
        (root / cls / "notes.txt").write_text("not an image")  # ignored, as Keras ignores other extensions
    splits = train_mod.split_files(root, DEFINITION["dataset"]["validation_split"])
    val_paths, val_labels = splits["val"]
    train_paths, train_labels = splits["train"]
    expected_val = [root / "non_person" / n for n in sorted(names["non_person"])[:1]] + \
                   [root / "person" / n for n in sorted(names["person"])[:2]]
    assert val_paths == expected_val and val_labels == [0, 1, 1]
    assert len(train_paths) == 11 + 25 and train_labels == [0] * 11 + [1] * 25
    assert not set(val_paths) & set(train_paths)
    assert set(val_paths) | set(train_paths) == {root / c / n for c, ns in names.items() for n in ns}
    assert splits == train_mod.split_files(root, 0.1)  # deterministic


def test_fixture_splits_and_normalisation_from_training_images(fixture_dir):
    data = train_mod.load_splits(SMOKE, fixture_dir, True)
    (train_x, train_y), (val_x, val_y) = data["train"], data["val"]
    per_class = fixture_mod.IMAGES_PER_CLASS["smoke"]
    assert train_x.shape == (2 * (per_class - per_class // 10), 3, 96, 96) and train_x.dtype == torch.uint8
    assert val_x.shape == (2 * (per_class // 10), 3, 96, 96)
    assert val_y.bincount().tolist() == [per_class // 10] * 2
    mean, std = train_mod.channel_stats(train_x)
    pixels = train_x.double().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    assert torch.allclose(mean, pixels.mean(dim=1)) and torch.allclose(std, pixels.std(dim=1, correction=0))
    x = train_mod.make_inputs(train_x, mean, std, "cpu", torch.float64)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(x.std(dim=(0, 2, 3), correction=0), torch.ones(3, dtype=torch.float64), atol=1e-9)


def test_parameter_count_and_shapes():
    model = model_mod.MobileNetV1(model_mod.MobileNetConfig(**DEFINITION["model"]))
    channels, count, stats = 8, 3 * 3 * 3 * 8 + 8 + 2 * 8, 2 * 8  # first conv (kernel + bias) + its BN
    for _, multiplier in model_mod.BLOCKS:
        out = channels * multiplier
        count += 9 * channels + channels + 2 * channels + channels * out + out + 2 * out
        stats += 2 * channels + 2 * out
        channels = out
    count += 256 * 2 + 2
    assert model_size.parameter_count(model) == count == 216_322
    assert count + stats == 221_794  # Keras' "Total params" also counts BN's moving mean and variance
    x = torch.zeros(2, 3, 96, 96)
    sizes = []
    for layer in model.features:
        x = layer(x)
        sizes.append(x.shape[-1])
    assert sorted(set(sizes), reverse=True) == [48, 24, 12, 6, 3] and x.shape[1] == 256


def test_keras_same_padding_at_stride_2():
    """TF 'same' at stride 2 on an even input pads 0 before and 1 after: output pixel (0, 0) sees input rows and
    columns 0-2, not -1..1 as PyTorch's symmetric padding would."""
    layer = model_mod.ConvBNReLU(1, 1, 3, 2, 1, model_mod.MobileNetConfig())
    conv = layer[1]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left pixel of each 3x3 window
        conv.bias.zero_()
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert layer[1](layer[0](x))[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]


def test_model_sizes_fit_the_tiny_budget():
    model = model_mod.MobileNetV1(model_mod.MobileNetConfig(**DEFINITION["model"]))
    fp32, int8 = model_size.size_kb(model), model_size.int8_size_kb(model)
    # MLPerf Tiny's reference int8 .tflite of this network is 334.2 kB (siliconlabs/mltk model summary); the
    # reference board (STM32L4R5ZI) has 2 MB of flash
    assert int8 < fp32 / 2.5 and int8 < 400 and fp32 < 1024


def test_augmentation_identity_flip_and_shift():
    x = torch.rand(2, 3, 96, 96, dtype=torch.float64)
    identity = torch.tensor([[0.0, 0, 0, 1, 1, 0]] * 2, dtype=torch.float64)
    assert torch.allclose(train_mod.augment(x, identity), x, atol=1e-9)
    flip = torch.tensor([[0.0, 0, 0, 1, 1, 1]] * 2, dtype=torch.float64)
    assert torch.allclose(train_mod.augment(x, flip), x.flip(-1), atol=1e-9)
    shift = torch.tensor([[0.0, 3 / 96, 0, 1, 1, 0]] * 2, dtype=torch.float64)  # sample 3 pixels to the right
    assert torch.allclose(train_mod.augment(x, shift)[..., :-3], x[..., 3:], atol=1e-9)
    params = train_mod.draw_augmentation(4096, DEFINITION["hyperparameters"], torch.Generator().manual_seed(0))
    assert params[:, 0].abs().max() <= torch.pi * 10 / 180 and params[:, 1:3].abs().max() <= 0.05
    assert params[:, 3:5].min() >= 0.9 and params[:, 3:5].max() <= 1.1
    assert 0.45 < params[:, 5].mean() < 0.55


def _fake_archive(fixture_dir: Path, archive: Path) -> None:
    """A small archive in the real one's layout (vw_coco2014_96/{non_person,person}/*.jpg), from fixture images."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    source = fixture_dir / DEFINITION["dataset"]["synthetic"]["directory"] / "vw_coco2014_96"
    with tarfile.open(archive, "w:gz") as tar:
        for cls in ("non_person", "person"):
            for f in sorted((source / cls).iterdir())[:20]:
                tar.add(f, arcname=f"vw_coco2014_96/{cls}/{f.name}")


def _with_archive(monkeypatch, archive: Path) -> None:
    definition = json.loads(json.dumps(DEFINITION))
    definition["dataset"]["files"][0].update(sha256=fetch.sha256_of(archive), bytes=archive.stat().st_size)
    monkeypatch.setattr(extract_mod.benchmark, "load", lambda *args, **kwargs: definition)


def test_extract_dataset_reads_like_the_fixture(fixture_dir, tmp_path, monkeypatch):
    archive = tmp_path / DEFINITION["dataset"]["files"][0]["path"]
    _fake_archive(fixture_dir, archive)
    _with_archive(monkeypatch, archive)
    sha1 = extract_mod.sha1_of(archive)
    with pytest.raises(fetch.DatasetError, match="SHA-1"):
        extract_mod.extract(tmp_path)  # not Silicon Labs' file
    root = extract_mod.extract(tmp_path, expected_sha1=sha1)
    assert root == train_mod.image_root(DEFINITION, tmp_path, False)
    assert extract_mod.extract(tmp_path, expected_sha1="skipped: already extracted from this archive") == root
    splits = train_mod.split_files(root, DEFINITION["dataset"]["validation_split"])
    assert [len(splits[s][0]) for s in ("train", "val")] == [36, 4]
    # the archive, its extracted folder and the stamp; no scratch folder left behind
    assert sorted(p.name for p in archive.parent.iterdir()) == [".vw_coco2014_96.extracted", "vw_coco2014_96",
                                                                  "vw_coco2014_96.tar.gz"]


def test_extract_refuses_an_escaping_member(tmp_path, monkeypatch):
    archive = tmp_path / DEFINITION["dataset"]["files"][0]["path"]
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        payload = b"evil"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    _with_archive(monkeypatch, archive)
    with pytest.raises(fetch.DatasetError, match="cannot extract"):
        extract_mod.extract(tmp_path, expected_sha1=extract_mod.sha1_of(archive))
    assert not (tmp_path / "escaped.txt").exists()


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_no_decision_depends_on_the_validation_split(fixture_dir, tmp_path, monkeypatch):
    """Replacing every validation image by noise and flipping every validation label leaves the training run
    (its losses, hence normalisation, data order, augmentation, updates) unchanged; only the scores move."""
    real_loader = train_mod.load_splits

    def scrambled(definition, data_dir, synthetic):
        data = real_loader(definition, data_dir, synthetic)
        val_x, val_y = data["val"]
        noise = torch.randint(0, 256, val_x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        data["val"] = (noise, 1 - val_y)
        return data

    real_load = benchmark.load

    def never_stops(path, smoke=False):  # the smoke run with an unreachable target: the same number of steps
        definition = real_load(path, smoke=smoke)
        definition["quality"] = {**definition["quality"], "target": 1.5, "max_steps": 4}
        return definition

    monkeypatch.setattr(benchmark, "load", never_stops)
    runs = {}
    for name, loader in (("real", real_loader), ("scrambled", scrambled)):
        monkeypatch.setattr(train_mod, "load_splits", loader)
        log = tmp_path / f"{name}.txt"
        train_mod.main(["--seed", "3", "--smoke", "--synthetic-data", "--data-dir", str(fixture_dir),
                        "--log-file", str(log), "--device", "cpu"])
        runs[name] = _events(log)
    losses = {name: [e["value"] for e in events if e["key"] == "train_loss"] for name, events in runs.items()}
    assert len(losses["real"]) == 2 and losses["real"] == losses["scrambled"]
    scores = {name: [e["value"] for e in events if e["key"] == "eval_accuracy"] for name, events in runs.items()}
    assert scores["real"] != scores["scrambled"]
    assert max(scores["real"]) >= 0.8  # on the fixture the smoke run learns (a pipeline check, not a result)
