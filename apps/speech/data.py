"""Speech data sources -> fixed-length 16 kHz clips with integer labels, plus the training pipeline.

Sources (`data.source`):
- `synthetic`: eSpeak NG speech generated offline into a cached Speech-Commands-layout folder (synth.py).
- `folder`: a local folder `<word>/<speaker>_nohash_<n>.wav` (+ optional `_background_noise_/`,
  `validation_list.txt`, `testing_list.txt`; without lists, a hash split by speaker). `.tar.xz` works too.
- `fsdd`: Free Spoken Digit Dataset (`{digit}_{speaker}_{index}.wav`, 8 kHz); official split
  (index 0-4 test) or one held-out speaker (`data.test_speaker`).
- `tfds:speech_commands`: TensorFlow Datasets download (needs internet; not the default path).

Every clip is resampled to `data.sample_rate` and padded/cropped to `data.clip_seconds`.
`AugmentedClips` is the training pipeline (a `keras.utils.PyDataset`, so it runs under JAX
too): random time shift, volume, speed, room reverberation and background noise at a random SNR.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from apps.speech.config import BACKGROUND_NOISE, DIGIT_WORDS, SILENCE, UNKNOWN, AugmentConfig, DataConfig
from common.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


@dataclasses.dataclass
class Split:
    """One split: `audio [n, samples]` float32 in [-1, 1], integer `labels [n]`, and provenance."""

    audio: np.ndarray
    labels: np.ndarray
    speakers: list[str]
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass
class SpeechData:
    labels: list[str]
    train: Split
    validation: Split
    test: Split
    noises: list[np.ndarray]  # background-noise recordings for augmentation and _silence_
    root: str

    def summary(self) -> dict:
        out = {"root": self.root, "labels": self.labels, "num_noises": len(self.noises)}
        for name in ("train", "validation", "test"):
            split = getattr(self, name)
            counts = np.bincount(split.labels, minlength=len(self.labels)) if len(split) else np.zeros(len(self.labels))
            out[name] = {"num_examples": len(split), "num_speakers": len(set(split.speakers)),
                         "per_class": {label: int(c) for label, c in zip(self.labels, counts)}}
        return out


# ---------------------------------------------------------------- audio helpers

def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    from apps.speech.synth import resample as _resample

    return _resample(audio, rate, target)


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 audio of `path` resampled to `sample_rate`; clear errors for bad files."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"audio file {path} not found")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError/RuntimeError for unreadable files
        raise DataError(f"cannot read audio file {path}: {err}; expected a WAV/FLAC/OGG file") from err
    if audio.shape[0] == 0:
        raise DataError(f"audio file {path} is empty (0 samples); re-record or remove it")
    check_finite(audio, f"audio file {path}")
    audio = audio.mean(axis=1)
    if rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
    return audio.astype(np.float32)


def check_finite(audio: np.ndarray, what: str) -> None:
    """Refuses NaN/inf samples (a float WAV can hold them): a model would answer them confidently."""
    bad = ~np.isfinite(audio)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise DataError(f"{what} has {int(bad.sum())} non-finite (NaN/inf) samples, the first at sample {first}; "
                        f"the file is damaged: re-record, repair or remove it")


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Pads with zeros (centred) or crops to the `num_samples` window with the most energy."""
    n = len(audio)
    if n == num_samples:
        return audio.astype(np.float32)
    if n < num_samples:
        left = (num_samples - n) // 2
        return np.pad(audio, (left, num_samples - n - left)).astype(np.float32)
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    window = energy[num_samples:] - energy[:-num_samples]
    start = int(np.argmax(window))
    return audio[start:start + num_samples].astype(np.float32)


def _stable_hash(text: str) -> float:
    """A percentage in [0, 100) that stays the same across runs and machines."""
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 10000 / 100.0


