"""Speech Commands v0.02 as MLPerf Tiny's keyword-spotting benchmark reads it: 12 classes, its three splits, and
its 49 x 10 MFCC features.

MLPerf Tiny (mlcommons/tiny, benchmark/training/keyword_spotting/get_dataset.py) loads the data through
tensorflow_datasets' `speech_commands` builder, whose rules `split_files` repeats:

- labels: the 10 keywords (down go left no off on right stop up yes), `_silence_`, `_unknown_` (any other word);
- train: every clip of speech_commands_v0.02.tar.gz listed in neither validation_list.txt nor testing_list.txt,
  plus 1 s windows, every 0.5 s, of the _background_noise_ recordings (label _silence_) except running_tap.wav;
- validation: the clips of validation_list.txt plus the windows of running_tap.wav;
- test: every clip of the separate speech_commands_test_set_v0.02.tar.gz (12 balanced classes, 4,890 clips).
  The clips of testing_list.txt therefore neither train nor score.

Features (get_dataset.py, feature_type 'mfcc'), computed once when the data is loaded, as MLPerf Tiny's
fixed per-clip pipeline allows (its time shift is the identity and, run from its own directory, it finds no
_background_noise_ folder to mix in; see README section 3):

    int16 samples -> float, divided by their maximum -> zero-padded to 16,000 samples (1 s)
    -> STFT: 480-sample (30 ms) periodic Hann frames every 320 samples (20 ms), 512-point FFT -> magnitude
    -> 40 mel bands, 20-4000 Hz, TensorFlow's linear_to_mel_weight_matrix -> log(mel + 1e-6)
    -> DCT-II with TensorFlow's (HTK's) scaling, first 10 coefficients  ->  49 frames x 10

librosa frames and windows the audio, scipy computes the FFT and the DCT, and `mel_matrix` rebuilds TensorFlow's
filterbank on librosa's HTK mel scale (librosa.filters.mel builds its triangles in Hz and normalises them;
TensorFlow's are linear in mel and unnormalised).

    python speech_commands.py extract [--data-dir DIR]   (download_dataset.sh: unpack the verified archives)
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import wave
from pathlib import Path

import numpy as np

WORDS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes"]  # tfds's label order
SILENCE, UNKNOWN = "_silence_", "_unknown_"
LABELS = WORDS + [SILENCE, UNKNOWN]
BACKGROUND_NOISE = "_background_noise_"
VALIDATION_NOISE = "running_tap.wav"
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000                       # 1 s
FRAME, STEP, FFT = 480, 320, 512           # 30 ms window, 20 ms stride; the FFT is the next power of two
MEL_BANDS, LOWER_HZ, UPPER_HZ = 40, 20.0, 4000.0
COEFFICIENTS = 10
FRAMES = 1 + (CLIP_SAMPLES - FRAME) // STEP  # 49


# --- where the data is ----------------------------------------------------------------------------------------

def trees(definition: dict, data_dir: Path, synthetic: bool = False) -> tuple[Path, Path]:
    """The unpacked main archive and test archive: <root>/<archive name without .tar.gz>. <root> is the folder
    of the archives (download_dataset.sh unpacks them beside themselves), or the synthetic corpus's folder."""
    main, test = (Path(entry["path"]) for entry in definition["dataset"]["files"])
    root = Path(data_dir) / (definition["dataset"]["synthetic"]["directory"] if synthetic else main.parent)
    return root / main.name.removesuffix(".tar.gz"), root / test.name.removesuffix(".tar.gz")


def label_of(path: str) -> int:
    """tfds's rule: the folder names the label; _silence_ and _background_noise_ are silence, any other word
    is unknown."""
    word = Path(path).parent.name
    if word in WORDS:
        return LABELS.index(word)
    return LABELS.index(SILENCE) if word in (SILENCE, BACKGROUND_NOISE) else LABELS.index(UNKNOWN)


