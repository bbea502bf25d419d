"""The translation app's declarations for the shared pipeline (common/pipeline.py): text -> text.

Training learns source and target BPE tokenizers from the training pairs, trains the attention
encoder-decoder with teacher forcing (checkpoint chosen by validation loss, or by greedy
validation BLEU with `decode.select_by_bleu`), and scores the test split with BLEU and chrF.

    python -m apps.nlp.translation.train --config multi30k-cpu --run-dir runs/multi30k
    from common.pipeline import load_run; load_run("runs/multi30k").predict(["Ein Hund rennt."])
"""

from __future__ import annotations

import types
import warnings
from pathlib import Path

from apps.nlp.translation.config import PRESETS, Config
from common.errors import ConfigError, RunDirError, UsageError
from common.pipeline import App, Built, Job, Prepared
from common.rundir import read_json

SPLITS = {"train": "train", "validation": "valid", "test": "test"}  # split name -> Splits attribute


class TranslationApp(App):
    name = "translation"
    package = "apps.nlp.translation"
    title = "attention encoder-decoder translation (BPE, BiLSTM/GRU encoder, beam search)"
    config_class = Config
    presets = PRESETS
    preset_help = {
        "tiny": "seconds: 300 generated pairs, 16-unit model, 1 epoch (tests)",
        "default": "make train-translate: a generated English->Spanish number/date task, ~10 min on 2 CPU cores",
        "anki-cpu": "Anki/Tatoeba spa->eng within a ~12 minute CPU budget",
        "multi30k-cpu": "Multi30k de->en, BLEU ~37.9, ~15 min under KERAS_BACKEND=jax on 2 CPU cores",
        "gpu": "the Multi30k run for an accelerator, with a time budget",
    }
    splits = ("validation", "test", "train")
    data_is_one_split = True  # evaluate --data scores every pair
    predict_command = "translate"
    export_formats = ("saved_model",)
    default_export_formats = ("saved_model",)

    def validate(self, cfg: Config) -> None:
        super().validate(cfg)
        d, t, m = cfg.data, cfg.tokenizer, cfg.model
        if cfg.decode.select_by_bleu > 0 and cfg.train.distribution != "none":
            raise ConfigError("decode.select_by_bleu decodes on one device during training; use it with "
                              "train.distribution=none, or select by validation loss (decode.select_by_bleu=0)")
        rules = [("data.valid_fraction + data.test_fraction", 0 <= d.valid_fraction and 0 <= d.test_fraction
                  and d.valid_fraction + d.test_fraction < 1, "in [0, 1)"),
                 ("data.max_source_tokens", d.max_source_tokens >= 1, ">= 1"),
                 ("data.max_target_tokens", d.max_target_tokens >= 1, ">= 1"),
                 ("data.num_examples", d.num_examples >= 0, ">= 0 (0 keeps all real pairs)"),
                 ("tokenizer.source_vocab_size", t.source_vocab_size > 4, "> 4 (the special tokens)"),
                 ("tokenizer.target_vocab_size", t.target_vocab_size > 4, "> 4 (the special tokens)"),
                 ("tokenizer.min_char_count", t.min_char_count >= 1, ">= 1"),
                 ("model.embedding_dim", m.embedding_dim >= 1, ">= 1"),
                 ("model.encoder_units", len(m.encoder_units) > 0 and min(m.encoder_units) >= 1,
                  "a non-empty tuple of positive widths"),
                 ("model.decoder_units", len(m.decoder_units) > 0 and min(m.decoder_units) >= 1,
                  "a non-empty tuple of positive widths"),
                 ("model.attention_units", m.attention_units >= 1, ">= 1"),
                 ("model.dropout_rate", 0 <= m.dropout_rate < 1, "in [0, 1)"),
                 ("model.label_smoothing", 0 <= m.label_smoothing < 1, "in [0, 1)")]
        for name, holds, rule in rules:
            if not holds:
                raise ConfigError(f"{name} must be {rule}")
        if d.source == "synthetic" and d.source_lang != "en":
            raise ConfigError(f"the synthetic source translates from English: set data.source_lang=en "
                              f"(got {d.source_lang!r})")

    # ------------------------------------------------------------------ training
    def prepare(self, job: Job) -> Prepared:
        from apps.nlp.translation.data import PairBatches, as_backend_dataset, encode_pairs, load_splits
        from apps.nlp.translation.tokenizer import BPETokenizer

        # Batches arrive pre-shuffled (length buckets reshuffled each epoch); Keras' tf.data notice does not apply.
        warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")
        cfg, dist = job.cfg, job.dist
        splits = load_splits(cfg.data)
        t = cfg.tokenizer
        source_tokenizer = BPETokenizer.train([s for s, _ in splits.train], t.source_vocab_size, t.lowercase,
                                              t.min_char_count)
        target_tokenizer = BPETokenizer.train([y for _, y in splits.train], t.target_vocab_size, t.lowercase,
                                              t.min_char_count)
        limits = (cfg.data.max_source_tokens, cfg.data.max_target_tokens)
        train_src, train_tgt = encode_pairs(splits.train, source_tokenizer, target_tokenizer, *limits)
        valid_src, valid_tgt = encode_pairs(splits.valid, source_tokenizer, target_tokenizer, *limits)
        print(f"tokenizers: source {source_tokenizer.vocab_size} / target {target_tokenizer.vocab_size} tokens; "
              f"{len(train_src)} training pairs within {limits} tokens")
        # Each batch is a global batch split across the replicas. Short batches are topped up to a
        # multiple of the replica count: JAX shards must be equal, and Keras' TF trainer cannot
        # build from a first batch that splits unevenly (it averages the replicas' slices).
        train = PairBatches(train_src, train_tgt, dist.global_batch_size, shuffle=True, seed=cfg.train.seed,
                            multiple_of=dist.replicas, pad_multiple=cfg.data.pad_multiple)
        valid = PairBatches(valid_src, valid_tgt, dist.global_batch_size, shuffle=False, multiple_of=dist.replicas,
                            pad_multiple=cfg.data.pad_multiple)
        summary = {"source": cfg.data.source, "direction": f"{cfg.data.source_lang}->{cfg.data.target_lang}",
                   "pairs": splits.sizes(), "training_pairs_within_limits": len(train_src),
                   "valid_pairs_within_limits": len(valid_src)}
        data = types.SimpleNamespace(splits=splits, source_tokenizer=source_tokenizer, target_tokenizer=target_tokenizer)
        return Prepared(as_backend_dataset(train), as_backend_dataset(valid), len(train), summary, data)

    def build(self, job: Job) -> Built:
        from apps.nlp.translation.decode import Translator
        from apps.nlp.translation.evaluate import ValidationBLEU
        from apps.nlp.translation.model import MaskedSmoothedCrossEntropy, Seq2Seq, masked_token_accuracy

        cfg, data = job.cfg, job.prepared.data
        seq2seq = Seq2Seq(cfg.model, data.source_tokenizer.vocab_size, data.target_tokenizer.vocab_size)
        model = seq2seq.training_model()
        compile_args = {"loss": MaskedSmoothedCrossEntropy(cfg.model.label_smoothing),
                        "metrics": [masked_token_accuracy]}
        callbacks = ()
        if cfg.decode.select_by_bleu > 0:
            def make_translator(m):
                return Translator(cfg, data.source_tokenizer, data.target_tokenizer, Seq2Seq.from_trained(m, cfg.model))

            callbacks = (ValidationBLEU(make_translator, data.splits.valid, cfg.decode.select_by_bleu),)
        return Built(model, compile_args, metric_callbacks=callbacks)

    def monitor_for(self, job: Job):
        return ("val_bleu", "max") if job.cfg.decode.select_by_bleu > 0 else ("val_loss", "min")

    def save_state(self, job: Job) -> None:
        data = job.prepared.data
        data.source_tokenizer.save(job.path / "source_tokenizer.json")
        data.target_tokenizer.save(job.path / "target_tokenizer.json")

    def after_training(self, job: Job, model) -> dict:
        from apps.nlp.translation.decode import Translator
        from apps.nlp.translation.evaluate import evaluate_pairs, print_samples, write_translations
        from apps.nlp.translation.model import Seq2Seq

        cfg, data = job.cfg, job.prepared.data
        translator = Translator(cfg, data.source_tokenizer, data.target_tokenizer, Seq2Seq.from_trained(model, cfg.model))
        metrics, rows = evaluate_pairs(translator, data.splits.test, max_examples=cfg.decode.max_eval_examples)
        history = read_json(job.path / "history.json")
        metrics.update(split="test", final_val_loss=history.get("val_loss", [None])[-1],
                       final_val_token_accuracy=history.get("val_masked_token_accuracy", [None])[-1])
        write_translations(job.path / "translations_test.tsv", rows)
        print("\nSample test translations:")
        print_samples(rows, cfg.decode.num_samples)
        print(f"  {metrics['bleu_signature']}")
        return metrics

    def summary(self, metrics: dict) -> dict:
        return {"test_bleu": metrics["bleu"], "test_chrf": metrics["chrf"], "test_sentences": metrics["num_sentences"],
                "train_seconds": metrics["train_seconds"]}

    def summary_files(self):
        return ("config.json", "metrics.json", "model.keras", "source_tokenizer.json", "target_tokenizer.json",
                "history.json", "training_curves.png", "translations_test.tsv")

    # ------------------------------------------------------------------ a finished run
    def load_state(self, run):
        from apps.nlp.translation.model import Seq2Seq
        from apps.nlp.translation.tokenizer import BPETokenizer

        source = BPETokenizer.load(run.path / "source_tokenizer.json")
        target = BPETokenizer.load(run.path / "target_tokenizer.json")
        seq2seq = Seq2Seq.from_trained(run.model, run.cfg.model)
        for side, tokenizer, layer in (("source", source, "source_embedding"), ("target", target, "target_embedding")):
            rows = run.model.get_layer(layer).input_dim if layer in [x.name for x in run.model.layers] else None
            if rows is not None and rows != tokenizer.vocab_size:
                raise RunDirError(f"{run.path / f'{side}_tokenizer.json'} has {tokenizer.vocab_size} tokens but the "
                                  f"model's {layer} has {rows} rows; the run dir is damaged or mixed: retrain")
        return {"source_tokenizer": source, "target_tokenizer": target, "seq2seq": seq2seq}

    def add_evaluate_arguments(self, parser) -> None:
        parser.add_argument("--beam-size", type=int, default=None, help="override the run's decode.beam_size (1 = greedy)")
        parser.add_argument("--max-examples", type=int, default=None, help="score only N sentences (0 = all)")

    def evaluation_name(self, split, data, options) -> str:
        beam = options.get("beam_size")
        return super().evaluation_name(split, data, options) + (f"_beam{beam}" if beam else "")

    def evaluate(self, run, split, data, out: Path, options: dict) -> dict:
        from apps.nlp.translation.data import load_splits, read_eval_pairs
        from apps.nlp.translation.evaluate import evaluate_pairs, print_samples, write_translations

        beam, limit = options.get("beam_size"), options.get("max_examples")
        if beam is not None and beam < 1:
            raise UsageError(f"--beam-size must be >= 1, got {beam}")
        pairs = (read_eval_pairs(Path(data), run.cfg.data.source_lang, run.cfg.data.target_lang) if data
                 else getattr(load_splits(run.cfg.data), SPLITS[split]))
        translator = make_translator(run)
        limit = run.cfg.decode.max_eval_examples if limit is None else limit
        metrics, rows = evaluate_pairs(translator, pairs, beam, limit)
        write_translations(out / "translations.tsv", rows)
        print_samples(rows, run.cfg.decode.num_samples)
        return metrics

    def print_evaluation(self, metrics: dict, out: Path) -> None:
        print(f"{metrics['split']}: BLEU {metrics['bleu']:.2f}  chrF {metrics['chrf']:.2f}  "
              f"({metrics['num_sentences']} sentences, beam {metrics['beam_size']})")
        print(f"  {metrics['bleu_signature']}\n  {metrics['chrf_signature']}\nTranslations: {out / 'translations.tsv'}")

    def predict(self, run, inputs, beam_size: int | None = None, strict: bool = False):
        from apps.nlp.translation.translate import translate

        return translate(run, inputs, beam_size=beam_size, strict=strict)

    def add_predict_arguments(self, parser) -> None:
        from apps.nlp.translation.translate import add_arguments

        add_arguments(parser)

    def run_predict_command(self, run, args) -> int:
        from apps.nlp.translation.translate import run_command

        return run_command(run, args)

    def export(self, run, out: Path, formats, num_examples: int, options: dict) -> dict:
        from apps.nlp.translation.export import export_run

        return export_run(run, out, num_examples)

    def print_export(self, report: dict, out: Path) -> None:
        t = report["translator"]
        checks = ", ".join(f"beam {c['beam_size']}: {c['matches_compiled']}/{t['sentences']} as compiled, "
                           f"{c['matches_python']}/{t['sentences']} as Python" for c in t["decoding"].values())
        print(f"  translator SavedModel: {t['path']} (signatures serving_default, translate(text, beam_size); {checks})")
        for name in ("encoder", "decoder_step"):
            info = report[name]["formats"]["saved_model"]
            print(f"  {name} SavedModel: {info['path']} (max |diff| {info['max_abs_diff']:.2e})")


def make_translator(run, on_overlong: str = "truncate"):
    """A Translator over the run's tokenizers and layers, with the run's (possibly overridden) config."""
    from apps.nlp.translation.decode import Translator

    state = run.state
    return Translator(run.cfg, state["source_tokenizer"], state["target_tokenizer"], state["seq2seq"], on_overlong)


APP = TranslationApp()
