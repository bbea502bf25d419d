"""The language-model app's declarations for the shared pipeline (common/pipeline.py).

Training builds the vocabulary from the training stream, cuts each split into `train.batch_size`
contiguous streams and trains with truncated BPTT (`sequence.bptt` tokens per step, the state
carried from batch to batch, zeroed between epochs), keeping the epoch with the best validation
loss. Then it scores validation and test with the state carried across each whole stream
(perplexity, next-word top-1/top-5), unigram and Kneser-Ney trigram baselines on the same test
tokens, and writes samples.

    python -m apps.nlp.language_model.train --config default --run-dir runs/lm     # WikiText-2
    from common.pipeline import load_run; load_run("runs/lm").predict("the game was")
"""

from __future__ import annotations

import math
import types
from pathlib import Path

from apps.nlp.language_model.config import PRESETS, Config
from common.errors import ConfigError, RunDirError, UsageError
from common.pipeline import App, Built, Job, Prepared
from common.rundir import read_json, write_json

PROMPTS = ("the", "in the early", "he was born in", "the game was", "= = history = =")


def inference_state(lm, vocabulary: list[str]) -> dict:
    from apps.nlp.language_model.model import build_step_model

    return {"lm": lm, "vocabulary": vocabulary, "word_to_id": {w: i for i, w in enumerate(vocabulary)},
            "step_model": build_step_model(lm, batch_size=1)}


