"""tiny/ds_cnn_kws: the real archives in the definition, the MFCCs against a direct computation, the synthetic
corpus (layout, SHA256SUMS, speaker-disjoint splits, determinism), the splits as tfds makes them, the model's
size, and a leak check showing that no decision of a training run depends on the test split."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "tiny" / "ds_cnn_kws"
sys.path.insert(0, str(REPO))

from common import benchmark  # noqa: E402
from conftest import workload_modules  # noqa: E402

model_mod, train_mod, sc, gen = workload_modules("ds_cnn_kws", "model", "train", "speech_commands",
                                                 "make_synthetic_speech_commands")
DEFINITION = benchmark.load(WORKLOAD)
SYNTHETIC = DEFINITION["dataset"]["synthetic"]["directory"]


@pytest.fixture(scope="module")
def corpus(data_dir) -> Path:  # conftest writes the --smoke synthetic corpus there (the archives are not mirrored)
    root = data_dir / SYNTHETIC
    if not (root / "SHA256SUMS").is_file():
        pytest.skip("no synthetic corpus in the session data dir (the real archives are mirrored instead)")
    return root


def test_definition_names_the_published_archives():
    """Speech Commands v0.02 and its test-set archive, with the sizes and sha256 that tensorflow_datasets
    publishes (url_checksums/speech_commands.txt; torchaudio's _CHECKSUMS agrees on the main archive)."""
    files = {entry["url"]: (entry["bytes"], entry["sha256"], entry["path"]) for entry in DEFINITION["dataset"]["files"]}
    assert files == {
        "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz": (
            2428923189, "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
            "speech_commands/speech_commands_v0.02.tar.gz"),
        "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz": (
            112563277, "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df",
            "speech_commands/speech_commands_test_set_v0.02.tar.gz"),
    }
    assert DEFINITION["quality"]["target"] == 0.90  # MLPerf Tiny's keyword-spotting target
    assert DEFINITION["dataset"]["synthetic"]["generator"] == "make_synthetic_speech_commands.py"
    main, test = sc.trees(DEFINITION, Path("/d"))
    assert (main, test) == (Path("/d/speech_commands/speech_commands_v0.02"),
                            Path("/d/speech_commands/speech_commands_test_set_v0.02"))
    main, test = sc.trees(DEFINITION, Path("/d"), synthetic=True)
    assert (main.parent, test.parent) == (Path("/d") / SYNTHETIC, Path("/d") / SYNTHETIC)


# --- features ---------------------------------------------------------------------------------------------------

def tf_mfcc_by_hand(clip: np.ndarray) -> np.ndarray:
    """MLPerf Tiny's tf.signal pipeline written out with numpy alone (float64), from TensorFlow's definitions."""
    x = clip.astype(np.float64)
    x = np.pad(x / x.max(), (0, 16000 - len(x)))
    n = np.arange(480)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / 480)  # tf.signal.hann_window(480, periodic=True)
    frames = np.stack([x[t * 320:t * 320 + 480] * window for t in range(49)])
    spectrum = np.abs(np.fft.rfft(frames, n=512))  # tf.signal.stft pads each frame to fft_length at its end
    mel = lambda f: 1127.0 * np.log1p(f / 700.0)  # noqa: E731  tf.signal's _hertz_to_mel
    bins = mel(np.linspace(0, 8000, 257))[1:, None]
    edges = np.linspace(mel(20.0), mel(4000.0), 42)
    lo, center, hi = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0, np.minimum((bins - lo) / (center - lo), (hi - bins) / (hi - center)))
    weights = np.vstack([np.zeros((1, 40)), weights])
    log_mel = np.log(spectrum @ weights + 1e-6)
    k, m = np.arange(40)[:, None], np.arange(40)[None, :]
    dct = 2 * np.cos(np.pi * k * (2 * m + 1) / 80)  # unnormalised DCT-II (tf.signal.dct type 2)
    return (log_mel @ dct.T / np.sqrt(80))[:, :10]


