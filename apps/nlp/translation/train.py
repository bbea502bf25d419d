"""Trains the attention encoder–decoder and scores it on the test split.

    python -m apps.nlp.translation.train --config default --run-dir runs/translate
    python -m apps.nlp.translation.train --config anki-cpu --run-dir runs/translate-anki
    python -m apps.nlp.translation.train --config tiny --run-dir /tmp/t --set data.target_lang=de

The default preset trains on the offline synthetic English→Spanish demo task. The run
dir receives config.json, source/target_tokenizer.json, model.keras (the training model;
inference models are rebuilt from its named layers), history.json/csv, history.png,
data.json (split sizes), metrics.json (test BLEU/chrF + signatures) and
translations_test.tsv.

`--set train.distribution=mirrored` (TensorFlow) or `=data_parallel` (KERAS_BACKEND=jax)
trains on every local device with `train.batch_size` examples per replica; BLEU decoding
after training runs on one device (see common/distribute.py).
"""

from __future__ import annotations

import time
import warnings
from typing import Sequence

from apps.nlp.translation.config import PRESETS
from apps.nlp.translation.data import PairBatches, as_backend_dataset, encode_pairs, load_splits
from apps.nlp.translation.decode import Translator
from apps.nlp.translation.evaluate import ValidationBLEU, evaluate_pairs, print_samples, write_translations
from apps.nlp.translation.model import Seq2Seq, compile_training_model
from apps.nlp.translation.tokenizer import BPETokenizer
from common.config import to_dict, build_parser, describe, resolve_config, save_config
from common.evaluation import plot_history
from common.distribute import setup_distribution
from common.training import (RunDir, add_train_flags, configure_precision, fit, make_optimizer,
                             print_summary, set_seed)
from common.training import USER_ERRORS, report_user_error


# Batches arrive pre-shuffled (length buckets reshuffled each epoch); Keras' tf.data notice does not apply.
warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")


def train(cfg, run_dir: str, resume: bool = False, overwrite: bool = False) -> dict:
    # Checked before loading data and training tokenizers, which can take minutes.
    if cfg.decode.select_by_bleu > 0 and cfg.train.distribution != "none":
        raise ValueError("decode.select_by_bleu decodes on one device during training; use it with "
                         "train.distribution=none, or select by validation loss (decode.select_by_bleu=0)")
    RunDir(run_dir, app="translation", config=to_dict(cfg), resume=resume, overwrite=overwrite).check()
    set_seed(cfg.train.seed)
    configure_precision(cfg.train.precision)
    start = time.perf_counter()
    splits = load_splits(cfg.data)
    print(f"data: {cfg.data.source} {cfg.data.source_lang}->{cfg.data.target_lang} {splits.sizes()}")
    t = cfg.tokenizer
    source_tokenizer = BPETokenizer.train([s for s, _ in splits.train], t.source_vocab_size, t.lowercase, t.min_char_count)
    target_tokenizer = BPETokenizer.train([y for _, y in splits.train], t.target_vocab_size, t.lowercase, t.min_char_count)
    limits = (cfg.data.max_source_tokens, cfg.data.max_target_tokens)
    train_src, train_tgt = encode_pairs(splits.train, source_tokenizer, target_tokenizer, *limits)
    valid_src, valid_tgt = encode_pairs(splits.valid, source_tokenizer, target_tokenizer, *limits)
    print(f"tokenizers: source {source_tokenizer.vocab_size} / target {target_tokenizer.vocab_size} tokens; "
          f"{len(train_src)} training pairs within {limits} tokens")
    dist = setup_distribution(cfg.train)
    print(dist.describe())
    # Each batch is a global batch split across the replicas. Short batches are topped up to a
    # multiple of the replica count: JAX shards must be equal, and Keras' TF trainer cannot
    # build from a first batch that splits unevenly (it averages the replicas' slices).
    train_batches = PairBatches(train_src, train_tgt, dist.global_batch_size, shuffle=True, seed=cfg.train.seed,
                                multiple_of=dist.replicas, pad_multiple=cfg.data.pad_multiple)
    valid_batches = PairBatches(valid_src, valid_tgt, dist.global_batch_size, shuffle=False, multiple_of=dist.replicas,
                                pad_multiple=cfg.data.pad_multiple)

    with dist.scope():
        seq2seq = Seq2Seq(cfg.model, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
        model = seq2seq.training_model()
        compile_training_model(model, make_optimizer(cfg.train, len(train_batches), dist), cfg.model.label_smoothing)

    with RunDir(run_dir, app="translation", config=to_dict(cfg), resume=resume, overwrite=overwrite, is_chief=dist.is_chief) as run:
        save_config(cfg, run.path / "config.json")
        source_tokenizer.save(run.path / "source_tokenizer.json")
        target_tokenizer.save(run.path / "target_tokenizer.json")
        run.write_json("data.json", {"source": cfg.data.source, "direction": f"{cfg.data.source_lang}->{cfg.data.target_lang}",
                                     "pairs": splits.sizes(), "training_pairs_within_limits": len(train_src),
                                     "valid_pairs_within_limits": len(valid_src)})
        selection = {}
        if cfg.decode.select_by_bleu > 0:
            make_translator = lambda m: Translator(cfg, source_tokenizer, target_tokenizer,  # noqa: E731
                                                   Seq2Seq.from_trained(m, cfg.model))
            selection = dict(monitor="val_bleu", mode="max",
                             metric_callbacks=[ValidationBLEU(make_translator, splits.valid, cfg.decode.select_by_bleu)])
        model, history = fit(model, as_backend_dataset(train_batches), as_backend_dataset(valid_batches), cfg.train, run,
                             dist=dist, **selection)
        plot_history(history, run.path / "history.png")
        train_seconds = time.perf_counter() - start

        translator = Translator(cfg, source_tokenizer, target_tokenizer, Seq2Seq.from_trained(model, cfg.model))
        metrics, rows = evaluate_pairs(translator, splits.test, max_examples=cfg.decode.max_eval_examples)
        metrics.update(split="test", train_seconds=round(train_seconds, 1), epochs_run=len(history.get("loss", [])),
                       final_val_loss=history.get("val_loss", [None])[-1],
                       final_val_token_accuracy=history.get("val_masked_token_accuracy", [None])[-1])
        run.write_json("metrics.json", metrics)
        write_translations(run.path / "translations_test.tsv", rows)
    print("\nSample test translations:")
    print_samples(rows, cfg.decode.num_samples)
    print(f"  {metrics['bleu_signature']}")
    print_summary("translation", run.final, {"test_bleu": metrics["bleu"], "test_chrf": metrics["chrf"],
                                             "test_sentences": metrics["num_sentences"], "train_seconds": metrics["train_seconds"]},
                  ["config.json", "metrics.json", "model.keras", "source_tokenizer.json", "target_tokenizer.json",
                   "history.json", "history.png", "translations_test.tsv"])
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("Train the LSTM/GRU attention translation model", PRESETS)
    add_train_flags(parser)
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(PRESETS, args.config, args.set)
        print("\n".join(describe(cfg)))
        train(cfg, args.run_dir, resume=args.resume, overwrite=args.overwrite)
    except USER_ERRORS as err:
        return report_user_error(err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