def split_files(main_tree: Path, test_tree: Path) -> dict[str, list[tuple[str, int]]]:
    """{split: [(path, offset)]}: each clip of a split, and where its 1 s starts (a background recording gives
    one entry per window). Paths are relative to their tree; test paths start with the test tree's name."""
    lists = {name: set((main_tree / f"{name}_list.txt").read_text().split())
             for name in ("validation", "testing")}
    lists["validation"].add(f"{BACKGROUND_NOISE}/{VALIDATION_NOISE}")
    splits = {"train": [], "validation": [], "test": []}
    for path in sorted(p.relative_to(main_tree).as_posix() for p in main_tree.rglob("*.wav")):
        split = "validation" if path in lists["validation"] else None if path in lists["testing"] else "train"
        if split is None:
            continue
        if path.startswith(BACKGROUND_NOISE + "/"):  # 1 s windows every 0.5 s, as tfds cuts them
            samples = wav_frames(main_tree / path)
            splits[split] += [(path, start) for start in range(0, samples - CLIP_SAMPLES, CLIP_SAMPLES // 2)]
        else:
            splits[split].append((path, 0))
    splits["test"] = [(f"{test_tree.name}/{p.relative_to(test_tree).as_posix()}", 0)
                      for p in sorted(test_tree.rglob("*.wav"))]
    return splits


def wav_frames(path: Path) -> int:
    with wave.open(str(path)) as w:
        return w.getnframes()


def read_clip(path: Path, offset: int = 0) -> np.ndarray:
    """Up to 1 s of 16-bit mono PCM from offset on, as int16 (Speech Commands' clips are at most 1 s)."""
    with wave.open(str(path)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE):
            raise ValueError(f"{path}: not 16 kHz mono 16-bit PCM")
        w.setpos(offset)
        return np.frombuffer(w.readframes(CLIP_SAMPLES), dtype="<i2")


# --- features -------------------------------------------------------------------------------------------------

def mel_matrix() -> np.ndarray:
    """tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20, 4000): (257, 40) triangles that are linear in
    HTK mel between equally spaced mel edges, evaluated at the FFT bins' mel values; bin 0 (DC) gets no weight."""
    import librosa

    bins_mel = librosa.hz_to_mel(np.linspace(0, SAMPLE_RATE / 2, FFT // 2 + 1)[1:], htk=True)[:, None]
    edges = np.linspace(librosa.hz_to_mel(LOWER_HZ, htk=True), librosa.hz_to_mel(UPPER_HZ, htk=True), MEL_BANDS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0, np.minimum((bins_mel - lower) / (center - lower), (upper - bins_mel) / (upper - center)))
    return np.vstack([np.zeros((1, MEL_BANDS)), weights]).astype(np.float32)


def mfcc(clips: list[np.ndarray], mel: np.ndarray | None = None) -> np.ndarray:
    """(N, 49, 10) float32 MFCCs of int16 clips, as MLPerf Tiny computes them (see the module docstring)."""
    import librosa
    import scipy.fft

    audio = np.zeros((len(clips), CLIP_SAMPLES), np.float32)
    for row, clip in zip(audio, clips):
        x = clip[:CLIP_SAMPLES].astype(np.float32)
        peak = x.max() if len(x) else 0.0
        row[:len(x)] = x / peak if peak > 0 else x  # tf.reduce_max (a silent clip would divide by 0 there)
    # tf.signal.stft(frame_length=480, frame_step=320, fft_length=None -> 512, window_fn=hann_window, periodic):
    # 49 frames of 480 samples, windowed, zero-padded at the end to 512 points, magnitude of the real FFT.
    frames = librosa.util.frame(audio, frame_length=FRAME, hop_length=STEP).swapaxes(-1, -2)  # (N, 49, 480)
    padded = np.zeros((len(clips), FRAMES, FFT), np.float32)
    np.multiply(frames, librosa.filters.get_window("hann", FRAME, fftbins=True).astype(np.float32),
                out=padded[..., :FRAME])
    spectrum = np.abs(scipy.fft.rfft(padded, axis=-1))  # (N, 49, 257)
    log_mel = np.log(spectrum @ (mel_matrix() if mel is None else mel) + 1e-6)  # (N, 49, 40)
    # tf.signal.mfccs_from_log_mel_spectrograms: the unnormalised DCT-II times 1/sqrt(2 * 40) (every
    # coefficient scaled by sqrt(2/N), HTK's convention; scipy's 'ortho' would scale coefficient 0 by sqrt(1/N))
    return (scipy.fft.dct(log_mel, type=2, axis=-1) / np.sqrt(2.0 * MEL_BANDS))[..., :COEFFICIENTS].astype(np.float32)


def features(root: Path, entries: list[tuple[str, int]], chunk: int = 2048) -> np.ndarray:
    """MFCCs of (path, offset) entries under root, computed chunk by chunk (the real train split is 85,511 clips)."""
    out, mel = np.empty((len(entries), FRAMES, COEFFICIENTS), np.float32), mel_matrix()
    for start in range(0, len(entries), chunk):
        part = entries[start:start + chunk]
        out[start:start + len(part)] = mfcc([read_clip(root / path, offset) for path, offset in part], mel)
    return out


def load_splits(definition: dict, data_dir: Path, synthetic: bool = False,
                names=("train", "validation", "test")) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (MFCCs (N, 49, 10) float32, labels (N,) int64)} for the named splits (train, validation, test)."""
    main_tree, test_tree = trees(definition, data_dir, synthetic)
    for tree in (main_tree, test_tree):
        if not tree.is_dir():
            raise SystemExit(f"error: {tree} does not exist: run download_dataset.sh"
                             f"{' with SYNTHETIC_DATA=1' if synthetic else ''} first")
    splits = {}
    for name, entries in split_files(main_tree, test_tree).items():
        if name not in names:
            continue
        root = main_tree if name != "test" else test_tree.parent
        labels = np.array([label_of(path) for path, _ in entries], dtype=np.int64)
        splits[name] = (features(root, entries), labels)
    return splits


# --- unpacking the verified archives (download_dataset.sh) ---------------------------------------------------

def extract(definition: dict, data_dir: Path) -> None:
    """Unpack each verified archive beside itself into <name without .tar.gz>/ (tarfile's 'data' filter: no
    absolute paths, links out of the folder or special files), through a temporary folder renamed at the end;
    an archive already unpacked is skipped."""
    for entry, tree in zip(definition["dataset"]["files"], trees(definition, data_dir)):
        if tree.is_dir():
            print(f"{tree} already unpacked")
            continue
        scratch = tree.with_name(f".{tree.name}.partial")
        if scratch.exists():
            import shutil

            shutil.rmtree(scratch)
        print(f"unpacking {entry['path']} into {tree} ...", flush=True)
        with tarfile.open(Path(data_dir) / entry["path"]) as archive:
            archive.extractall(scratch, filter="data")
        scratch.rename(tree)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Unpack the verified Speech Commands archives.")
    parser.add_argument("action", choices=["extract"])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    args, _ = parser.parse_known_args(argv)  # download_dataset.sh passes its own arguments on
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here.parents[1]))
    from common import benchmark

    extract(benchmark.load(here), args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