def test_mfcc_matches_a_direct_computation(corpus):
    main = corpus / gen.MAIN_TREE
    clips = [sc.read_clip(main / "yes" / sorted(p.name for p in (main / "yes").iterdir())[0]),
             sc.read_clip(main / "_background_noise_" / "pink_noise.wav", 8000),
             (np.sin(np.arange(12000) / 7.0) * 3000).astype(np.int16)]  # shorter than 1 s: zero-padded
    features = sc.mfcc(clips)
    assert features.shape == (3, 49, 10) and features.dtype == np.float32
    for clip, got in zip(clips, features):
        want = tf_mfcc_by_hand(clip)
        assert np.allclose(got, want, rtol=1e-4, atol=2e-3), np.abs(got - want).max()
    # the normalisation by the clip's maximum makes the features independent of its volume
    assert np.allclose(sc.mfcc([clips[0].astype(np.int32) * 3])[0], features[0], rtol=1e-4, atol=1e-4)


def test_librosa_stft_gives_the_same_magnitudes():
    """librosa.stft centres the 480-sample window in the 512-point frame; shifted by 16 samples it computes the
    same magnitudes as the framing speech_commands.mfcc uses (TensorFlow's)."""
    import librosa

    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    ours = np.abs(np.fft.rfft(np.stack([audio[t * 320:t * 320 + 480] for t in range(49)])
                              * librosa.filters.get_window("hann", 480, fftbins=True), n=512))
    theirs = np.abs(librosa.stft(np.pad(audio, (16, 0)), n_fft=512, hop_length=320, win_length=480,
                                 window="hann", center=False)).T
    assert theirs.shape == (49, 257) and np.allclose(ours, theirs, atol=1e-3)


def test_mel_matrix_is_tensorflows():
    weights = sc.mel_matrix()
    assert weights.shape == (257, 40) and not weights[0].any()  # no weight on DC
    hz = np.linspace(0, 8000, 257)
    used = hz[weights.any(axis=1)]
    assert used.min() > 20 and used.max() < 4000
    assert np.all(weights.max(axis=0) <= 1) and np.all(weights.max(axis=0) > 0.5)  # unnormalised triangles
    assert np.all(np.diff(weights.argmax(axis=0)) >= 0)  # bands in increasing frequency


# --- the synthetic corpus ---------------------------------------------------------------------------------------

