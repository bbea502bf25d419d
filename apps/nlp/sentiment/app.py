"""The sentiment app's declarations for the shared pipeline (common/pipeline.py): raw text -> label.

Training learns a vocabulary (and, with `model.embedding_init=word2vec`, word vectors) from the
training texts, trains one classifier or an ensemble (`model.ensemble_size`), and scores every
evaluation split beside a bag-of-words baseline on the same tokens.

    python -m apps.nlp.sentiment.train --config sst2 --run-dir runs/sst2
    from common.pipeline import load_run; load_run("runs/sst2").predict(["not bad at all"])
"""

from __future__ import annotations

import types
import warnings
from pathlib import Path

from apps.nlp.sentiment.config import PRESETS, Config
from common.errors import DataError, UsageError
from common.pipeline import App, Job, Prepared, check_outputs, compile_model, fit_ensemble, scored_on
from common.rundir import read_json


class SentimentApp(App):
    name = "sentiment"
    package = "apps.nlp.sentiment"
    title = "sentiment classification of raw text (embedding + BiLSTM/BiGRU + pooling)"
    config_class = Config
    presets = PRESETS
    preset_help = {
        "tiny": "seconds: 1,200 generated reviews, 8-unit GRU, 1 epoch (tests)",
        "default": "make train-sentiment: generated reviews with negation/contrast scope, ~5 min on 2 CPU cores",
        "sst2": "SST-2 with frozen word vectors learnt on IMDB text, ~6 min on 2 CPU cores (+3 for the vectors)",
        "imdb": "IMDB, 800 tokens, BiGRU-128 + attention, ~10 min under KERAS_BACKEND=jax on 2 CPU cores",
        "gpu": "the imdb preset with a 7.5-minute time budget for GPU leases",
    }
    monitor = ("val_accuracy", "max")
    splits = ("validation", "test", "dev")
    default_split = ""  # the source's reported split (dev for SST-2, test otherwise)
    data_is_one_split = True  # evaluate --data scores every row of the file
    export_formats = ("keras", "saved_model", "onnx", "tflite")
    default_export_formats = ("keras", "saved_model", "onnx")

    def validate(self, cfg: Config) -> None:
        from apps.nlp.sentiment import embeddings
        from apps.nlp.sentiment.data import check_source

        super().validate(cfg)
        check_source(cfg.data)
        embeddings.check_settings(cfg.data.source, cfg.data.pretrain_corpus, cfg.model.embedding_init,
                                  cfg.data.corpus_vocab_size)
        if cfg.model.freeze_embedding and cfg.model.embedding_init != "word2vec":
            from common.errors import ConfigError

            raise ConfigError("model.freeze_embedding keeps learnt word vectors fixed; it needs "
                              "model.embedding_init=word2vec (a frozen random embedding learns nothing)")

    # ------------------------------------------------------------------ training
    def prepare(self, job: Job) -> Prepared:
        from apps.nlp.sentiment import embeddings, features
        from apps.nlp.sentiment.data import encode_labels, load_dataset

        # The tf.data pipeline shuffles itself; Keras warns that fit's own shuffle flag is unused.
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
        cfg, dist = job.cfg, job.dist
        dataset = load_dataset(cfg.data, seed=cfg.train.seed)
        label_names = dataset.label_names
        # Every label is encoded first so an unseen evaluation label fails before any training time is spent.
        labels = {"train": encode_labels(dataset.train.labels, label_names, "train"),
                  "validation": encode_labels(dataset.validation.labels, label_names, "validation")}
        labels.update({name: encode_labels(s.labels, label_names, name) for name, s in dataset.evaluation.items()})
        corpus = None
        if cfg.model.embedding_init == "word2vec":
            corpus, about = embeddings.corpus_texts(cfg.data.pretrain_corpus, cfg.data.source, dataset.train.texts)
            print(f"word2vec corpus: {about}")
        vocabulary = features.adapt_vocabulary(dataset.train.texts, cfg.data.vocab_size, cfg.data.max_length)
        if cfg.data.corpus_vocab_size > 0:
            trained_words = len(vocabulary)
            vocabulary = embeddings.extend_vocabulary(vocabulary, corpus, cfg.data.corpus_vocab_size)
            print(f"vocabulary: {len(vocabulary) - trained_words:,} words of the word2vec corpus that training lacks added")
        vectorizer = features.vectorizer_from_vocabulary(vocabulary, cfg.data.max_length)
        texts = {"train": dataset.train.texts, "validation": dataset.validation.texts,
                 **{name: s.texts for name, s in dataset.evaluation.items()}}
        ids = {name: features.vectorize(t, vectorizer) for name, t in texts.items()}
        truncated = float((features.sequence_lengths(ids["train"]) >= cfg.data.max_length).mean())
        print(f"vocabulary {len(vocabulary)} tokens; {truncated:.1%} of training texts truncated to "
              f"{cfg.data.max_length} tokens")
        val_batch_size = -(-256 // dist.replicas) * dist.replicas
        validation = features.make_dataset(ids["validation"], labels["validation"], val_batch_size, shuffle=False,
                                           multiple=cfg.data.bucket_multiple, replicas=dist.replicas)
        data = types.SimpleNamespace(dataset=dataset, labels=labels, corpus=corpus, vocabulary=vocabulary,
                                     texts=texts, ids=ids, truncated=truncated)
        summary = {"source": dataset.description, "train": len(dataset.train), "validation": len(dataset.validation),
                   **{name: len(s) for name, s in dataset.evaluation.items()}, "labels": label_names,
                   "vocabulary": len(vocabulary), "truncated_fraction": truncated}
        steps = features.count_batches(len(ids["train"]), dist.global_batch_size)
        return Prepared(None, validation, steps, summary, data)

    def save_state(self, job: Job) -> None:
        from apps.nlp.sentiment import features

        data = job.prepared.data
        label_names = data.dataset.label_names
        features.save_vocabulary(data.vocabulary, job.path / "vocabulary.txt")
        job.run.write_json("labels.json", {"label_names": label_names,
                                           "positive_label": label_names[1] if len(label_names) == 2 else None})

    def _initial_embedding(self, job: Job, seed: int):
        """Word vectors learnt with `seed` as the embedding's start, or None for a random one.
        Each ensemble member learns its own: members that differ more average better."""
        from apps.nlp.sentiment import embeddings

        cfg, data = job.cfg, job.prepared.data
        if data.corpus is None:
            return None
        vectors = embeddings.train_word_vectors(data.corpus, cfg.model.embedding_dim, seed=seed)
        matrix, coverage = embeddings.embedding_matrix(data.vocabulary, vectors, cfg.model.embedding_dim, seed=seed)
        print(f"word2vec: {coverage:.1%} of the vocabulary starts from a learnt vector")
        return matrix

    def fit(self, job: Job):
        """One classifier, or `model.ensemble_size` of them (seeds seed, seed+1, ...) averaged into one model."""
        from apps.nlp.sentiment.model import build_ensemble

        size, data = job.cfg.model.ensemble_size, job.prepared.data
        if size == 1:
            classifier, history = self._fit_one(job, "sentiment_classifier", describe=True)
            data.members = [classifier]
            return classifier, history
        ensemble = fit_ensemble(job, size, lambda member_job, k: self._fit_one(member_job, f"member_{k + 1}", k == 0),
                                build_ensemble, compile=False)
        data.members = ensemble.members
        return ensemble.model, ensemble.history

    def _fit_one(self, job: Job, name: str, describe: bool):
        """Trains one classifier from `train.seed` (its word vectors, shuffling and initial weights)."""
        import keras

        from apps.nlp.sentiment import features
        from apps.nlp.sentiment.model import build_classifier, compile_args
        from common.training import fit, make_optimizer, set_seed

        cfg, data, dist = job.cfg, job.prepared.data, job.dist
        label_names, seed, size = data.dataset.label_names, cfg.train.seed, cfg.model.ensemble_size
        start_embedding = self._initial_embedding(job, seed)
        set_seed(seed)
        # Each batch is a global batch split across the replicas. The short batch is topped up to a
        # multiple of the replica count with zero-weight filler rows: JAX shards must be equal, and
        # Keras' TF trainer cannot build from a first batch that splits unevenly.
        train_ds = features.make_dataset(data.ids["train"], data.labels["train"], dist.global_batch_size,
                                         shuffle=True, seed=seed, multiple=cfg.data.bucket_multiple,
                                         replicas=dist.replicas)
        with dist.scope():
            classifier = build_classifier(cfg.model, len(data.vocabulary), len(label_names), seed=seed, name=name)
            if start_embedding is not None:
                classifier.get_layer("embedding").set_weights([start_embedding])
            compile_model(classifier, make_optimizer(cfg.train, job.prepared.steps_per_epoch, dist), cfg.train,
                          compile_args(len(label_names)))
        if describe:
            print(f"model: {classifier.count_params():,} parameters"
                  f"{f' per member, {size} members' if size > 1 else ''}, backend {keras.backend.backend()}")
        classifier, history = fit(classifier, train_ds, job.prepared.validation, cfg.train, job.run,
                                  monitor="val_accuracy", mode="max", dist=dist)
        if dist.strategy is not None:
            # Under a tf.distribute strategy predict_on_batch runs the whole batch on every replica and
            # concatenates the copies; the evaluation below uses a one-device copy of the trained model.
            classifier = keras.models.load_model(str(job.run.path / "model.keras"), compile=False)
        return classifier, history

    def after_training(self, job: Job, model) -> dict:
        import keras

        from apps.nlp.sentiment import features
        from apps.nlp.sentiment.evaluate import evaluate_split, print_report

        cfg, data = job.cfg, job.prepared.data
        dataset, ids, labels, texts = data.dataset, data.ids, data.labels, data.texts
        label_names, size = dataset.label_names, cfg.model.ensemble_size
        metrics: dict = {"source": dataset.description, "backend": keras.backend.backend(),
                         "num_train": len(ids["train"]), "max_length": cfg.data.max_length,
                         "truncated_fraction": data.truncated, "primary_split": dataset.primary_split}
        for name in ["validation", *dataset.evaluation]:
            report = evaluate_split(model, ids[name], labels[name], texts[name], label_names, job.path, name,
                                    cfg.data.bucket_multiple)
            metrics[name] = report
            print_report(name, report)
        primary = dataset.primary_split
        if size > 1:
            accuracy = [evaluate_split(m, ids[primary], labels[primary], texts[primary], label_names,
                                       multiple=cfg.data.bucket_multiple)["accuracy"] for m in data.members]
            mean = float(sum(accuracy) / size)
            metrics["members"] = {"size": size, f"{primary}_accuracy": accuracy, f"{primary}_mean_accuracy": mean}
            print(f"{primary} accuracy of the members alone: " + ", ".join(f"{a:.4f}" for a in accuracy)
                  + f" (mean {mean:.4f}); the ensemble: {metrics[primary]['accuracy']:.4f}")
        baseline = features.bag_of_words_baseline(
            ids["train"], labels["train"], {name: (ids[name], labels[name]) for name in dataset.evaluation},
            len(data.vocabulary), seed=cfg.train.seed)
        metrics["bag_of_words_accuracy"] = baseline
        print("bag-of-words logistic regression on the same tokens: "
              + ", ".join(f"{k} accuracy {v:.4f}" for k, v in baseline.items()))
        return metrics

    def summary(self, metrics: dict) -> dict:
        primary = metrics["primary_split"]
        out = {f"{primary}_accuracy": metrics[primary]["accuracy"], f"{primary}_macro_f1": metrics[primary]["macro_f1"],
               f"{primary}_bag_of_words_accuracy": metrics["bag_of_words_accuracy"][primary],
               "train_seconds": metrics["train_seconds"]}
        if "members" in metrics:
            out[f"{primary}_accuracy_member_mean"] = metrics["members"][f"{primary}_mean_accuracy"]
        if "roc_auc" in metrics[primary]:
            out[f"{primary}_roc_auc"] = metrics[primary]["roc_auc"]
        return out

    def summary_files(self):
        return ("metrics.json", "model.keras", "vocabulary.txt", "history.json", "training_curves.png")

    # ------------------------------------------------------------------ a finished run
    def load_state(self, run) -> dict:
        from apps.nlp.sentiment import features
        from apps.nlp.sentiment import model as _model  # noqa: F401  (registers the custom layers)

        vocabulary = features.load_vocabulary(run.path / "vocabulary.txt")
        labels = read_json(run.path / "labels.json", "the class names, written by apps.nlp.sentiment.train")
        names = labels.get("label_names") if isinstance(labels, dict) else None
        if not isinstance(names, list) or len(names) < 2:
            raise DataError(f"{run.path / 'labels.json'} has no list of 2+ label_names; the run dir is damaged")
        check_outputs(run, len(names), "labels.json")
        vocab_rows = run.model.get_layer("embedding").input_dim if _has_layer(run.model, "embedding") else None
        if vocab_rows is not None and vocab_rows != len(vocabulary):
            raise DataError(f"{run.path / 'vocabulary.txt'} holds {len(vocabulary)} tokens but the model's embedding "
                            f"has {vocab_rows} rows; the run dir is damaged or mixed: retrain or restore it")
        return {"vocabulary": vocabulary, "label_names": names,
                "vectorizer": features.vectorizer_from_vocabulary(vocabulary, run.cfg.data.max_length)}

    def resolve_split(self, run, split):
        return split or run.metrics.get("primary_split", "test")

    def evaluate(self, run, split, data, out: Path, options: dict) -> dict:
        from apps.nlp.sentiment import features
        from apps.nlp.sentiment.data import encode_labels, load_dataset
        from apps.nlp.sentiment.evaluate import evaluate_split

        cfg, label_names = run.cfg, run.state["label_names"]
        if data:
            chosen = self._data_file(run, Path(data), label_names)
            y_true = encode_labels(chosen.labels, label_names, Path(data).name)
        else:
            dataset = load_dataset(cfg.data, seed=cfg.train.seed, label_names=label_names)
            splits = {**dataset.evaluation, "validation": dataset.validation}
            if split not in splits:
                raise UsageError(f"unknown split {split!r}; this source has {sorted(splits)}")
            chosen = splits[split]
            y_true = encode_labels(chosen.labels, label_names, split)
        ids = features.vectorize(chosen.texts, run.state["vectorizer"])
        name = Path(data).name.split(".")[0] if data else split  # --data: reported (and its plot named) by the file
        return evaluate_split(run.model, ids, y_true, chosen.texts, label_names, out, name, cfg.data.bucket_multiple)

    def _data_file(self, run, path: Path, label_names):
        """`evaluate --data FILE`: every row of a labelled TSV/CSV (text and label columns, found as for
        data.source=table); 0/1 and neg/pos read as negative/positive for a run whose classes are those."""
        from apps.nlp.sentiment.data import BINARY_NAMES, Split, read_table

        if not path.is_file():
            raise UsageError(f"--data {path}: no such file (a TSV/CSV with a text and a label column)")
        table = read_table(path, run.cfg.data.text_column, run.cfg.data.label_column)
        if not len(table):
            raise DataError(f"--data {path}: no rows")
        if sorted(label_names) == ["negative", "positive"]:
            names = {**BINARY_NAMES, "negative": "negative", "positive": "positive"}
            table = Split(table.texts, [names.get(label.lower(), label) for label in table.labels])
        return table

    def print_evaluation(self, metrics: dict, out: Path) -> None:
        from apps.nlp.sentiment.evaluate import print_report

        print_report(scored_on(metrics), metrics, show_mistakes=10)

    def predict(self, run, inputs, **options) -> list[dict]:
        from apps.nlp.sentiment.inference import predict_texts

        return predict_texts(run, inputs)

    def add_predict_arguments(self, parser) -> None:
        from apps.nlp.sentiment.predict import add_arguments

        add_arguments(parser)

    def run_predict_command(self, run, args) -> int:
        from apps.nlp.sentiment.predict import run_command

        return run_command(run, args)

    def export(self, run, out: Path, formats, num_examples: int, options: dict) -> dict:
        from apps.nlp.sentiment.export import export_run

        return export_run(run, out, formats)

    def print_export(self, report: dict, out: Path) -> None:
        for group in ("text", "token_ids"):
            for fmt, info in report.get(group, {}).get("formats", {}).items():
                diff = info.get("max_abs_diff")
                print(f"  {group}/{fmt}: {info['path']}  parity max|diff| = {diff if diff is None else f'{diff:.2e}'}")
            if "onnx" in report.get(group, {}):
                print(f"  {group}/onnx: {report[group]['onnx']}")


def _has_layer(model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


APP = SentimentApp()
