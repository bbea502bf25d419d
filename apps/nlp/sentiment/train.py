"""Train the sentiment classifier and write a run dir.

    python -m apps.nlp.sentiment.train --config default --run-dir runs/sentiment      # offline synthetic task
    python -m apps.nlp.sentiment.train --config sst2 --run-dir runs/sst2
    python -m apps.nlp.sentiment.train --config imdb --run-dir runs/imdb --set data.max_length=400
    python -m apps.nlp.sentiment.train --config default --run-dir runs/csv \
        --set data.source=table --set data.path=reviews.csv --set data.text_column=review --set data.label_column=stars

The run dir holds config.json, model.keras (token ids → probabilities), vocabulary.txt,
labels.json, history.json/csv, metrics.json (every evaluation split plus a bag-of-words
baseline on the same tokens), training_curves.png and confusion_<split>.png.

`--set train.distribution=mirrored` (TensorFlow) or `=data_parallel` (KERAS_BACKEND=jax)
trains on every local device with `train.batch_size` examples per replica; the evaluation
after training runs on one device (see common/distribute.py).
"""

from __future__ import annotations

import json
import time
import warnings
from typing import Sequence

import keras

from apps.nlp.sentiment import embeddings, features
from apps.nlp.sentiment.config import PRESETS
from apps.nlp.sentiment.data import encode_labels, load_dataset
from apps.nlp.sentiment.evaluate import evaluate_split, print_report
from apps.nlp.sentiment.model import build_classifier, build_ensemble, compile_classifier
from common.config import to_dict, build_parser, describe, resolve_config, save_config
from common.evaluation import plot_history
from common.distribute import setup_distribution
from common.training import (RunDir, SubRun, add_train_flags, configure_precision, fit, make_optimizer,
                             print_summary, set_seed)
from common.training import USER_ERRORS, report_user_error


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("Train a sentiment classifier (raw text → label)", PRESETS)
    add_train_flags(parser)
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(PRESETS, args.config, args.set)
        return _train(cfg, args)
    except USER_ERRORS as err:
        return report_user_error(err)


