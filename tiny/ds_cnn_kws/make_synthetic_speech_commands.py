"""Write a SYNTHETIC stand-in for Speech Commands v0.02, spoken by Debian's espeak-ng, in the real dataset's layout.

    python tiny/ds_cnn_kws/make_synthetic_speech_commands.py --data-dir DATA_DIR [--smoke] [--jobs N]

Speech Commands cannot be downloaded from the machines this suite is developed on, so the tests and the offline
calibration run on this corpus instead. It is synthetic speech, labelled synthetic everywhere: a run on it logs
`synthetic_dataset` and the SHA256SUMS below as its dataset, which the submission checker never accepts.

What it writes, under DATA_DIR/<dataset.synthetic.directory of benchmark.yaml>/ (the same two trees train.py
reads from the extracted real archives, so the real and the synthetic runs share every line of loading code):

    speech_commands_v0.02/                    like speech_commands_v0.02.tar.gz
        <word>/<speaker>_nohash_<n>.wav       16 kHz mono 16-bit, 1 s; the 10 keywords and 25 other words
        _background_noise_/*.wav              long noise recordings (white, pink, brown, hum, ..., running_tap)
        validation_list.txt, testing_list.txt the speakers of each split, chosen as Speech Commands chooses
                                              them: by a hash of the speaker id (its README's which_set)
        README.md                             says what this is
    speech_commands_test_set_v0.02/           like speech_commands_test_set_v0.02.tar.gz (MLPerf Tiny's test set)
        <keyword>/..., _unknown_/..., _silence_/...   the testing_list speakers' clips, 12 balanced classes
    SHA256SUMS                                `<sha256>  <path>` for every other file, sorted by path; written last

A "speaker" is one espeak-ng voice, voice variant, speaking rate and pitch. Each clip is one word placed at a
random offset in a 1 s clip, at a random gain, with a random noise (type and signal-to-noise ratio) added.
Everything is drawn from generators seeded by the corpus seed and the speaker's index, and espeak-ng is
deterministic, so the same command writes the same bytes on the same machine (espeak-ng 1.51 here; another
espeak-ng version may pronounce differently and give other bytes, which SHA256SUMS then records).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter, resample_poly

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common`

from common import benchmark  # noqa: E402

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050  # espeak-ng's output rate; resampled by 320/441 to 16 kHz
KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
OTHER_WORDS = ["backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward", "four", "happy",
               "house", "learn", "marvin", "nine", "one", "seven", "sheila", "six", "three", "tree", "two",
               "visual", "wow", "zero"]  # Speech Commands v0.02's 25 other words: the _unknown_ class
VOICES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
            "klatt4", "croak", "whisper", "Andy", "Annie", "Denis", "Lee", "Mike", "Storm", "Tweaky", "adam",
            "anika", "aunty", "belinda", "benjamin", "david", "edward", "grandma", "grandpa", "iven", "john",
            "linda", "max", "michel", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis", "victor",
            "zac"]
NOISES = ["white_noise", "pink_noise", "brown_noise", "hum", "rumble"]  # the background recordings that train
VALIDATION_NOISE = "running_tap"  # Speech Commands' running_tap.wav is the one tfds keeps for validation
MAIN_TREE, TEST_TREE = "speech_commands_v0.02", "speech_commands_test_set_v0.02"
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # Speech Commands README, which_set()


@dataclass(frozen=True)
class Size:
    speakers: dict          # how many speakers each split gets (chosen by the hash, drawn until every quota is met)
    repetitions: int        # takes of every keyword per speaker (<speaker>_nohash_0, _1, ...)
    other_words: int        # how many of the 25 other words each speaker says (once)
    noise_seconds: int      # length of each _background_noise_ recording


FULL = Size(speakers={"training": 160, "validation": 20, "testing": 20}, repetitions=2, other_words=10,
            noise_seconds=40)
SMOKE = Size(speakers={"training": 10, "validation": 3, "testing": 3}, repetitions=1, other_words=4,
             noise_seconds=4)


def which_set(filename: str, validation_percentage: float = 10, testing_percentage: float = 10) -> str:
    """Speech Commands' rule (its README and tensorflow/examples/speech_commands/input_data.py): the split of a
    file is a stable hash of its speaker id, the name before `_nohash_`, so a speaker's clips stay together."""
    speaker = re.sub(r"_nohash_.*$", "", os.path.basename(filename))
    percentage = (int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (
        100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < testing_percentage + validation_percentage:
        return "testing"
    return "training"


@dataclass(frozen=True)
class Speaker:
    index: int
    voice: str
    variant: str
    rate: int   # espeak-ng words per minute
    pitch: int  # espeak-ng pitch, 0-99

    @property
    def id(self) -> str:  # 8 hex digits, like Speech Commands' speaker ids
        return hashlib.sha1(f"{self.voice}+{self.variant}/{self.rate}/{self.pitch}".encode()).hexdigest()[:8]


def draw_speakers(size: Size, seed: int) -> list[Speaker]:
    """Distinct (voice, variant, rate, pitch) combinations, in a seeded order, until each split has its quota."""
    rng = np.random.default_rng([seed, 0])
    quota, speakers, seen = dict(size.speakers), [], set()
    while any(quota.values()):
        s = Speaker(len(speakers), VOICES[rng.integers(len(VOICES))], VARIANTS[rng.integers(len(VARIANTS))],
                    int(rng.integers(130, 196)), int(rng.integers(20, 81)))
        split = which_set(f"{s.id}_nohash_0.wav")
        if s.id in seen or quota[split] == 0:
            continue
        seen.add(s.id)
        quota[split] -= 1
        speakers.append(s)
    return speakers


# --- speech ---------------------------------------------------------------------------------------------------

def espeak(words: list[str], voice: str, rate: int, pitch: int) -> list[np.ndarray]:
    """Each word spoken by espeak-ng (one process for the list: SSML sentences separated by 700 ms breaks, cut
    at the silences), as float32 at 16 kHz. Falls back to one process per word if the cut is ambiguous."""
    ssml = "<speak>" + '<break time="700ms"/>'.join(f"<s>{w}</s>" for w in words) + "</speak>"
    audio = _espeak_pcm(["-m", ssml], voice, rate, pitch)
    pieces = _split_at_silences(audio, len(words))
    if pieces is None:
        pieces = [_trim(_espeak_pcm([w], voice, rate, pitch)) for w in words]
    return [resample_poly(p.astype(np.float64), 320, 441).astype(np.float32) / 32768.0 for p in pieces]


def _espeak_pcm(text_args: list[str], voice: str, rate: int, pitch: int) -> np.ndarray:
    command = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", *text_args]
    out = subprocess.run(command, capture_output=True, check=True).stdout  # an argument list: no shell
    with wave.open(io.BytesIO(out)) as w:  # espeak-ng streams: the header's length is a placeholder
        assert w.getframerate() == ESPEAK_RATE and w.getsampwidth() == 2 and w.getnchannels() == 1
    data = out.index(b"data") + 8
    return np.frombuffer(out[data:len(out) - (len(out) - data) % 2], dtype="<i2")


def _quiet_frames(audio: np.ndarray, frame: int = 220) -> np.ndarray:
    """One boolean per 10 ms frame: its peak is under 1 % of the whole signal's peak."""
    frames = np.abs(audio[:len(audio) // frame * frame].astype(np.int32)).reshape(-1, frame).max(axis=1)
    return frames < max(1, np.abs(audio).max() // 100)


def _split_at_silences(audio: np.ndarray, count: int, min_gap_frames: int = 30):
    quiet = _quiet_frames(audio)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    gaps = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_gap_frames and a > 0 and b < len(quiet)]
    if len(gaps) != count - 1:
        return None
    cuts = [0] + [(a + b) // 2 * 220 for a, b in gaps] + [len(audio)]
    return [_trim(audio[start:end]) for start, end in zip(cuts, cuts[1:])]


def _trim(audio: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(~_quiet_frames(audio))
    return audio[max(0, loud[0] - 2) * 220:(loud[-1] + 3) * 220] if len(loud) else audio


# --- noise ----------------------------------------------------------------------------------------------------

def noise(kind: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    """A noise signal of unit RMS: white, pink (1/f), brown (1/f^2), mains hum with harmonics, low rumble, or a
    running tap (band-limited noise whose loudness wobbles)."""
    white = rng.standard_normal(samples)
    t = np.arange(samples) / SAMPLE_RATE
    if kind == "white_noise":
        x = white
    elif kind == "pink_noise":  # Paul Kellet's economy pink filter
        x = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786], [1, -2.494956002, 2.017265875,
                    -0.522189400], white)
    elif kind == "brown_noise":
        x = lfilter([1.0], [1, -0.995], white)
    elif kind == "hum":
        base = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 8))
        x = x + 0.3 * white / 3
    elif kind == "rumble":
        x = lfilter([1.0], [1, -1.9, 0.9025], white)  # resonant low-pass
    elif kind == VALIDATION_NOISE:
        band = lfilter([1, 0, -1], [1, -1.2, 0.81], white)  # a band around 2.4 kHz
        x = band * (1 + 0.5 * np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 2 * np.pi)))
    else:
        raise ValueError(kind)
    x = x - x.mean()
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def clip_of(word: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 s clip: the word at a random offset, a random peak level, and a random noise at 10-40 dB SNR."""
    word = word[:SAMPLE_RATE]
    out = np.zeros(SAMPLE_RATE, np.float32)
    start = int(rng.integers(0, SAMPLE_RATE - len(word) + 1))
    out[start:start + len(word)] = word / (np.abs(word).max() + 1e-9) * rng.uniform(0.1, 0.9)
    kind = NOISES[rng.integers(len(NOISES))]
    speech_rms = np.sqrt(np.mean(out[start:start + len(word)] ** 2))
    out += noise(kind, SAMPLE_RATE, rng) * speech_rms * 10 ** (-rng.uniform(10, 40) / 20)
    return out


def silence_clip(rng: np.random.Generator) -> np.ndarray:
    """A 1 s _silence_ clip for the test tree: a quiet noise of a random kind, like the real test set's."""
    kind = (NOISES + [VALIDATION_NOISE])[rng.integers(len(NOISES) + 1)]
    return noise(kind, SAMPLE_RATE, rng) * rng.uniform(0.005, 0.15)


def wav_bytes(audio: np.ndarray) -> bytes:
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


# --- the corpus -----------------------------------------------------------------------------------------------

def speaker_clips(args: tuple[Speaker, Size, int]) -> list[tuple[str, bytes]]:
    """Every clip of one speaker: (path inside the main tree, wav bytes)."""
    speaker, size, seed = args
    rng = np.random.default_rng([seed, 1, speaker.index])
    chosen = set(rng.choice(OTHER_WORDS, size.other_words, replace=False))
    words = [w for w in OTHER_WORDS if w in chosen]
    clips = []
    for take in range(size.repetitions):
        # each take a little faster or slower and higher or lower, as a person's repetitions are
        rate = int(speaker.rate * rng.uniform(0.9, 1.1))
        pitch = int(np.clip(speaker.pitch + rng.integers(-8, 9), 0, 99))
        spoken = KEYWORDS + (words if take == 0 else [])
        for word, audio in zip(spoken, espeak(spoken, f"{speaker.voice}+{speaker.variant}", rate, pitch)):
            clips.append((f"{word}/{speaker.id}_nohash_{take}.wav", wav_bytes(clip_of(audio, rng))))
    return clips


def generate(root: Path, size: Size, seed: int, jobs: int) -> None:
    speakers = draw_speakers(size, seed)
    files: dict[str, bytes] = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for clips in pool.map(speaker_clips, [(s, size, seed) for s in speakers]):
            for path, data in clips:
                files[f"{MAIN_TREE}/{path}"] = data
    rng = np.random.default_rng([seed, 2])
    for kind in NOISES + [VALIDATION_NOISE]:
        audio = noise(kind, size.noise_seconds * SAMPLE_RATE, rng) * rng.uniform(0.05, 0.3)
        files[f"{MAIN_TREE}/_background_noise_/{kind}.wav"] = wav_bytes(audio)

    # The split lists, as in the real archive: every clip of the validation and testing speakers.
    word_paths = sorted(p[len(MAIN_TREE) + 1:] for p in files if "/_background_noise_/" not in p)
    lists = {split: [p for p in word_paths if which_set(p) == split] for split in ("validation", "testing")}
    for split, paths in lists.items():
        files[f"{MAIN_TREE}/{split}_list.txt"] = "".join(p + "\n" for p in paths).encode()
    files[f"{MAIN_TREE}/README.md"] = README.encode()

    # The test tree (MLPerf Tiny scores speech_commands_test_set_v0.02, 12 balanced classes): the testing
    # speakers' keyword clips; as many of their other-word clips (_unknown_) and new quiet-noise clips
    # (_silence_) as the mean keyword has.
    tests = lists["testing"]
    per_class = round(sum(p.split("/")[0] in KEYWORDS for p in tests) / len(KEYWORDS))
    others = [p for p in tests if p.split("/")[0] in OTHER_WORDS]
    for path in tests:
        if path.split("/")[0] in KEYWORDS:
            files[f"{TEST_TREE}/{path}"] = files[f"{MAIN_TREE}/{path}"]
    for i in sorted(rng.choice(len(others), min(per_class, len(others)), replace=False)):
        word, name = others[i].split("/")
        files[f"{TEST_TREE}/_unknown_/{word}_{name}"] = files[f"{MAIN_TREE}/{others[i]}"]
    for i in range(per_class):
        files[f"{TEST_TREE}/_silence_/noise_{i:04d}_nohash_0.wav"] = wav_bytes(silence_clip(rng))

    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    sums = "".join(f"{hashlib.sha256(files[p]).hexdigest()}  {p}\n" for p in sorted(files))
    (root / "SHA256SUMS").write_text(sums)  # last: its presence means the corpus is complete


README = """# SYNTHETIC Speech Commands stand-in (not Speech Commands)

Written by tiny/ds_cnn_kws/make_synthetic_speech_commands.py with espeak-ng: synthetic speech in the layout of
Speech Commands v0.02 (Warden, 2018), for tests and offline calibration on machines that cannot download the
real dataset. No result obtained on it is a benchmark result.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true", help="the small corpus the tests use (seconds)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0: the corpus README reports)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="espeak-ng worker processes")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("error: espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)", file=sys.stderr)
        return 1
    directory = benchmark.load(HERE)["dataset"]["synthetic"]["directory"]
    final = args.data_dir / directory
    final.parent.mkdir(parents=True, exist_ok=True)
    # Written beside its destination, then swapped in: an interrupted run never leaves a half corpus behind.
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        generate(scratch, SMOKE if args.smoke else FULL, args.seed, max(1, args.jobs))
        if final.exists():
            shutil.rmtree(final)
        scratch.rename(final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    count = len((final / "SHA256SUMS").read_text().splitlines())
    print(f"synthetic Speech Commands stand-in ({'smoke' if args.smoke else 'full'}): {count} files in {final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