def _silence_clips(noises: Sequence[np.ndarray], count: int, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    clips = np.zeros((count, num_samples), dtype=np.float32)
    for i in range(count):
        if not noises or i % 5 == 0:
            continue  # digital silence too
        noise = noises[int(rng.integers(len(noises)))]
        if len(noise) <= num_samples:
            noise = np.tile(noise, num_samples // max(1, len(noise)) + 1)
        start = int(rng.integers(0, len(noise) - num_samples))
        clips[i] = noise[start:start + num_samples] * rng.uniform(0.0, 1.0)
    return clips


def _stack(items: list[tuple[str, int, str]], num_samples: int, sample_rate: int) -> Split:
    audio = np.zeros((len(items), num_samples), dtype=np.float32)
    for i, (path, _, _) in enumerate(items):
        audio[i] = fit_length(load_audio(path, sample_rate), num_samples)
    return Split(audio, np.asarray([label for _, label, _ in items], dtype=np.int32),
                 [spk for _, _, spk in items], [p for p, _, _ in items])


def _empty(num_samples: int) -> Split:
    return Split(np.zeros((0, num_samples), np.float32), np.zeros((0,), np.int32), [], [])


def label_names(cfg: DataConfig) -> list[str]:
    """Class names in model-output order: keywords, then _silence_, then _unknown_."""
    if cfg.source == "fsdd":
        from apps.speech.config import DIGIT_LABELS

        return list(DIGIT_LABELS)
    if len(set(cfg.words)) != len(cfg.words) or not cfg.words:
        raise DataError(f"data.words must be non-empty and unique, got {cfg.words!r}")
    labels = [w for w in cfg.words]
    if cfg.include_silence:
        labels.append(SILENCE)
    if cfg.include_unknown:
        labels.append(UNKNOWN)
    return labels


def _resolve_folder(path: str | Path, what: str) -> Path:
    from common.data import extract_archive

    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{what} {path} not found; pass an existing folder or archive with --set data.path=...")
    if path.is_file():
        if not path.name.endswith((".tar.xz", ".tar.gz", ".tgz", ".tar", ".zip")):
            raise DataError(f"{what} {path} is a file but not an archive (.tar.xz/.tar.gz/.zip)")
        path = extract_archive(path)
        children = [c for c in path.iterdir() if not c.name.startswith(".")]
        if len(children) == 1 and children[0].is_dir():
            path = children[0]
    return path


# ---------------------------------------------------------------- Speech Commands layout

def load_noises(root: Path, sample_rate: int) -> list[np.ndarray]:
    folder = root / BACKGROUND_NOISE
    if not folder.is_dir():
        return []
    return [load_audio(p, sample_rate) for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES]


def load_speech_commands_folder(path: str | Path, cfg: DataConfig, labels: Sequence[str] | None = None,
                                splits: Sequence[str] = ("train", "validation", "test"),
                                ignore_lists: bool = False) -> SpeechData:
    """Reads a `<word>/<speaker>_nohash_<n>.wav` folder into the three splits.

    Words outside `cfg.words` become `_unknown_` (capped at `unknown_fraction` x an average
    keyword's count per split, sampled reproducibly); a `_silence_/` folder is used as is,
    otherwise silence clips are cut from `_background_noise_/`.
    """
    root = _resolve_folder(path, "speech folder")
    labels = list(labels or label_names(cfg))
    index = {label: i for i, label in enumerate(labels)}
    num_samples = int(round(cfg.sample_rate * cfg.clip_seconds))
    word_dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name != BACKGROUND_NOISE and not d.name.startswith("."))
    if not word_dirs:
        raise DataError(f"{root} has no word folders; expected the Speech Commands layout <word>/<speaker>_nohash_<n>.wav")
    lists = {}
    for name, file in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        lists[name] = set((root / file).read_text().split()) if (root / file).is_file() and not ignore_lists else None

    def split_of(rel: str, speaker: str) -> str:
        for name in ("validation", "test"):
            if lists[name] is not None:
                if rel in lists[name]:
                    return name
        if lists["validation"] is not None or lists["test"] is not None:
            return "train"
        bucket = _stable_hash(speaker)
        if bucket < cfg.validation_percent:
            return "validation"
        if bucket < cfg.validation_percent + cfg.testing_percent:
            return "test"
        return "train"

    buckets: dict[str, dict[str, list]] = {s: {"keyword": [], "unknown": [], "silence": []} for s in ("train", "validation", "test")}
    for word_dir in word_dirs:
        word = word_dir.name
        if word == SILENCE and SILENCE in index:
            kind, label = "silence", index[SILENCE]
        elif word in index and word not in (SILENCE, UNKNOWN):
            kind, label = "keyword", index[word]
        elif UNKNOWN in index and word != SILENCE:
            kind, label = "unknown", index[UNKNOWN]
        else:
            continue
        for file in sorted(word_dir.iterdir()):
            if file.suffix.lower() not in AUDIO_SUFFIXES:
                continue
            rel = f"{word}/{file.name}"
            speaker = file.name.split("_nohash_")[0]
            buckets[split_of(rel, speaker)][kind].append((str(file), label, speaker))

    if "train" in splits:
        found = {item[1] for parts in buckets.values() for item in parts["keyword"]}
        missing = [label for label in labels if label not in (SILENCE, UNKNOWN) and index[label] not in found]
        if missing:
            available = [d.name for d in word_dirs if not d.name.startswith("_")]
            raise DataError(f"no clips for label(s) {missing} in {root}; set data.words to words it has: {available}")
    noises = load_noises(root, cfg.sample_rate)
    rng = np.random.default_rng(cfg.seed)
    keyword_count = sum(1 for label in labels if label not in (SILENCE, UNKNOWN))
    out = {}
    for split in ("train", "validation", "test"):
        if split not in splits:
            out[split] = _empty(num_samples)
            continue
        parts = buckets[split]
        average = max(1, len(parts["keyword"]) // max(1, keyword_count))
        unknown = parts["unknown"]
        cap = int(round(cfg.unknown_fraction * average))
        if len(unknown) > cap:
            unknown = [unknown[i] for i in sorted(rng.choice(len(unknown), cap, replace=False))]
        items = parts["keyword"] + unknown + parts["silence"]
        if cfg.max_per_class > 0 and split == "train":
            items = _cap_per_class(items, cfg.max_per_class, rng)
        data = _stack(items, num_samples, cfg.sample_rate) if items else _empty(num_samples)
        if SILENCE in index and not parts["silence"] and parts["keyword"]:
            count = int(round(cfg.silence_fraction * average))
            clips = _silence_clips(noises, count, num_samples, rng)
            data = Split(np.concatenate([data.audio, clips]),
                         np.concatenate([data.labels, np.full(count, index[SILENCE], np.int32)]),
                         data.speakers + [f"silence{i}" for i in range(count)], data.paths + ["<silence>"] * count)
        out[split] = data
    return SpeechData(labels, out["train"], out["validation"], out["test"], noises, str(root))


def _cap_per_class(items, cap, rng):
    by_label: dict[int, list] = {}
    for item in items:
        by_label.setdefault(item[1], []).append(item)
    kept = []
    for label in sorted(by_label):
        group = by_label[label]
        if len(group) > cap:
            group = [group[i] for i in sorted(rng.choice(len(group), cap, replace=False))]
        kept.extend(group)
    return kept


# ---------------------------------------------------------------- FSDD

def default_fsdd_path() -> Path:
    from common.data import require_shared_data

    return require_shared_data("speech/fsdd.tar.xz")


def load_fsdd(path: str | Path | None, cfg: DataConfig) -> SpeechData:
    """Free Spoken Digit Dataset: official split (index 0-4 test, 5-9 validation) or a held-out speaker.

    With `cfg.test_speaker` set, that speaker is the test set and the validation set is
    recordings 0-4 of the remaining speakers (so no test speaker is seen in training).
    """
    root = _resolve_folder(path or default_fsdd_path(), "FSDD folder")
    if (root / "recordings").is_dir():
        root = root / "recordings"
    files = sorted(p for p in root.iterdir() if FSDD_NAME.match(p.name)) if root.is_dir() else []
    if not files:
        raise DataError(f"{root} has no FSDD recordings named {{digit}}_{{speaker}}_{{index}}.wav")
    speakers = sorted({FSDD_NAME.match(p.name).group(2) for p in files})
    if cfg.test_speaker and cfg.test_speaker not in speakers:
        raise DataError(f"data.test_speaker={cfg.test_speaker!r} is not in FSDD; choose one of {speakers}")
    num_samples = int(round(cfg.sample_rate * cfg.clip_seconds))
    items: dict[str, list] = {"train": [], "validation": [], "test": []}
    for p in files:
        digit, speaker, idx = FSDD_NAME.match(p.name).groups()
        idx = int(idx)
        if cfg.test_speaker:
            split = "test" if speaker == cfg.test_speaker else ("validation" if idx < 5 else "train")
        else:
            split = "test" if idx < 5 else ("validation" if idx < 10 else "train")
        items[split].append((str(p), int(digit), speaker))
    if cfg.max_per_class > 0:
        items["train"] = _cap_per_class(items["train"], cfg.max_per_class, np.random.default_rng(cfg.seed))
    splits = {k: _stack(v, num_samples, cfg.sample_rate) for k, v in items.items()}
    if cfg.fsdd_add_synthetic:
        splits["train"] = _concat([splits["train"], _synthetic_digits(cfg)])
    rng = np.random.default_rng(cfg.seed)
    from apps.speech.synth import make_noises

    noises = list(make_noises(cfg.sample_rate * 10, rng).values())
    return SpeechData(label_names(cfg), splits["train"], splits["validation"], splits["test"], noises, str(root))


def _concat(parts: Sequence[Split]) -> Split:
    return Split(np.concatenate([p.audio for p in parts]), np.concatenate([p.labels for p in parts]),
                 sum((p.speakers for p in parts), []), sum((p.paths for p in parts), []))


def _synthetic_digits(cfg: DataConfig) -> Split:
    """Every clip of the synthetic spoken-digit set ("zero" ... "nine" -> labels 0 ... 9) as one split."""
    from apps.speech.synth import ensure_synthetic_dataset

    root = ensure_synthetic_dataset(list(DIGIT_WORDS), num_speakers=cfg.synthetic_speakers,
                                    repeats_per_word=cfg.synthetic_repeats, unknown_per_speaker=0,
                                    silence_clips=0, validation_percent=cfg.validation_percent,
                                    testing_percent=cfg.testing_percent, seed=cfg.seed,
                                    engines=cfg.synthetic_engines)
    words = dataclasses.replace(cfg, source="synthetic", words=DIGIT_WORDS, include_silence=False,
                                include_unknown=False, max_per_class=0)
    data = load_speech_commands_folder(root, words, list(DIGIT_WORDS))
    return _concat([data.train, data.validation, data.test])


# ---------------------------------------------------------------- tfds

def load_tfds(cfg: DataConfig) -> SpeechData:  # pragma: no cover - needs internet
    """`tfds:speech_commands` (downloads ~2.4 GB on first use). Its label set is the 10 core words + silence + unknown."""
    import tensorflow_datasets as tfds

    name = cfg.source.split(":", 1)[1] or "speech_commands"
    labels = label_names(cfg)
    index = {label: i for i, label in enumerate(labels)}
    num_samples = int(round(cfg.sample_rate * cfg.clip_seconds))
    builder = tfds.builder(name)
    builder.download_and_prepare()
    tfds_names = builder.info.features["label"].names
    out = {}
    for split, tfds_split in (("train", "train"), ("validation", "validation"), ("test", "test")):
        audio, ys = [], []
        for example in tfds.as_numpy(builder.as_dataset(split=tfds_split)):
            name_ = tfds_names[int(example["label"])]
            label = index.get(name_, index.get(UNKNOWN))
            if label is None:
                continue
            wav = example["audio"].astype(np.float32) / 32768.0
            audio.append(fit_length(wav, num_samples))
            ys.append(label)
        out[split] = Split(np.stack(audio), np.asarray(ys, np.int32), ["?"] * len(ys), ["tfds"] * len(ys))
    return SpeechData(labels, out["train"], out["validation"], out["test"], [], f"tfds:{name}")


# ---------------------------------------------------------------- entry point

def load_data(cfg: DataConfig, verbose: bool = True) -> SpeechData:
    """The three splits for `cfg.source`; raises ValueError/FileNotFoundError with a fix for bad input."""
    if cfg.sample_rate <= 0 or cfg.clip_seconds <= 0:
        raise DataError(f"data.sample_rate and data.clip_seconds must be positive, got {cfg.sample_rate}, {cfg.clip_seconds}")
    if cfg.path and (cfg.source == "synthetic" or cfg.source.startswith("tfds:")):
        raise DataError(f"data.path={cfg.path!r} is read only by data.source=folder or fsdd, and "
                         f"data.source={cfg.source!r} ignores it; add --set data.source=folder "
                         f"(a Speech Commands layout folder or .tar.xz) or fsdd")
    if cfg.source == "synthetic":
        from apps.speech.synth import ensure_synthetic_dataset

        if verbose:
            print("Generating/reading the synthetic keyword dataset (cached in ~/.cache/lstm-suite) ...", flush=True)
        root = ensure_synthetic_dataset(
            [w for w in cfg.words], num_speakers=cfg.synthetic_speakers, repeats_per_word=cfg.synthetic_repeats,
            unknown_per_speaker=cfg.synthetic_unknown_per_speaker, silence_clips=cfg.synthetic_silence_clips,
            validation_percent=cfg.validation_percent, testing_percent=cfg.testing_percent, seed=cfg.seed,
            verbose=verbose, engines=cfg.synthetic_engines, unknown_min_distance=cfg.synthetic_unknown_min_distance,
        )
        return load_speech_commands_folder(root, cfg)
    if cfg.source == "folder":
        if not cfg.path:
            raise DataError("data.source=folder needs a folder: --set data.path=/path/to/speech_commands")
        return load_speech_commands_folder(cfg.path, cfg)
    if cfg.source == "fsdd":
        return load_fsdd(cfg.path or None, cfg)
    if cfg.source.startswith("tfds:"):
        return load_tfds(cfg)
    raise DataError(f"unknown data.source {cfg.source!r}; choose synthetic, folder, fsdd or tfds:speech_commands")


def load_eval_data(path: str | Path, cfg: DataConfig, labels: Sequence[str], split: str) -> Split:
    """A split of another dataset for evaluate: an FSDD folder/archive or a Speech Commands folder/archive.

    `split="all"` takes every clip (e.g. a small real sample), otherwise the named split.
    """
    root = _resolve_folder(path, "evaluation data")
    fsdd_root = root / "recordings" if (root / "recordings").is_dir() else root
    is_fsdd = any(FSDD_NAME.match(p.name) for p in fsdd_root.iterdir()) if fsdd_root.is_dir() else False
    if is_fsdd:
        data = load_fsdd(fsdd_root, dataclasses.replace(cfg, source="fsdd", max_per_class=0, fsdd_add_synthetic=False))
        if not set(data.labels) <= set(labels) and set(DIGIT_WORDS) <= set(labels):
            # A model of the spoken digits ("zero" ... "nine", e.g. trained on synthetic speech): FSDD's
            # file names say "0" ... "9".
            data = dataclasses.replace(data, labels=[DIGIT_WORDS[int(label)] for label in data.labels])
        unknown = sorted(set(data.labels) - set(labels))
        if unknown:
            raise DataError(f"the model's labels {list(labels)} do not cover the data's labels {unknown}")
        remap = np.asarray([list(labels).index(label) for label in data.labels])
        parts = [data.train, data.validation, data.test] if split == "all" else [getattr(data, split)]
        return Split(np.concatenate([p.audio for p in parts]), remap[np.concatenate([p.labels for p in parts])],
                     sum((p.speakers for p in parts), []), sum((p.paths for p in parts), []))
    if split == "all":
        # Every clip counts (e.g. a small real sample): ignore the split lists, route all to test.
        cfg = dataclasses.replace(cfg, source="folder", max_per_class=0, validation_percent=0.0, testing_percent=100.0)
        return load_speech_commands_folder(root, cfg, labels, splits=("test",), ignore_lists=True).test
    data = load_speech_commands_folder(root, dataclasses.replace(cfg, source="folder", max_per_class=0), labels, splits=(split,))
    return getattr(data, split)


def _recordings(root: Path) -> tuple[list[tuple[Path, set, str | None]], Path | None]:
    """`(path, words it says, FSDD speaker or None)` for every recording under `root`, and the FSDD
    folder when `root` holds FSDD (`{digit}_{speaker}_{n}.wav`, saying "3" and "three"); otherwise a
    `<word>/<file>.wav` layout, every word folder but `_background_noise_`/`_silence_`."""
    fsdd_root = root / "recordings" if (root / "recordings").is_dir() else root
    matches = [(p, FSDD_NAME.match(p.name)) for p in sorted(fsdd_root.iterdir())] if fsdd_root.is_dir() else []
    fsdd = [(p, {m.group(1), DIGIT_WORDS[int(m.group(1))]}, m.group(2)) for p, m in matches if m]
    if fsdd:
        return fsdd, fsdd_root
    return [(f, {d.name}, None) for d in sorted(root.iterdir()) if d.is_dir() and d.name not in (BACKGROUND_NOISE, SILENCE)
            and not d.name.startswith(".") for f in sorted(d.iterdir()) if f.suffix.lower() in AUDIO_SUFFIXES], None


def load_negative_speech(paths: Sequence[str | Path], sample_rate: int, labels: Sequence[str]) -> tuple[list, dict]:
    """Every recording under `paths` that says none of the model's keywords, each at its own length.

    For false accepts per hour: an FSDD folder/archive (its digits, unless the model's keywords are
    digits) or a Speech Commands layout `<word>/<file>.wav`, whose keyword folders (and `_silence_`,
    `_background_noise_`) are left out, so a whole sample can be passed and only its other words count.
    Returns `(clips, summary)`; `summary` says how many recordings were used and left out, per source.
    """
    keywords = {label for label in labels if label not in (SILENCE, UNKNOWN)}
    clips: list[np.ndarray] = []
    sources = []
    for path in paths:
        said, _ = _recordings(_resolve_folder(path, "--negatives"))
        kept = [p for p, words, _ in said if not words & keywords]
        clips += [load_audio(p, sample_rate) for p in kept]
        sources.append({"path": str(path), "recordings": len(kept), "left_out_keyword_recordings": len(said) - len(kept)})
    if not clips:
        raise DataError(f"--negatives {', '.join(map(str, paths))}: no recordings without the model's keywords "
                        f"{sorted(keywords)}; pass FSDD or a <word>/<file>.wav folder of other words")
    return clips, {"sources": sources, "recordings": len(clips),
                   "recording_minutes": sum(len(c) for c in clips) / sample_rate / 60}


def _speaker_recordings(path: str | Path, speakers: Sequence[str], what: str) -> list[tuple[Path, set, str | None]]:
    """`_recordings` of `path`, only FSDD `speakers` when given (`what` names the option in errors)."""
    root = _resolve_folder(path, what)
    said, fsdd_root = _recordings(root)
    if fsdd_root is not None:
        found = sorted({speaker for _, _, speaker in said})
        missing = sorted(set(speakers) - set(found))
        if missing:
            raise DataError(f"{what} speakers {missing} are not in {fsdd_root}; its speakers are {found}")
        said = [r for r in said if not speakers or r[2] in speakers]
    elif speakers:
        raise DataError(f"{what}: speakers select FSDD speakers, but {root} holds no FSDD recordings; "
                        f"leave them empty for a <word>/<file>.wav folder")
    if not said:
        raise DataError(f"{what} {path}: no recordings found; pass FSDD or a <word>/<file>.wav folder")
    return said


def load_adaptation_audio(path: str | Path, sample_rate: int, num_samples: int, labels: Sequence[str],
                          speakers: Sequence[str] = ()) -> tuple[np.ndarray, dict]:
    """Unlabeled real clips `[n, num_samples]` for domain-adversarial training (`data.adapt_audio`).

    An FSDD folder/archive (only `speakers` when given) or a `<word>/<file>.wav` layout (all word
    folders but `_background_noise_`/`_silence_`). No label is used; the summary counts the
    recordings that say one of the model's keywords, so a run dir shows what real audio it saw.
    """
    keywords = {label for label in labels if label not in (SILENCE, UNKNOWN)}
    said = _speaker_recordings(path, speakers, "data.adapt_audio")
    files, words = [p for p, _, _ in said], [w for _, w, _ in said]
    used = sorted({speaker for _, _, speaker in said if speaker})
    clips = np.stack([fit_length(load_audio(p, sample_rate), num_samples) for p in files])  # load_audio checks finiteness
    return clips, {"path": str(path), "recordings": len(files), "speakers": used,
                   "keyword_recordings": sum(bool(w & keywords) for w in words)}


def add_real_unknown(data: SpeechData, cfg: DataConfig) -> tuple[np.ndarray, dict]:
    """Appends real keyword-free recordings (`cfg.unknown_audio`) to `data.train` as `_unknown_` clips.

    Recordings that say a keyword are left out; `cfg.unknown_audio_fraction` times an average
    keyword's training count are drawn (seeded by `cfg.seed`; 0 keeps all). Returns those clips
    and the summary for data.json: which audio, how many recordings, which speakers.
    """
    keywords = [label for label in data.labels if label not in (SILENCE, UNKNOWN)]
    said = _speaker_recordings(cfg.unknown_audio, cfg.unknown_speakers, "data.unknown_audio")
    keyword_set = set(keywords)
    kept = [r for r in said if not r[1] & keyword_set]
    if not kept:
        raise DataError(f"data.unknown_audio {cfg.unknown_audio}: all {len(said)} recordings say a keyword; "
                        f"pass recordings of other words (FSDD for the core words)")
    counts = np.bincount(data.train.labels, minlength=len(data.labels))
    per_keyword = float(np.mean([counts[data.labels.index(k)] for k in keywords]))
    count = len(kept) if cfg.unknown_audio_fraction == 0 else min(len(kept), max(1, round(cfg.unknown_audio_fraction * per_keyword)))
    rng = np.random.default_rng(cfg.seed)
    chosen = [kept[i] for i in sorted(rng.choice(len(kept), size=count, replace=False))]
    num_samples = data.train.audio.shape[1]
    audio = np.stack([fit_length(load_audio(p, cfg.sample_rate), num_samples) for p, _, _ in chosen])
    real = Split(audio, np.full(count, data.labels.index(UNKNOWN), np.int32),
                 [f"real:{spk or Path(p).parent.name}" for p, _, spk in chosen], [str(p) for p, _, _ in chosen])
    data.train = _concat([data.train, real])
    return audio, {"path": str(cfg.unknown_audio), "recordings": count, "available": len(kept),
                   "left_out_keyword_recordings": len(said) - len(kept),
                   "speakers": sorted({spk for _, _, spk in chosen if spk})}


# ---------------------------------------------------------------- training pipeline

class AugmentedClips(keras.utils.PyDataset):
    """Shuffled, augmented training batches `(audio [b, samples], labels [b])`, reproducible per epoch.

    Augmentations (probability/ranges from `AugmentConfig`): random time shift with zero fill,
    random speed (resampling), synthetic room reverberation, random volume, background noise
    mixed at a random SNR.
    """

    def __init__(self, split: Split, noises: Sequence[np.ndarray], cfg: AugmentConfig, batch_size: int,
                 sample_rate: int, seed: int = 0, augment: bool = True, speech: np.ndarray | None = None,
                 no_speech_label: int = -1, **kwargs):
        super().__init__(**kwargs)
        if cfg.speech_noise_probability > 0 and (speech is None or len(speech) == 0):
            raise DataError("augment.speech_noise_probability > 0 mixes in the real speech of data.unknown_audio, "
                            "which is empty; set data.unknown_audio=PATH or augment.speech_noise_probability=0")
        self.speech = speech
        self.no_speech_label = int(no_speech_label)
        if len(split) == 0:
            raise DataError("the training split is empty; check data.source/data.path and data.words")
        self.split = split
        self.noises = [n for n in noises if len(n) > 0]
        self.cfg = cfg
        self.batch_size = int(batch_size)
        self.sample_rate = int(sample_rate)
        self.seed = int(seed)
        self.augment = augment
        self.epoch = 0
        self.order = np.random.default_rng([self.seed, 0]).permutation(len(split))

    def __len__(self) -> int:
        return int(np.ceil(len(self.split) / self.batch_size))

    def on_epoch_end(self):
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.split))

    def __getitem__(self, index):
        ids = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        audio = self.split.audio[ids].copy()
        labels = self.split.labels[ids]
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            audio = augment_batch(audio, self.noises, self.cfg, self.sample_rate, rng)
            if self.cfg.speech_noise_probability > 0:
                audio = mix_speech(audio, labels != self.no_speech_label, self.speech, self.cfg,
                                   np.random.default_rng([self.seed, self.epoch, index, 3]))
        return audio, labels