def test_synthetic_corpus_layout_and_sha256sums(corpus):
    files = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file())
    lines = (corpus / "SHA256SUMS").read_text().splitlines()
    listed = [line.split("  ", 1)[1] for line in lines]
    assert listed == sorted(listed) == [f for f in files if f != "SHA256SUMS"]
    for line in lines:
        digest, path = line.split("  ", 1)
        assert hashlib.sha256((corpus / path).read_bytes()).hexdigest() == digest
    main, test = corpus / gen.MAIN_TREE, corpus / gen.TEST_TREE
    words = {p.name for p in main.iterdir() if p.is_dir()}
    assert set(gen.KEYWORDS) <= words and words - set(gen.KEYWORDS) - {"_background_noise_"} <= set(gen.OTHER_WORDS)
    assert {p.name for p in test.iterdir()} == set(sc.LABELS)
    for path in [*main.rglob("*.wav"), *test.rglob("*.wav")]:
        if path.parent.name != "_background_noise_":
            assert re.fullmatch(r"([a-z]+_)?[0-9a-f]{8}_nohash_\d+\.wav|noise_\d{4}_nohash_0\.wav", path.name), path
        with wave.open(str(path)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            assert w.getnframes() == 16000 or path.parent.name == "_background_noise_"
    assert (main / "_background_noise_" / sc.VALIDATION_NOISE).is_file()
    per_speaker = {}  # each speaker says every keyword once per take and a fixed number of other words once
    for path in main.rglob("*_nohash_*.wav"):
        per_speaker.setdefault(path.name.split("_nohash_")[0], []).append(path.parent.name)
    size = gen.SMOKE
    for words in per_speaker.values():
        assert sorted(w for w in words if w in gen.KEYWORDS) == sorted(gen.KEYWORDS * size.repetitions)
        assert len([w for w in words if w not in gen.KEYWORDS]) == size.other_words
    assert len(per_speaker) == sum(size.speakers.values())
    assert "SYNTHETIC" in (main / "README.md").read_text()


def test_synthetic_speakers_are_split_by_hash_and_disjoint(corpus):
    main = corpus / gen.MAIN_TREE
    speaker = lambda path: re.sub(r"_nohash_.*$", "", Path(path).name)  # noqa: E731
    lists = {name: (main / f"{name}_list.txt").read_text().split() for name in ("validation", "testing")}
    clips = [p.relative_to(main).as_posix() for p in main.rglob("*.wav") if p.parent.name != "_background_noise_"]
    for path in clips:  # the lists hold exactly the clips Speech Commands' which_set puts there
        split = gen.which_set(path)
        assert (path in lists["validation"], path in lists["testing"]) == (split == "validation", split == "testing")
    groups = {name: {speaker(p) for p in paths} for name, paths in lists.items()}
    groups["training"] = {speaker(p) for p in clips} - groups["validation"] - groups["testing"]
    assert all(groups.values()) and not (groups["training"] & groups["validation"]
                                          or groups["training"] & groups["testing"]
                                          or groups["validation"] & groups["testing"])
    # the test tree is the testing speakers' clips (and noise), balanced over the 12 classes
    test = corpus / gen.TEST_TREE
    counts = {label: len(list((test / label).glob("*.wav"))) for label in sc.LABELS}
    assert len(set(counts.values())) == 1 and counts["yes"] > 0
    test_speakers = {speaker(p.name).split("_")[-1] for p in test.rglob("*.wav") if p.parent.name != "_silence_"}
    assert test_speakers <= groups["testing"]


def test_synthetic_corpus_is_deterministic(corpus, tmp_path):
    proc = subprocess.run([sys.executable, str(WORKLOAD / "make_synthetic_speech_commands.py"), "--data-dir",
                           str(tmp_path), "--smoke"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / SYNTHETIC / "SHA256SUMS").read_text() == (corpus / "SHA256SUMS").read_text()


def test_real_archives_unpack_into_the_trees_the_synthetic_corpus_has(corpus, tmp_path, capsys):
    """The real path (download_dataset.sh's extract, then load_splits without synthetic) on archives packed from
    the synthetic trees: it unpacks them beside themselves and reads exactly what the synthetic path reads."""
    import tarfile

    for entry, tree in zip(DEFINITION["dataset"]["files"], (gen.MAIN_TREE, gen.TEST_TREE)):
        archive = tmp_path / entry["path"]
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz") as tar:  # members named ./<word>/<file>, as in the published archives
            for path in sorted((corpus / tree).rglob("*")):
                tar.add(path, arcname="./" + path.relative_to(corpus / tree).as_posix(), recursive=False)
    sc.extract(DEFINITION, tmp_path)
    sc.extract(DEFINITION, tmp_path)  # idempotent: an unpacked archive is skipped
    assert capsys.readouterr().out.count("already unpacked") == 2
    real = sc.split_files(*sc.trees(DEFINITION, tmp_path))
    synthetic = sc.split_files(*sc.trees(DEFINITION, corpus.parent, synthetic=True))
    assert real == synthetic
    a = sc.load_splits(DEFINITION, tmp_path, names=("test",))["test"]
    b = sc.load_splits(DEFINITION, corpus.parent, synthetic=True, names=("test",))["test"]
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_splits_follow_tfds(corpus):
    main, test = sc.trees(DEFINITION, corpus.parent, synthetic=True)
    splits = sc.split_files(main, test)
    lists = {name: set((main / f"{name}_list.txt").read_text().split()) for name in ("validation", "testing")}
    paths = {name: {path for path, _ in entries} for name, entries in splits.items()}
    assert not paths["train"] & (lists["validation"] | lists["testing"])  # the testing_list clips never train
    assert paths["validation"] == lists["validation"] | {"_background_noise_/running_tap.wav"}
    assert not any(p.startswith("_background_noise_/running_tap") for p in paths["train"])
    samples = sc.wav_frames(main / "_background_noise_" / "white_noise.wav")
    windows = [offset for path, offset in splits["train"] if path == "_background_noise_/white_noise.wav"]
    assert windows == list(range(0, samples - 16000, 8000))  # 1 s windows every 0.5 s, as tfds cuts them
    for name in ("train", "test"):
        labels = [sc.label_of(path) for path, _ in splits[name]]
        assert set(labels) == set(range(12)), name
    assert sc.label_of("_background_noise_/hum.wav") == sc.LABELS.index("_silence_")
    assert sc.label_of("marvin/0a7c2a8d_nohash_0.wav") == sc.LABELS.index("_unknown_")
    assert sc.label_of("speech_commands_test_set_v0.02/_unknown_/x.wav") == sc.LABELS.index("_unknown_")
    assert sc.LABELS == ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_"]


# --- model ------------------------------------------------------------------------------------------------------

def test_parameter_count_and_shapes():
    model = model_mod.DSCNN(model_mod.DSCNNConfig(**DEFINITION["model"]))
    first = 10 * 4 * 64 + 64
    block = (9 * 64 + 64) + (64 * 64 + 64) + 2 * (2 * 64)  # depthwise, pointwise, their two BatchNorms
    assert model_mod.num_params(model) == first + 2 * 64 + 4 * block + 64 * 12 + 12 == 23756
    running = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    assert running == 9 * 2 * 64 and 23756 + running == 24908  # Keras's "Total params" of the reference
    assert model(torch.zeros(3, 1, 49, 10)).shape == (3, 12)
    assert model.same_padding == (1, 1, 4, 5)  # TensorFlow's 'same' padding: 49x10 -> 25x5 at stride 2
    features = torch.nn.functional.pad(torch.zeros(1, 1, 49, 10), model.same_padding)
    assert model.conv(features).shape == (1, 64, 25, 5) and model.pool == (24, 5)
    assert [tuple(k.shape) for k in model.l2_regularized()] == [(64, 1, 10, 4)] + [(64, 64, 1, 1)] * 4


def test_learning_rate_schedule_is_mlperf_tinys():
    hp = DEFINITION["hyperparameters"]
    rates = [train_mod.learning_rate(epoch, hp) for epoch in range(hp["train_epochs"])]
    assert rates == pytest.approx([5e-4] * 12 + [1e-4] * 12 + [2e-5] * 12)
    steps_per_epoch = 85511 // hp["global_batch_size"]  # tfds's train split, last partial batch dropped
    assert DEFINITION["quality"]["max_steps"] == hp["train_epochs"] * steps_per_epoch
    assert steps_per_epoch % DEFINITION["quality"]["eval_every_steps"] == 0


# --- no leak ----------------------------------------------------------------------------------------------------

def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_no_training_decision_depends_on_the_test_split(data_dir, corpus, tmp_path, monkeypatch):
    """Replacing every test clip by noise and every test label by another class leaves training unchanged
    (the losses of every step, in order); only the scores move."""
    real_loader = train_mod.load_splits

    def scrambled(*args, **kwargs):
        splits = real_loader(*args, **kwargs)
        features, labels = splits["test"]
        noise = np.random.default_rng(1).standard_normal(features.shape).astype(np.float32)
        splits["test"] = (noise, (labels + 1 + np.arange(len(labels)) % 11) % 12)  # every label changed
        return splits

    runs = {}
    for name, loader in (("real", real_loader), ("scrambled", scrambled)):
        monkeypatch.setattr(train_mod, "load_splits", loader)
        log = tmp_path / f"{name}.txt"
        train_mod.main(["--seed", "3", "--smoke", "--synthetic-data", "--data-dir", str(data_dir),
                        "--log-file", str(log), "--device", "cpu"])
        runs[name] = _events(log)
    losses = {name: [e["value"] for e in events if e["key"] == "train_loss"] for name, events in runs.items()}
    common = min(map(len, losses.values()))
    assert common >= 1 and losses["real"][:common] == losses["scrambled"][:common]
    scores = {name: [e["value"] for e in events if e["key"] == "eval_accuracy"] for name, events in runs.items()}
    assert scores["real"][:common] != scores["scrambled"][:common]
