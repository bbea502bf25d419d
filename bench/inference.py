"""Inference latency and throughput of every app's exported models on the CPU, side by side in one run.

    python -m bench.inference --out bench/out/inference_cpu.json                 # tiny runs trained here
    python -m bench.inference --run speech=runs/speech --run translation=runs/translate ...

For each app the run dir's model is exported (TensorFlow backend) into a temporary folder and timed:

- speech: clips/s of the Keras model, the SavedModel (batch 1 and 64) and the builtins-only TFLite
  clip model (batch 1, 1 thread); for a `streaming` run (trained here when no speech run is given:
  a second tiny run with `model.architecture=streaming`) the step model's latency per chunk
  (TFLite, 1 thread, p50/p99 ms, plus the chunk's length in ms).
- sentiment: texts/s of the Keras model and the string-in SavedModel (batch 64).
- translation: sentences/s of greedy and beam-4 search, the Python reference beside the compiled
  batched search (`decode.Translator`), and the string-in/string-out SavedModel (greedy and beam 4, batch 32).
- forecasting: windows/s of the Keras model and the raw-scale SavedModel (batch 256).
- language_model: tokens/s of the streaming step model, Keras vs TFLite (1 thread), one token per call.

Ratios are against a reference measured in the same process (`ratios` in the JSON). Runs trained
here use the `tiny` presets: their models are smaller than the `default` presets', so absolute
figures are lower bounds on the cost of a real run; pass `--run APP=DIR` to time real runs.
Every timing is the median over calls after an untimed warm-up call; p99 needs >= 100 calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # export runs on TensorFlow; set before keras is imported

from common.export import time_calls  # noqa: E402

APPS = ("speech", "sentiment", "translation", "forecasting", "language_model")
# Cut to the fastest settings that still train (as tests/test_app_contract.py does): this is a speed bench.
FAST = {
    "speech": ["train.epochs=1", "data.synthetic_speakers=6", "data.synthetic_repeats=1"],
    "speech_streaming": ["train.epochs=1", "data.synthetic_speakers=6", "data.synthetic_repeats=1",
                         "model.architecture=streaming"],
    "sentiment": [],
    "translation": ["train.epochs=1", "data.num_examples=200"],
    "forecasting": [],
    "language_model": ["train.epochs=1"],
}


def per_second(timing: dict, items_per_call: int) -> float:
    return items_per_call / (timing["median_ms"] / 1e3)


def tflite_call(path: Path, num_threads: int = 1) -> tuple[Callable[[], object], dict]:
    """A zero-input call of the flatbuffer's signature on LiteRT, and its input shapes."""
    from common.export import tflite_interpreter

    runner = tflite_interpreter(path, num_threads).get_signature_runner()
    details = runner.get_input_details()
    feed = {name: np.zeros(d["shape"], dtype=d["dtype"]) for name, d in details.items()}
    return (lambda: runner(**feed)), {name: [int(s) for s in d["shape"]] for name, d in details.items()}


def _train_tiny(name: str, folder: Path) -> Path:
    from common.pipeline import train

    app = "speech" if name == "speech_streaming" else name
    path = folder / name
    print(f"training a tiny {name} run for the bench ...", flush=True)
    train(app, "tiny", path, overrides=FAST[name])
    return path