class PrefixedClips(AugmentedClips):
    """`AugmentedClips` with `prefix_clips` random (augmented) training clips joined before each
    clip; the label stays the last clip's. Input of `apps.speech.model.with_prefix` models."""

    def __init__(self, *args, prefix_clips: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.prefix_clips = int(prefix_clips)

    def __getitem__(self, index):
        audio, labels = super().__getitem__(index)
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        pieces = []
        for _ in range(self.prefix_clips):
            ids = rng.integers(0, len(self.split), len(labels))
            clips = self.split.audio[ids].copy()
            pieces.append(augment_batch(clips, self.noises, self.cfg, self.sample_rate, rng) if self.augment else clips)
        return np.concatenate(pieces + [audio], axis=1), labels


class DomainAdversarialClips(AugmentedClips):
    """`AugmentedClips` batches plus `batch_size // 2` unlabeled real clips (augmented the same way, so
    noise, level and band say nothing about the domain); labels packed `[class, is_real]` as float32."""

    def __init__(self, *args, real: np.ndarray, **kwargs):
        super().__init__(*args, **kwargs)
        if len(real) == 0:
            raise DataError("data.adapt_audio gave no clips for domain-adversarial training")
        self.real = real

    def __getitem__(self, index):
        audio, labels = super().__getitem__(index)
        rng = np.random.default_rng([self.seed, self.epoch, index, 2])
        real = self.real[rng.integers(0, len(self.real), max(1, len(labels) // 2))].copy()
        if self.augment:
            real = augment_batch(real, self.noises, self.cfg, self.sample_rate, rng)
        packed = np.concatenate([domain_labels(labels), np.tile(np.float32([0, 1]), (len(real), 1))])
        return np.concatenate([audio, real]).astype(np.float32), packed


def domain_labels(labels: np.ndarray) -> np.ndarray:
    """Labels of labeled clips packed `[class, is_real=0]` for a domain-adversarial train model."""
    return np.stack([labels, np.zeros_like(labels)], 1).astype(np.float32)


def prefixed(split: Split, prefix_clips: int, seed: int = 0) -> np.ndarray:
    """`split.audio` with `prefix_clips` other clips of the split joined before each (a fixed draw),
    to validate a `with_prefix` model the way it trains."""
    rng = np.random.default_rng([seed, 2])
    pieces = [split.audio[rng.integers(0, len(split), len(split))] for _ in range(prefix_clips)]
    return np.concatenate(pieces + [split.audio], axis=1)


def room_response(rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: the direct path, then Gaussian noise decaying 60 dB over
    `rt60` seconds (Schroeder's statistical model of a diffuse late tail), unit energy."""
    length = max(2, int(rt60 * sample_rate))
    t = np.arange(length) / sample_rate
    response = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078: -60 dB at rt60
    response[0] = 0.0
    response *= rng.uniform(0.1, 0.7) / np.sqrt(np.sum(response ** 2))  # reverberant / direct energy ratio
    response[0] = 1.0
    return (response / np.sqrt(np.sum(response ** 2))).astype(np.float32)


def reverberate(clip: np.ndarray, rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """`clip` convolved with `room_response(rt60)`, cut to its length and rescaled to its peak level."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(clip, room_response(rt60, sample_rate, rng))[:len(clip)]
    peak, wet_peak = float(np.abs(clip).max()), float(np.abs(wet).max())
    return (wet * (peak / wet_peak) if wet_peak > 0 else wet).astype(np.float32)


def lowpass(clip: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """`clip` with nothing above `cutoff_hz` (a raised-cosine roll-off over the last 10 % below it),
    as audio recorded at a lower sample rate; cutoffs at or above Nyquist leave it as it is."""
    nyquist = sample_rate / 2
    if cutoff_hz >= nyquist:
        return clip
    spectrum = np.fft.rfft(clip)
    freqs = np.fft.rfftfreq(len(clip), 1.0 / sample_rate)
    start = 0.9 * cutoff_hz
    ramp = np.clip((freqs - start) / (cutoff_hz - start), 0.0, 1.0)
    return np.fft.irfft(spectrum * 0.5 * (1.0 + np.cos(np.pi * ramp)), n=len(clip)).astype(np.float32)


def mix_speech(audio: np.ndarray, allowed: np.ndarray, speech: np.ndarray, cfg: AugmentConfig,
               rng: np.random.Generator) -> np.ndarray:
    """`audio [b, samples]` with, for each clip where `allowed` and with `cfg.speech_noise_probability`,
    one of the `speech [n, samples]` clips (circularly shifted at random) mixed in at an SNR drawn from
    `cfg.speech_noise_snr_db_range`; a copy is returned."""
    out = audio.copy()
    low, high = tuple(cfg.speech_noise_snr_db_range)
    for i in range(len(out)):
        if not allowed[i] or rng.random() >= cfg.speech_noise_probability:
            continue
        other = np.roll(speech[int(rng.integers(len(speech)))], int(rng.integers(out.shape[1])))
        signal_power, other_power = float(np.mean(out[i] ** 2)), float(np.mean(other ** 2))
        if signal_power > 1e-8 and other_power > 1e-10:
            scale = np.sqrt(signal_power / (other_power * 10 ** (rng.uniform(low, high) / 10)))
            out[i] = np.clip(out[i] + scale * other, -1.0, 1.0)
    return out


def augment_batch(audio: np.ndarray, noises: Sequence[np.ndarray], cfg: AugmentConfig, sample_rate: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Waveform augmentation of a batch `[b, samples]` (a copy is returned)."""
    batch, num_samples = audio.shape
    out = np.empty_like(audio)
    max_shift = int(cfg.time_shift_seconds * sample_rate)
    low_speed, high_speed = (tuple(cfg.speed_range) + (1.0, 1.0))[:2]
    low_gain, high_gain = (tuple(cfg.volume_range) + (1.0, 1.0))[:2]
    low_snr, high_snr = (tuple(cfg.snr_db_range) + (20.0, 20.0))[:2]
    for i in range(batch):
        clip = audio[i]
        if high_speed > low_speed:
            speed = rng.uniform(low_speed, high_speed)
            positions = np.arange(0, num_samples, speed)
            clip = fit_length(np.interp(positions, np.arange(num_samples), clip).astype(np.float32), num_samples)
        if max_shift > 0:
            shift = int(rng.integers(-max_shift, max_shift + 1))
            clip = np.roll(clip, shift)
            if shift > 0:
                clip[:shift] = 0.0
            elif shift < 0:
                clip[shift:] = 0.0
        if rng.random() < cfg.reverb_probability:
            clip = reverberate(clip, rng.uniform(*cfg.rt60_range), sample_rate, rng)
        clip = clip * rng.uniform(low_gain, high_gain)
        if noises and rng.random() < cfg.noise_probability:
            noise = noises[int(rng.integers(len(noises)))]
            if len(noise) <= num_samples:
                noise = np.tile(noise, num_samples // len(noise) + 1)
            start = int(rng.integers(0, len(noise) - num_samples))
            segment = noise[start:start + num_samples]
            signal_power = float(np.mean(clip ** 2))
            noise_power = float(np.mean(segment ** 2)) + 1e-12
            if signal_power > 1e-8:
                snr = rng.uniform(low_snr, high_snr)
                scale = np.sqrt(signal_power / (noise_power * 10 ** (snr / 10)))
            else:  # silence clips: add noise at a random absolute level
                scale = rng.uniform(0.0, 0.3) / np.sqrt(noise_power)
            clip = clip + scale * segment
        if rng.random() < cfg.lowpass_probability:
            clip = lowpass(clip, rng.uniform(*cfg.lowpass_hz_range), sample_rate)
        out[i] = np.clip(clip, -1.0, 1.0)
    return out
