"""The speech app's declarations for the shared pipeline (common/pipeline.py): data, model, state,
evaluation, prediction and export of a keyword-spotting model (raw 16 kHz audio in).

    python -m apps.speech.train --config default --run-dir runs/speech
    from common.pipeline import train; run = train("speech", "tiny", "/tmp/speech")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from apps.speech.config import PRESETS, SILENCE, UNKNOWN, Config
from common.errors import ConfigError, DataError
from common.pipeline import App, Built, Job, Prepared, check_outputs
from common.rundir import read_json

EXPORT_FORMATS = ("keras", "saved_model", "tflite", "onnx")  # the default set
# tflite_int8: post-training int8 clip (and streaming step) models, with test accuracy and latency vs float.
EXTRA_EXPORT_FORMATS = ("tflite_int8",)


class SpeechApp(App):
    name = "speech"
    package = "apps.speech"
    title = "keyword spotting on raw audio (keywords, _silence_, _unknown_)"
    config_class = Config
    presets = PRESETS
    preset_help = {
        "tiny": "seconds: 3 words, 6 synthetic speakers, 1 epoch (tests)",
        "default": "make train-speech: 10 core words from 100 synthetic speakers (eSpeak NG + SVOX Pico), ~10 min on 2 CPU cores",
        "gpu": "400 synthetic speakers, wider CRNN, 25 epochs within an 8-minute budget",
        "fsdd": "the real-data check: Free Spoken Digit Dataset, official split",
    }
    monitor = ("val_accuracy", "max")
    splits = ("train", "validation", "test", "all")
    export_formats = EXPORT_FORMATS + EXTRA_EXPORT_FORMATS
    default_export_formats = EXPORT_FORMATS

    def validate(self, cfg: Config) -> None:
        super().validate(cfg)
        m, f = cfg.model, cfg.features
        if f.fft_length < f.frame_length:
            raise ConfigError(f"features.fft_length ({f.fft_length}) must be >= features.frame_length "
                              f"({f.frame_length})")
        if f.upper_edge_hertz > cfg.data.sample_rate / 2 or f.lower_edge_hertz >= f.upper_edge_hertz:
            raise ConfigError(f"features.lower_edge_hertz < upper_edge_hertz <= data.sample_rate / 2 must hold, got "
                              f"{f.lower_edge_hertz} / {f.upper_edge_hertz} / {cfg.data.sample_rate / 2:g}")
        if f.clip_mean_norm == "on" and m.architecture == "streaming":
            raise ConfigError("features.clip_mean_norm=on needs the whole clip, which the streaming architecture never "
                              "sees; use auto, causal, running or off")
        if cfg.augment.prefix_clips and m.architecture != "streaming":
            raise ConfigError("augment.prefix_clips trains the streaming architecture only; add --set "
                              "model.architecture=streaming or leave augment.prefix_clips=0")
        frames = int(round(cfg.data.sample_rate * cfg.data.clip_seconds))
        if frames < f.frame_length:
            raise ConfigError(f"data.clip_seconds={cfg.data.clip_seconds} gives {frames} samples, fewer than one "
                              f"frame (features.frame_length={f.frame_length})")
        if cfg.data.path and (cfg.data.source == "synthetic" or cfg.data.source.startswith("tfds:")):
            raise ConfigError(f"data.path={cfg.data.path!r} is read only by data.source=folder or fsdd, and "
                              f"data.source={cfg.data.source!r} ignores it; add --set data.source=folder "
                              f"(a Speech Commands layout folder or .tar.xz) or fsdd")
        if cfg.data.source == "folder" and not cfg.data.path:
            raise ConfigError("data.source=folder needs a folder: --set data.path=/path/to/speech_commands")
        if cfg.data.source not in ("synthetic", "folder", "fsdd") and not cfg.data.source.startswith("tfds:"):
            raise ConfigError(f"unknown data.source {cfg.data.source!r}; choose synthetic, folder, fsdd or "
                              f"tfds:speech_commands")
        if m.domain_weight > 0 and not cfg.data.adapt_audio:
            raise ConfigError("model.domain_weight > 0 needs unlabeled real audio: add --set "
                              "data.adapt_audio=PATH (FSDD or a <word>/<file>.wav folder/archive)")
        if cfg.data.adapt_audio and m.domain_weight == 0:
            raise ConfigError("data.adapt_audio is read only by domain-adversarial training; add --set "
                              "model.domain_weight=0.3 (for example) or leave data.adapt_audio empty")
        if cfg.data.adapt_speakers and not cfg.data.adapt_audio:
            raise ConfigError("data.adapt_speakers picks FSDD speakers of data.adapt_audio, which is empty")
        if cfg.data.unknown_audio and not cfg.data.include_unknown:
            raise ConfigError("data.unknown_audio adds _unknown_ clips, but data.include_unknown=false has no "
                              "_unknown_ class; set data.include_unknown=true or leave data.unknown_audio empty")
        if cfg.data.unknown_audio and cfg.data.source == "fsdd":
            raise ConfigError("data.unknown_audio adds real non-keyword speech, but data.source=fsdd has no "
                              "_unknown_ class; use it with data.source=synthetic or folder")
        if cfg.augment.speech_noise_probability > 0 and not cfg.data.unknown_audio:
            raise ConfigError("augment.speech_noise_probability mixes in the real speech of data.unknown_audio, which "
                              "is empty; add --set data.unknown_audio=PATH (FSDD for the core words)")
        if cfg.data.unknown_speakers and not cfg.data.unknown_audio:
            raise ConfigError("data.unknown_speakers picks FSDD speakers of data.unknown_audio, which is empty")
        if m.domain_weight > 0 and cfg.augment.prefix_clips:
            raise ConfigError("model.domain_weight and augment.prefix_clips cannot be combined; set one of them to 0")
        if f.frame_step > f.frame_length:
            raise ConfigError(f"features.frame_step ({f.frame_step}) must be <= features.frame_length "
                              f"({f.frame_length}): frames may not skip samples")
        if f.kind == "mfcc" and f.num_mfcc > f.num_mel_bins:
            raise ConfigError(f"features.num_mfcc ({f.num_mfcc}) must be <= features.num_mel_bins ({f.num_mel_bins})")

    def prepare(self, job: Job) -> Prepared:
        from apps.speech.data import (AugmentedClips, DomainAdversarialClips, PrefixedClips, add_real_unknown,
                                      domain_labels, load_adaptation_audio, load_data, prefixed)
        from common.training import steps_for

        cfg, dist = job.cfg, job.dist
        data = load_data(cfg.data)
        if len(data.train) == 0:
            raise DataError(f"no training clips found in {data.root} for labels {data.labels}")
        speech, real_unknown = add_real_unknown(data, cfg.data) if cfg.data.unknown_audio else (None, None)
        if real_unknown:
            print(f"_unknown_: {real_unknown['recordings']} real recordings from {cfg.data.unknown_audio} "
                  f"(of {real_unknown['available']} without a keyword)", flush=True)
        prefix = cfg.augment.prefix_clips
        clips, adapt = AugmentedClips, None
        extra = {"speech": speech, "no_speech_label": data.labels.index(SILENCE) if SILENCE in data.labels else -1}
        if prefix:
            clips, extra = PrefixedClips, {**extra, "prefix_clips": prefix}
        if cfg.model.domain_weight > 0:
            real, adapt = load_adaptation_audio(cfg.data.adapt_audio, cfg.data.sample_rate, data.train.audio.shape[1],
                                                data.labels, cfg.data.adapt_speakers)
            print(f"domain-adversarial: {adapt['recordings']} unlabeled real clips from {cfg.data.adapt_audio} "
                  f"({adapt['keyword_recordings']} of them say a keyword)", flush=True)
            clips, extra = DomainAdversarialClips, {**extra, "real": real}
        train = clips(data.train, data.noises, cfg.augment, dist.global_batch_size, cfg.data.sample_rate,
                      seed=cfg.train.seed, **extra)
        validation = None
        if len(data.validation):
            audio = prefixed(data.validation, prefix, cfg.train.seed) if prefix else data.validation.audio
            labels = domain_labels(data.validation.labels) if adapt else data.validation.labels
            validation = (audio, labels)
        summary = data.summary()
        if adapt:
            summary["adapt_audio"] = adapt
        if real_unknown:
            summary["unknown_audio"] = real_unknown
        summary.update(train_clips=len(data.train), validation_clips=len(data.validation), test_clips=len(data.test),
                       classes=len(data.labels))
        return Prepared(train, validation, steps_for(len(data.train), dist.global_batch_size), summary, data)

    def build(self, job: Job) -> Built:
        import keras

        from apps.speech.model import (LabeledAccuracy, adapt_normalization, build_model, domain_adversarial_loss,
                                       with_domain_head, with_prefix)

        cfg, data = job.cfg, job.prepared.data
        model = build_model(cfg.model, cfg.features, cfg.augment, len(data.labels), cfg.data.sample_rate,
                            cfg.data.clip_seconds, seed=cfg.train.seed)
        sample = data.train.audio[np.random.default_rng(cfg.train.seed).permutation(len(data.train))[:1000]]
        adapt_normalization(model, sample)
        prefix = cfg.augment.prefix_clips
        compile_args = {"loss": keras.losses.SparseCategoricalCrossentropy(),
                        "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}
        if cfg.model.domain_weight > 0:  # trains a two-headed model that shares every layer of `model`
            n = len(data.labels)
            return Built(model, {"loss": domain_adversarial_loss(n), "metrics": [LabeledAccuracy(n)]},
                         train_model=with_domain_head(model, cfg.model.domain_weight, cfg.model.domain_units,
                                                      seed=cfg.train.seed))
        # With prefix clips the optimizer trains a longer-input model that shares every layer with `model`.
        return Built(model, compile_args, train_model=with_prefix(model, prefix) if prefix else None)

    def save_state(self, job: Job) -> None:
        job.run.write_json("labels.json", job.prepared.data.labels)

    def after_training(self, job: Job, model) -> dict:
        from apps.speech.inference import predict_probabilities, score_split

        cfg, data = job.cfg, job.prepared.data
        labels = data.labels
        metrics: dict = {"architecture": cfg.model.architecture, "source": cfg.data.source}
        split_name = "test" if len(data.test) else "validation"
        split = data.test if len(data.test) else data.validation
        if len(split):
            report = score_split(model, split, labels, job.path / "confusion_matrix.png",
                                 title=f"{cfg.data.source} {split_name}")
            metrics.update({f"{split_name}_accuracy": report["accuracy"], f"{split_name}_macro_f1": report["macro_f1"],
                            "majority_baseline_accuracy": report["majority_baseline_accuracy"],
                            "chance_accuracy": 1.0 / len(labels), f"{split_name}_report": report})
        if len(data.validation):
            metrics["validation_accuracy"] = float(np.mean(
                predict_probabilities(model, data.validation.audio).argmax(-1) == data.validation.labels))
        return metrics

    def summary_files(self):
        return ("metrics.json", "training_curves.png", "confusion_matrix.png", "model.keras", "history.json")

    # ------------------------------------------------------------------ a finished run
    def load_state(self, run) -> dict:
        import apps.speech.features  # noqa: F401  (registers the speech layers)
        import apps.speech.model  # noqa: F401

        labels = read_json(run.path / "labels.json", "the class names, written by apps.speech.train")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
            raise DataError(f"{run.path / 'labels.json'} is not a list of class names; the run dir is damaged")
        check_outputs(run, len(labels), "labels.json")
        return {"labels": labels}

    def add_evaluate_arguments(self, parser) -> None:
        parser.add_argument("--keywords-only", action="store_true",
                            help="drop _silence_/_unknown_ clips (score keywords only)")
        parser.add_argument("--spotting", action="store_true",
                            help="also spot keywords in streams made of the clips (recall, false alarms per minute)")
        parser.add_argument("--threshold", type=float, default=0.6, help="--spotting: keyword probability that counts")
        parser.add_argument("--step-model", type=int, default=0, metavar="PHASES",
                            help="--spotting with a streaming run: its step model with PHASES staggered states, each "
                                 "reset once per clip, instead of the sliding window (see predict --help)")
        parser.add_argument("--negatives", action="append", default=[], metavar="PATH",
                            help="--spotting: also count false accepts per hour on real speech holding none of the "
                                 "keywords (FSDD, or a <word>/<file>.wav folder/archive whose keyword folders are "
                                 "left out); repeatable")
        parser.add_argument("--live", action="store_true",
                            help="--spotting with a streaming run: one step-model state run on and on, never reset")

    def evaluation_name(self, split, data, options) -> str:
        name = super().evaluation_name(split, data, options)
        return name + ("_keywords" if options.get("keywords_only") else "")

    def evaluate(self, run, split, data, out: Path, options: dict) -> dict:
        from apps.speech.evaluate import evaluate_run

        return evaluate_run(run, split, data, out, keywords_only=options.get("keywords_only", False),
                            spotting=options.get("spotting", False), threshold=options.get("threshold", 0.6),
                            step_model=options.get("step_model", 0), live=options.get("live", False),
                            negatives=options.get("negatives") or ())

    def print_evaluation(self, metrics: dict, out: Path) -> None:
        from apps.speech.evaluate import print_report

        print_report(metrics, out)

    def predict(self, run, inputs, top_k: int = 3, sample_rate: int | None = None):
        from apps.speech.inference import classify

        return classify(run, inputs, top_k=top_k, sample_rate=sample_rate)

    def add_predict_arguments(self, parser) -> None:
        from apps.speech.predict import add_arguments

        add_arguments(parser)

    def run_predict_command(self, run, args) -> int:
        from apps.speech.predict import run_command

        return run_command(run, args)

    def export(self, run, out: Path, formats, num_examples: int, options: dict) -> dict:
        from apps.speech.export import export_run

        return export_run(run, out, formats, num_examples)

    def print_export(self, report: dict, out: Path) -> None:
        from apps.speech.export import print_report

        print_report(report)


def keyword_mask(labels, split) -> np.ndarray:
    return np.asarray([labels[y] not in (SILENCE, UNKNOWN) for y in split.labels], dtype=bool)


APP = SpeechApp()