class LanguageModelApp(App):
    name = "language_model"
    package = "apps.nlp.language_model"
    title = "word-level LSTM/GRU language model (tied adaptive softmax, locked dropout, carried state)"
    config_class = Config
    presets = PRESETS
    preset_help = {
        "tiny": "seconds: a generated 20k-token corpus, 32-unit LSTM (tests)",
        "default": "make train-lm: WikiText-2, 1-layer 256-unit LSTM, tied adaptive softmax, 1 epoch, ~12 min on 2 CPU cores (JAX)",
        "wt2-cpu": "WikiText-2, a 1x512 LSTM for 7 epochs (57-minute budget), under an hour on 2 CPU cores (JAX)",
        "gpu": "WikiText-2, AWD-LSTM-sized 3-layer 1150-unit LSTM, full softmax, for an accelerator",
    }
    splits = ("test", "validation", "train")
    data_is_one_split = True  # evaluate --data scores the whole file as one text
    predict_command = "predict"
    export_formats = ("saved_model", "tflite", "onnx")
    default_export_formats = ("saved_model", "tflite", "onnx")
    fixed_settings = ("data.source", "data.max_vocab_size", "data.min_count", "data.lowercase", "model.embedding_dim",
                      "model.units", "model.cell", "model.softmax", "model.cutoffs", "model.tie_weights")

    def validate(self, cfg: Config) -> None:
        super().validate(cfg)
        if cfg.train.distribution != "none":
            raise ConfigError("the language model carries its recurrent state across batches on one device; use "
                              "train.distribution=none")

    # ------------------------------------------------------------------ training
    def prepare(self, job: Job) -> Prepared:
        from apps.nlp.language_model.data import batchify, bptt_windows, load_corpus

        cfg = job.cfg
        corpus = load_corpus(cfg.data, seed=cfg.train.seed)
        batch, bptt = cfg.train.batch_size, cfg.sequence.bptt
        x, y = bptt_windows(batchify(corpus.train, batch), bptt)
        summary = {**corpus.summary(), "train_steps_per_epoch": len(x) // batch, "bptt": bptt}
        print(f"{corpus.description}: vocabulary {len(corpus.vocabulary):,}, train {len(corpus.train):,} / validation "
              f"{len(corpus.validation):,} / test {len(corpus.test):,} tokens; {len(x) // batch} steps of "
              f"{batch} x {bptt} per epoch")
        # Validation is scored by a callback the benchmark's way (model.ValidationPerplexity), not by Keras.
        return Prepared(({"tokens": x, "targets": y}, y), None, len(x) // batch, summary,
                        types.SimpleNamespace(corpus=corpus))

    def build(self, job: Job) -> Built:
        from apps.nlp.language_model.model import (ResetStates, ValidationPerplexity, build_training_model, mean_nll,
                                                   model_config)

        cfg, corpus = job.cfg, job.prepared.data.corpus
        config = model_config(cfg, len(corpus.vocabulary), cfg.train.seed, train_ids=corpus.train)
        if config["tail_capacity"]:
            print("adaptive softmax tails computed for " + ", ".join(f"{c:.0%}" for c in config["tail_capacity"])
                  + " of each batch's tokens (the tokens whose target is in the cluster)")
        model = build_training_model(config, cfg.train.batch_size, cfg.sequence.bptt)
        validation = ValidationPerplexity(corpus.validation, cfg.sequence.eval_batch_size, cfg.sequence.bptt)
        # In order, never shuffled: row r of each batch continues row r of the one before. The validation
        # callback is the validation (best epoch, early stopping).
        return Built(model, {"loss": mean_nll, "jit_compile": "auto"}, metric_callbacks=[ResetStates(), validation],
                     fit_kwargs={"shuffle": False, "has_validation": True})

    def save_state(self, job: Job) -> None:
        from apps.nlp.language_model.data import save_vocabulary

        save_vocabulary(job.prepared.data.corpus.vocabulary, job.path / "vocabulary.txt")

    def after_training(self, job: Job, model) -> dict:
        from apps.nlp.language_model.baselines import baseline_perplexities
        from apps.nlp.language_model.inference import generate, score_stream, score_with_cache, tune_cache
        from apps.nlp.language_model.model import trained_layer

        cfg, corpus = job.cfg, job.prepared.data.corpus
        lm = trained_layer(model)
        history = read_json(job.path / "history.json")
        plot_perplexity(history, job.path / "perplexity.png")
        e, bptt = cfg.sequence.eval_batch_size, cfg.sequence.bptt
        metrics: dict = {"source": corpus.description, "vocabulary": len(corpus.vocabulary),
                         "softmax": cfg.model.softmax}
        # Validation was scored at every epoch end (ValidationPerplexity); the test split is scored here.
        size = cfg.cache.size
        if size:
            print(f"choosing the neural cache's theta and lambda on validation ({size} positions)...", flush=True)
            validation = score_stream(lm, corpus.validation, e, bptt, progress=False, keep=True)
            cache = tune_cache(validation.pop("arrays"), size)
            cache["validation_perplexity_without_cache"] = validation["perplexity"]
            write_json(job.path / "cache.json", cache)
            print(f"validation: perplexity {validation['perplexity']:.2f}, with the cache {cache['perplexity']:.2f} "
                  f"(theta {cache['theta']}, lambda {cache['lambda']})")
        print(f"scoring test ({e} streams, state carried)...", flush=True)
        test = metrics["test"] = score_with_cache(lm, corpus.test, e, bptt, cache if size else None)
        print(f"test: perplexity {test['perplexity']:.2f}, next-word top-1 {test['top1_accuracy']:.3f}, top-5 "
              f"{test['top5_accuracy']:.3f} ({test['tokens']:,} tokens)")
        if size:
            metrics["test_cache"] = test.pop("cache")
            metrics["validation_cache"] = {k: cache[k] for k in ("size", "theta", "lambda", "perplexity")}
            print(f"test with the neural cache: perplexity {metrics['test_cache']['perplexity']:.2f}")
        metrics["baselines_test"] = baseline_perplexities(corpus.train, corpus.test, len(corpus.vocabulary), e)
        print(f"baselines on the same test tokens: unigram {metrics['baselines_test']['unigram']:.1f}, "
              f"Kneser-Ney trigram {metrics['baselines_test']['kneser_ney_trigram']:.1f}")
        if history.get("epoch_seconds"):
            seconds = sum(history["epoch_seconds"]) / len(history["epoch_seconds"])
            metrics["train_tokens_per_second"] = len(corpus.train) / seconds
        if history.get("val_loss"):
            metrics["validation"] = {"perplexity": math.exp(min(history["val_loss"])),
                                     "batch_size": cfg.sequence.eval_batch_size, "bptt": cfg.sequence.bptt,
                                     "epoch": int(history["val_loss"].index(min(history["val_loss"]))) + 1}
        run = types.SimpleNamespace(cfg=cfg, state=inference_state(lm, corpus.vocabulary))
        samples = []
        for i in range(cfg.generate.num_samples):
            prompt = PROMPTS[i % len(PROMPTS)]
            if all(w not in run.state["word_to_id"] for w in prompt.split()):
                prompt = corpus.vocabulary[0]
            samples.append({"prompt": prompt, "seed": i, "text": generate(run, prompt, seed=i)})
        (job.path / "samples.txt").write_text(
            "".join(f"[{s['prompt']}] {s['text']}\n\n" for s in samples), encoding="utf-8")
        metrics["samples"] = samples
        return metrics

    def summary(self, metrics: dict) -> dict:
        return {"test_perplexity": metrics["test"]["perplexity"],
                "test_perplexity_with_cache": metrics.get("test_cache", {}).get("perplexity"),
                "validation_perplexity": metrics.get("validation", {}).get("perplexity"),
                "test_top1_accuracy": metrics["test"]["top1_accuracy"],
                "kneser_ney_trigram_test_perplexity": metrics["baselines_test"]["kneser_ney_trigram"],
                "train_seconds": metrics["train_seconds"]}

    def summary_files(self):
        return ("metrics.json", "model.keras", "vocabulary.txt", "samples.txt", "training_curves.png",
                "perplexity.png")

    # ------------------------------------------------------------------ a finished run
    def load_state(self, run) -> dict:
        from apps.nlp.language_model.data import load_vocabulary
        from apps.nlp.language_model.model import trained_layer

        vocabulary = load_vocabulary(run.path / "vocabulary.txt")
        try:
            lm = trained_layer(run.model)
        except ValueError as err:
            raise RunDirError(f"{run.path / 'model.keras'}: {err}") from None
        if lm.vocab_size != len(vocabulary):
            raise RunDirError(f"{run.path / 'vocabulary.txt'} has {len(vocabulary)} words but the model scores "
                              f"{lm.vocab_size}; the run dir is damaged or mixed: retrain")
        return inference_state(lm, vocabulary)

    def evaluate(self, run, split, data, out: Path, options: dict) -> dict:
        from apps.nlp.language_model.baselines import baseline_perplexities
        from apps.nlp.language_model.data import encode, load_corpus, tokenize_lines
        from common.textio import read_text_lines

        cfg, state = run.cfg, run.state
        e = options.get("batch_size") or cfg.sequence.eval_batch_size
        if e < 1:
            raise UsageError(f"--batch-size must be >= 1, got {e}")
        if data:  # another text, read with the run's vocabulary (unknown words -> <unk>)
            words = tokenize_lines(read_text_lines(data, "--data"), cfg.data.lowercase)
            if len(words) < 2 * e + 2:
                raise UsageError(f"{data} holds {len(words)} tokens: too few to score with --batch-size {e}")
            ids = encode(words, state["word_to_id"])
            metrics = self._score(run, ids, e, options)
            return {**metrics, "unk_fraction": float((ids == state["word_to_id"]["<unk>"]).mean())}
        corpus = load_corpus(cfg.data, seed=cfg.train.seed)
        if corpus.vocabulary != state["vocabulary"]:
            raise RunDirError(f"the run's data ({corpus.description}) no longer gives the vocabulary it was trained "
                              f"with; evaluate other text with --data FILE")
        ids = getattr(corpus, split)
        metrics = self._score(run, ids, e, options)
        metrics["baselines"] = baseline_perplexities(corpus.train, ids, len(corpus.vocabulary), e)
        return metrics

    def _score(self, run, ids, batch_size: int, options: dict) -> dict:
        """The model's perplexity and, when the run chose a neural cache (cache.json), the perplexity
        with it too."""
        from apps.nlp.language_model.inference import score_with_cache

        cache_file = run.path / "cache.json"
        cache = read_json(cache_file) if cache_file.is_file() and not options.get("no_cache") else None
        return score_with_cache(run.state["lm"], ids, batch_size, run.cfg.sequence.bptt, cache)

    def add_evaluate_arguments(self, parser) -> None:
        parser.add_argument("--no-cache", action="store_true",
                            help="score the model alone, without the neural cache the run chose on validation")
        parser.add_argument("--batch-size", type=int, default=0,
                            help="parallel streams (state carried across each); 0 = the run's sequence.eval_batch_size; "
                                 "1 = the whole split as one stream")

    def evaluation_name(self, split, data, options) -> str:
        name = super().evaluation_name(split, data, options)
        return (name + (f"_b{options['batch_size']}" if options.get("batch_size") else "")
                + ("_nocache" if options.get("no_cache") else ""))

    def print_evaluation(self, metrics: dict, out: Path) -> None:
        print(f"perplexity {metrics['perplexity']:.2f} over {metrics['tokens']:,} tokens "
              f"(batch {metrics['batch_size']}, bptt {metrics['bptt']}); next-word top-1 {metrics['top1_accuracy']:.3f}, "
              f"top-5 {metrics['top5_accuracy']:.3f}")
        if "cache" in metrics:
            c = metrics["cache"]
            print(f"with the neural cache ({c['size']} positions, theta {c['theta']}, lambda {c['lambda']}, chosen on "
                  f"validation): perplexity {c['perplexity']:.2f}")
        if "baselines" in metrics:
            b = metrics["baselines"]
            print(f"baselines: unigram {b['unigram']:.1f}, Kneser-Ney trigram {b['kneser_ney_trigram']:.1f}")

    def predict(self, run, inputs, top_k: int = 5, **options):
        from apps.nlp.language_model.inference import next_words

        if isinstance(inputs, str):
            return next_words(run, inputs, top_k)
        return [next_words(run, prompt, top_k) for prompt in inputs]

    def add_predict_arguments(self, parser) -> None:
        from apps.nlp.language_model.predict import add_arguments

        add_arguments(parser)

    def run_predict_command(self, run, args) -> int:
        from apps.nlp.language_model.predict import run_command

        return run_command(run, args)

    def export(self, run, out: Path, formats, num_examples: int, options: dict) -> dict:
        from apps.nlp.language_model.export import export_run

        return export_run(run, out, formats, max(num_examples, 100))

    def print_export(self, report: dict, out: Path) -> None:
        for fmt, info in report["formats"].items():
            print(f"  {fmt}: {info['path']} (max |diff| over {report['tokens']} tokens: {info['max_abs_diff']:.2g})")


def plot_perplexity(history: dict, path: Path) -> None:
    import common.evaluation  # noqa: F401  (selects matplotlib's Agg backend)
    import matplotlib.pyplot as plt

    loss = history.get("loss") or []
    if not loss:
        return
    epochs = range(1, len(loss) + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [math.exp(min(v, 30)) for v in loss], "o-", label="train (with dropout)")
    if history.get("val_loss"):
        ax.plot(epochs, [math.exp(min(v, 30)) for v in history["val_loss"]], "o-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Perplexity per epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


APP = LanguageModelApp()
