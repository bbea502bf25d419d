"""Train a keyword-spotting model and write a run dir (config, model, history, metrics, plots).

    python -m apps.speech.train --config default --run-dir runs/speech            # offline synthetic data
    python -m apps.speech.train --config fsdd --run-dir runs/fsdd                 # real spoken digits
    python -m apps.speech.train --config default --set model.architecture=streaming --run-dir runs/speech_stream
    python -m apps.speech.train --config default --set data.source=folder --set data.path=~/speech_commands --run-dir runs/sc

The run dir holds `config.json`, `labels.json` (class order), `dataset.json` (split sizes),
`model.keras` (raw audio in; the feature normalisation is inside), `history.json/csv`,
`metrics.json` (held-out test accuracy, per-class precision/recall), `training_curves.png`
and `confusion_matrix.png`.
"""

from __future__ import annotations

import json
import time

import numpy as np

from apps.speech.config import PRESETS, Config
from common.config import to_dict, build_parser, describe, resolve_config, save_config
from common.training import USER_ERRORS, report_user_error


def predict_probabilities(model, audio: np.ndarray, batch_size: int = 128) -> np.ndarray:
    if len(audio) == 0:
        return np.zeros((0, model.outputs[0].shape[-1]), dtype=np.float32)
    return np.concatenate([np.asarray(model(audio[i:i + batch_size], training=False))
                           for i in range(0, len(audio), batch_size)])


def evaluate_split(model, split, labels, run_path, prefix: str = "test") -> dict:
    """Accuracy/per-class report of `split`, plus its confusion-matrix PNG in `run_path`."""
    from common.evaluation import classification_report, plot_confusion_matrix

    probabilities = predict_probabilities(model, split.audio)
    predictions = probabilities.argmax(axis=-1)
    report = classification_report(split.labels, predictions, labels)
    counts = np.bincount(split.labels, minlength=len(labels))
    report["majority_baseline_accuracy"] = float(counts.max() / counts.sum())
    plot_confusion_matrix(report["confusion_matrix"], labels, run_path / "confusion_matrix.png",
                          title=f"{prefix}: accuracy {report['accuracy']:.3f} (n={len(split)})")
    return report


def main(argv=None) -> int:
    from common.training import add_train_flags

    parser = build_parser("Train a speech command (keyword spotting) model.", PRESETS)
    add_train_flags(parser)
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(PRESETS, args.config, args.set)
        return _train(cfg, args)
    except USER_ERRORS as err:
        return report_user_error(err)


def _train(cfg: Config, args) -> int:

    from apps.speech.data import AugmentedClips, PrefixedClips, load_data, prefixed
    from apps.speech.model import adapt_normalization, build_model, compile_model, with_prefix
    from common.evaluation import plot_history
    from common.distribute import setup_distribution
    from common.training import RunDir, configure_precision, fit, make_optimizer, print_summary, set_seed, steps_for

    started = time.perf_counter()
    RunDir(args.run_dir, app="speech", config=to_dict(cfg), resume=args.resume, overwrite=args.overwrite).check()  # before generating/loading data
    print("Config:\n  " + "\n  ".join(describe(cfg)))
    set_seed(cfg.train.seed)
    configure_precision(cfg.train.precision)
    data = load_data(cfg.data)
    labels = data.labels
    summary = data.summary()
    print(f"Data: {summary['train']['num_examples']} train / {summary['validation']['num_examples']} validation / "
          f"{summary['test']['num_examples']} test clips, {len(labels)} classes, from {data.root} "
          f"({time.perf_counter() - started:.0f} s)")
    if len(data.train) == 0:
        raise ValueError(f"no training clips found in {data.root} for labels {labels}")

    dist = setup_distribution(cfg.train)
    print(dist.describe())
    with dist.scope():
        model = build_model(cfg.model, cfg.features, cfg.augment, len(labels), cfg.data.sample_rate,
                            cfg.data.clip_seconds, seed=cfg.train.seed)
        sample = data.train.audio[np.random.default_rng(cfg.train.seed).permutation(len(data.train))[:1000]]
        adapt_normalization(model, sample)
        prefix = cfg.augment.prefix_clips
        # With prefix clips the optimizer trains a longer-input model that shares every layer with `model`.
        train_model = with_prefix(model, prefix) if prefix else model
        optimizer = make_optimizer(cfg.train, steps_for(len(data.train), dist.global_batch_size), dist)
        compile_model(train_model, optimizer)
    clips = PrefixedClips if prefix else AugmentedClips
    train_ds = clips(data.train, data.noises, cfg.augment, dist.global_batch_size, cfg.data.sample_rate,
                     seed=cfg.train.seed, **({"prefix_clips": prefix} if prefix else {}))
    val = None
    if len(data.validation):
        val_audio = prefixed(data.validation, prefix, cfg.train.seed) if prefix else data.validation.audio
        val = (val_audio, data.validation.labels)
    monitor = "val_accuracy" if val is not None else "accuracy"

    with RunDir(args.run_dir, app="speech", config=to_dict(cfg), resume=args.resume, overwrite=args.overwrite, is_chief=dist.is_chief) as run:
        save_config(cfg, run.path / "config.json")
        run.write_json("labels.json", labels)
        run.write_json("dataset.json", summary)
        # The run keeps the one-clip model; with prefix clips it shares every weight with the one trained.
        model, history = fit(train_model, train_ds, val, cfg.train, run, monitor=monitor, mode="max", dist=dist,
                             keep=model)
        plot_history(history, run.path / "training_curves.png", title=f"speech {cfg.model.architecture}")
        split_name = "test" if len(data.test) else "validation"
        split = data.test if len(data.test) else data.validation
        metrics: dict = {"architecture": cfg.model.architecture, "source": cfg.data.source,
                         "num_params": int(model.count_params())}
        if len(split):
            report = evaluate_split(model, split, labels, run.path, prefix=f"{cfg.data.source} {split_name}")
            metrics.update({f"{split_name}_accuracy": report["accuracy"],
                            f"{split_name}_macro_f1": report["macro_f1"],
                            "majority_baseline_accuracy": report["majority_baseline_accuracy"],
                            "chance_accuracy": 1.0 / len(labels),
                            f"{split_name}_report": report})
        if val is not None:
            metrics["validation_accuracy"] = float(np.mean(
                predict_probabilities(model, data.validation.audio).argmax(-1) == data.validation.labels))
        metrics["train_seconds"] = time.perf_counter() - started
        run.write_json("metrics.json", metrics)
    print_summary(f"speech ({cfg.model.architecture}, {cfg.data.source})", run.final,
                  {k: v for k, v in metrics.items() if not isinstance(v, dict)},
                  ["metrics.json", "training_curves.png", "confusion_matrix.png", "model.keras", "history.json"])
    print(json.dumps({"run_dir": str(run.final)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