def bench_speech(run_dir: Path, out: Path, streaming_dir: Path | None) -> dict:
    import tensorflow as tf

    from apps.speech.export import export_flat, export_streaming, sample_clips
    from apps.speech.inference import predict_probabilities
    from common.export import export_saved_model
    from common.pipeline import load_run

    run = load_run(run_dir, "speech")
    cfg, model = run.cfg, run.model
    clips = sample_clips(cfg, 64)
    report: dict = {"run_dir": str(run_dir), "architecture": cfg.model.architecture, "clip_samples": int(clips.shape[1])}
    saved = tf.saved_model.load(str(export_saved_model(model, out / "speech_saved_model")))
    reference = predict_probabilities(model, clips)
    export_flat(model, "tflite", out / "speech.tflite", clips[:4], reference[:4])
    tflite, _ = tflite_call(out / "speech.tflite", 1)
    one, batch = tf.constant(clips[:1]), tf.constant(clips)
    timings = {
        "keras_batch1": time_calls(lambda: model(clips[:1], training=False)),
        "keras_batch64": time_calls(lambda: model(clips, training=False), min_calls=5),
        "saved_model_batch1": time_calls(lambda: saved.serve(one)),
        "saved_model_batch64": time_calls(lambda: saved.serve(batch), min_calls=5),
        "tflite_batch1_1thread": time_calls(tflite, min_calls=100),
    }
    report["timings"] = timings
    report["clips_per_s"] = {k: per_second(v, 64 if k.endswith("64") else 1) for k, v in timings.items()}
    report["ratios"] = {"tflite_vs_keras_batch1": timings["keras_batch1"]["median_ms"] / timings["tflite_batch1_1thread"]["median_ms"],
                        "batch64_vs_batch1_saved_model": report["clips_per_s"]["saved_model_batch64"]
                        / report["clips_per_s"]["saved_model_batch1"]}
    if streaming_dir is not None:
        srun = load_run(streaming_dir, "speech")
        sclips = sample_clips(srun.cfg, 4)
        sfull = predict_probabilities(srun.model, sclips)
        info = export_streaming(srun.model, srun.cfg, out, sclips, sfull)
        step_call, shapes = tflite_call(Path(info["path"]), 1)
        chunk = info["chunk_samples"]
        timing = time_calls(step_call, min_calls=1000)
        report["streaming_step"] = {"run_dir": str(streaming_dir), "chunk_samples": chunk,
                                    "chunk_ms": 1e3 * chunk / srun.cfg.data.sample_rate, "tflite_1thread": timing,
                                    "realtime_factor": (1e3 * chunk / srun.cfg.data.sample_rate) / timing["median_ms"],
                                    "parity_max_abs_diff": info["max_abs_diff_tflite_stream_vs_full"]}
    return report


def bench_sentiment(run_dir: Path, out: Path) -> dict:
    import tensorflow as tf

    from common.pipeline import load_run

    run = load_run(run_dir, "sentiment")
    run.export(out / "sentiment", formats=["keras", "saved_model"], num_examples=4)
    saved = tf.saved_model.load(str(out / "sentiment" / "text" / "saved_model"))
    texts = [f"the film was {w} and the acting {v}" for w, v in zip(["good", "dull", "great", "bad"] * 16,
                                                                      ["fine", "poor", "superb", "weak"] * 16)]
    batch = tf.constant(texts)
    timings = {"saved_model_batch64": time_calls(lambda: saved.serve(batch), min_calls=10),
               "api_predict_batch64": time_calls(lambda: run.predict(texts), min_calls=5)}
    return {"run_dir": str(run_dir), "timings": timings,
            "texts_per_s": {k: per_second(v, len(texts)) for k, v in timings.items()},
            "ratios": {"saved_model_vs_api": timings["api_predict_batch64"]["median_ms"]
                       / timings["saved_model_batch64"]["median_ms"]}}


def bench_translation(run_dir: Path, out: Path, sentences: int) -> dict:
    import tensorflow as tf

    from apps.nlp.translation.data import load_splits
    from apps.nlp.translation.decode import Translator, time_decoding
    from common.pipeline import load_run

    run = load_run(run_dir, "translation")
    translator = Translator.from_run_dir(run_dir)
    splits = load_splits(run.cfg.data)
    texts = [pair[0] for pair in splits.test + splits.valid + splits.train][:sentences]
    ids, _ = translator.encode_sources(texts)
    report: dict = {"run_dir": str(run_dir), "sentences": len(texts)}
    for beam in (1, 4):
        timed = time_decoding(translator, ids, beam, ("python", "compiled"))
        report[f"beam{beam}"] = {"python_s": timed["python"]["seconds"], "compiled_s": timed["compiled"]["seconds"],
                                 "python_sentences_per_s": timed["python"]["sentences_per_second"],
                                 "compiled_sentences_per_s": timed["compiled"]["sentences_per_second"],
                                 "speedup": timed["speedup"], "differing": len(timed["differing"])}
    run.export(out / "translation", formats=None, num_examples=4)
    saved = tf.saved_model.load(str(out / "translation" / "translator"))
    batch = tf.constant(texts[:32])
    for beam in (1, 4):
        timing = time_calls(lambda: saved.translate(batch, tf.constant(beam)), min_calls=3)
        report[f"saved_model_beam{beam}_batch32"] = {**timing, "sentences_per_s": per_second(timing, len(texts[:32]))}
    report["ratios"] = {f"compiled_vs_python_beam{b}": report[f"beam{b}"]["speedup"] for b in (1, 4)}
    return report