def _train(cfg, args) -> int:
    # The tf.data pipeline shuffles itself; Keras warns that fit's own shuffle flag is unused.
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    started = time.perf_counter()
    set_seed(cfg.train.seed)
    configure_precision(cfg.train.precision)
    print("\n".join(describe(cfg)))
    embeddings.check_settings(cfg.data.source, cfg.data.pretrain_corpus, cfg.model.embedding_init,
                              cfg.data.corpus_vocab_size)
    RunDir(args.run_dir, app="sentiment", config=to_dict(cfg), resume=args.resume, overwrite=args.overwrite).check()  # before minutes of preparation
    dataset = load_dataset(cfg.data, seed=cfg.train.seed)
    label_names = dataset.label_names
    print(f"data: {dataset.description}; train {len(dataset.train)}, validation {len(dataset.validation)}, "
          + ", ".join(f"{k} {len(v)}" for k, v in dataset.evaluation.items()) + f"; labels {label_names}")
    # Encode every label first so an unseen evaluation label fails before any training time is spent.
    labels = {"train": encode_labels(dataset.train.labels, label_names, "train"),
              "validation": encode_labels(dataset.validation.labels, label_names, "validation")}
    labels.update({name: encode_labels(split.labels, label_names, name) for name, split in dataset.evaluation.items()})

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
             **{name: split.texts for name, split in dataset.evaluation.items()}}
    ids = {name: features.vectorize(t, vectorizer) for name, t in texts.items()}
    truncated = float((features.sequence_lengths(ids["train"]) >= cfg.data.max_length).mean())
    print(f"vocabulary {len(vocabulary)} tokens; {truncated:.1%} of training texts truncated to {cfg.data.max_length} tokens")

    def initial_embedding(seed: int):
        """Word vectors learnt with `seed` as the embedding's start, or None for a random one.
        Each ensemble member learns its own: members that differ more average better."""
        if corpus is None:
            return None
        vectors = embeddings.train_word_vectors(corpus, cfg.model.embedding_dim, seed=seed)
        matrix, coverage = embeddings.embedding_matrix(vocabulary, vectors, cfg.model.embedding_dim, seed=seed)
        print(f"word2vec: {coverage:.1%} of the vocabulary starts from a learnt vector")
        return matrix

    dist = setup_distribution(cfg.train)
    print(dist.describe())
    val_batch_size = -(-256 // dist.replicas) * dist.replicas
    val_ds = features.make_dataset(ids["validation"], labels["validation"], val_batch_size, shuffle=False,
                                   multiple=cfg.data.bucket_multiple, replicas=dist.replicas)
    steps = features.count_batches(len(ids["train"]), dist.global_batch_size)
    size = cfg.model.ensemble_size

    with RunDir(args.run_dir, app="sentiment", config=to_dict(cfg), resume=args.resume, overwrite=args.overwrite, is_chief=dist.is_chief) as run:
        save_config(cfg, run.path / "config.json")
        features.save_vocabulary(vocabulary, run.path / "vocabulary.txt")
        run.write_json("labels.json", {"label_names": label_names,
                                       "positive_label": label_names[1] if len(label_names) == 2 else None})
        members, histories = [], []
        for k in range(size):
            seed = cfg.train.seed + k
            member_run = run if size == 1 else SubRun(run, f"members/{k + 1}")
            if size > 1:
                print(f"== ensemble member {k + 1}/{size} (seed {seed}) ==")
                if member_run.finished:  # --resume after an interruption in a later member
                    print(f"member {k + 1} already trained; loading {member_run.path / 'model.keras'}")
                    members.append(keras.models.load_model(str(member_run.path / "model.keras"), compile=False))
                    histories.append(json.loads((member_run.path / "history.json").read_text()))
                    continue
                if k > 0 and dist.mode == "data_parallel":
                    dist = setup_distribution(cfg.train)  # fit drops the JAX distribution when it ends
            start_embedding = initial_embedding(seed)
            set_seed(seed)
            # Each batch is a global batch split across the replicas. The short batch is topped up to a
            # multiple of the replica count with zero-weight filler rows: JAX shards must be equal, and
            # Keras' TF trainer cannot build from a first batch that splits unevenly.
            train_ds = features.make_dataset(ids["train"], labels["train"], dist.global_batch_size, shuffle=True,
                                             seed=seed, multiple=cfg.data.bucket_multiple, replicas=dist.replicas)
            with dist.scope():
                classifier = build_classifier(cfg.model, len(vocabulary), len(label_names), seed=seed,
                                              name="sentiment_classifier" if size == 1 else f"member_{k + 1}")
                if start_embedding is not None:
                    classifier.get_layer("embedding").set_weights([start_embedding])
                compile_classifier(classifier, make_optimizer(cfg.train, steps, dist), len(label_names))
            if k == 0:
                print(f"model: {classifier.count_params():,} parameters{f' per member, {size} members' if size > 1 else ''}"
                      f", backend {keras.backend.backend()}")
            classifier, history = fit(classifier, train_ds, val_ds, cfg.train, member_run, monitor="val_accuracy",
                                      mode="max", dist=dist)
            if dist.strategy is not None:
                # Under a tf.distribute strategy predict_on_batch runs the whole batch on every replica and
                # concatenates the copies; the evaluation below uses a one-device copy of the trained model.
                classifier = keras.models.load_model(str(member_run.path / "model.keras"), compile=False)
            members.append(classifier)
            histories.append(history)
        if size == 1:
            classifier, history = members[0], histories[0]
            plot_history(history, run.path / "training_curves.png", title="Sentiment training")
        else:
            classifier = build_ensemble(members)
            classifier.save(str(run.path / "model.keras"))
            for k in range(size):  # the ensemble holds their weights; the copies only served --resume
                (run.path / "members" / str(k + 1) / "model.keras").unlink(missing_ok=True)
            run.write_json("history.json", {"members": histories})
            plot_history(histories, run.path / "training_curves.png", title=f"Sentiment training ({size} members)")

        metrics: dict = {"source": dataset.description, "backend": keras.backend.backend(),
                         "num_train": len(ids["train"]),
                         "epochs_run": len(histories[0].get("loss", [])) if size == 1 else [len(h.get("loss", [])) for h in histories],
                         "max_length": cfg.data.max_length, "truncated_fraction": truncated}
        for name in ["validation", *dataset.evaluation]:
            report = evaluate_split(classifier, ids[name], labels[name], texts[name], label_names, run.path, name,
                                    cfg.data.bucket_multiple)
            metrics[name] = report
            print_report(name, report)
        if size > 1:
            primary = dataset.primary_split
            member_accuracy = [evaluate_split(m, ids[primary], labels[primary], texts[primary], label_names,
                                              multiple=cfg.data.bucket_multiple)["accuracy"] for m in members]
            mean = float(sum(member_accuracy) / size)
            metrics["members"] = {"size": size, f"{primary}_accuracy": member_accuracy, f"{primary}_mean_accuracy": mean}
            print(f"{primary} accuracy of the members alone: " + ", ".join(f"{a:.4f}" for a in member_accuracy)
                  + f" (mean {mean:.4f}); the ensemble: {metrics[primary]['accuracy']:.4f}")
        baseline = features.bag_of_words_baseline(
            ids["train"], labels["train"], {name: (ids[name], labels[name]) for name in dataset.evaluation},
            len(vocabulary), seed=cfg.train.seed)
        metrics["bag_of_words_accuracy"] = baseline
        metrics["train_seconds"] = time.perf_counter() - started
        run.write_json("metrics.json", metrics)
    primary = dataset.primary_split
    print(f"bag-of-words logistic regression on the same tokens: "
          + ", ".join(f"{k} accuracy {v:.4f}" for k, v in baseline.items()))
    summary = {f"{primary}_accuracy": metrics[primary]["accuracy"], f"{primary}_macro_f1": metrics[primary]["macro_f1"],
               f"{primary}_bag_of_words_accuracy": baseline[primary], "epochs_run": metrics["epochs_run"],
               "train_seconds": metrics["train_seconds"]}
    if size > 1:
        summary[f"{primary}_accuracy_member_mean"] = metrics["members"][f"{primary}_mean_accuracy"]
    if "roc_auc" in metrics[primary]:
        summary[f"{primary}_roc_auc"] = metrics[primary]["roc_auc"]
    print_summary("Sentiment training done", run.final, summary,
                  ["metrics.json", "model.keras", "vocabulary.txt", "history.json", "training_curves.png",
                   f"confusion_{primary}.png"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