def bench_forecasting(run_dir: Path, out: Path) -> dict:
    import tensorflow as tf

    from apps.timeseries.export import raw_scale_model
    from common.export import export_saved_model
    from common.pipeline import load_run

    run = load_run(run_dir, "forecasting")
    model = raw_scale_model(run.model, run.state["scaler_object"])  # what the export writes
    shape = tuple(int(s) for s in model.inputs[0].shape[1:])
    windows = np.random.default_rng(0).standard_normal((256, *shape)).astype("float32")
    saved = tf.saved_model.load(str(export_saved_model(model, out / "forecast_saved_model")))
    batch = tf.constant(windows)
    timings = {"keras_batch256": time_calls(lambda: model(windows, training=False), min_calls=10),
               "saved_model_batch256": time_calls(lambda: saved.serve(batch), min_calls=10)}
    return {"run_dir": str(run_dir), "window_shape": list(shape), "timings": timings,
            "windows_per_s": {k: per_second(v, 256) for k, v in timings.items()},
            "ratios": {"saved_model_vs_keras": timings["keras_batch256"]["median_ms"]
                       / timings["saved_model_batch256"]["median_ms"]}}


def bench_language_model(run_dir: Path, out: Path) -> dict:
    from common.pipeline import load_run

    run = load_run(run_dir, "language_model")
    run.export(out / "lm", formats=["tflite"], num_examples=4)
    step_call, shapes = tflite_call(out / "lm" / "step" / "model.tflite", 1)
    from apps.nlp.language_model.model import build_step_model

    step = build_step_model(run.state["lm"], batch_size=1, unroll=True)  # what the export converts
    feed = [np.zeros([int(d) if d is not None else 1 for d in t.shape], dtype=t.dtype) for t in step.inputs]
    timings = {"keras_step": time_calls(lambda: step(feed, training=False), min_calls=50),
               "tflite_step_1thread": time_calls(step_call, min_calls=200)}
    return {"run_dir": str(run_dir), "step_inputs": shapes, "timings": timings,
            "tokens_per_s": {k: per_second(v, 1) for k, v in timings.items()},
            "ratios": {"tflite_vs_keras": timings["keras_step"]["median_ms"] / timings["tflite_step_1thread"]["median_ms"]}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], metavar="APP=DIR",
                        help=f"time this run dir for APP (one of {', '.join(APPS)}, or speech_streaming); "
                             "apps not given get a tiny run trained here")
    parser.add_argument("--apps", default=",".join(APPS), help="comma-separated subset to time")
    parser.add_argument("--sentences", type=int, default=200, help="translation sentences to decode (test split)")
    parser.add_argument("--out", default="bench/out/inference_cpu.json")
    args = parser.parse_args(argv)
    runs = dict(item.split("=", 1) for item in args.run)
    wanted = [a for a in args.apps.split(",") if a]
    unknown = set(wanted) - set(APPS) or set(runs) - set(APPS) - {"speech_streaming"}
    if unknown:
        parser.error(f"unknown app(s) {sorted(unknown)}; choose from {', '.join(APPS)}")
    import keras

    if keras.backend.backend() != "tensorflow":
        parser.error("the inference bench exports through TensorFlow: run it with KERAS_BACKEND=tensorflow")
    import tensorflow as tf

    report: dict = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
                    "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
                    "backend": keras.backend.backend(), "apps": {}}
    with tempfile.TemporaryDirectory(prefix="lstm-suite-bench-") as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("LSTM_SUITE_CACHE", str(tmp / "cache"))

        def run_dir(name: str) -> Path:
            return Path(runs[name]) if name in runs else _train_tiny(name, tmp / "runs")

        for app in wanted:
            out = tmp / "export" / app
            out.mkdir(parents=True)
            print(f"timing {app} ...", flush=True)
            if app == "speech":
                streaming = runs.get("speech_streaming")
                given = run_dir("speech")
                is_streaming = json.loads((given / "config.json").read_text())["model"]["architecture"] == "streaming"
                streaming_dir = given if is_streaming else Path(streaming) if streaming else _train_tiny(
                    "speech_streaming", tmp / "runs")
                report["apps"][app] = bench_speech(given, out, streaming_dir)
            elif app == "translation":
                report["apps"][app] = bench_translation(run_dir(app), out, args.sentences)
            else:
                report["apps"][app] = globals()[f"bench_{app}"](run_dir(app), out)
            report["apps"][app]["trained_here"] = app not in runs
            print(json.dumps({k: v for k, v in report["apps"][app].items() if k != "timings"}, indent=1), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
