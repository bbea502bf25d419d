"""End-to-end sentiment pipeline on tiny configs: train → evaluate → predict → export,
and the recurrent model beating bag-of-words on the synthetic scope task."""

import json

import numpy as np
import pytest

from apps.nlp.sentiment import evaluate, export, inference, predict, train
from common.pipeline import load_run

from tests.contract import check_app_contract


def _train(run_dir, *sets, config="tiny"):
    args = ["--config", config, "--run-dir", str(run_dir)]
    for item in sets:
        args += ["--set", item]
    assert train.main(args) == 0
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.tf_only
def test_train_evaluate_predict_export(tmp_path, capsys):
    run_dir = tmp_path / "run"
    metrics = _train(run_dir)
    for name in ("config.json", "model.keras", "vocabulary.txt", "labels.json", "history.json", "metrics.json",
                 "training_curves.png", "confusion_test.png"):
        assert (run_dir / name).is_file(), name
    assert not (tmp_path / "run.partial").exists()
    assert set(metrics) >= {"validation", "test", "bag_of_words_accuracy", "epochs_run"}
    # Learning is tested below (test_recurrent_model_beats_bag_of_words...); here the plumbing: evaluate
    # must re-score the run's own test split to the same accuracy.
    assert "roc_auc" in metrics["test"] and metrics["test"]["num_examples"] > 0
    assert json.loads((run_dir / "labels.json").read_text())["label_names"] == ["negative", "positive"]

    assert evaluate.main(["--run-dir", str(run_dir)]) == 0
    report = json.loads((run_dir / "eval" / "test" / "metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert (run_dir / "eval" / "test" / "confusion_test.png").is_file()
    assert all(set(m) == {"text", "true", "predicted", "confidence"} for m in report["worst_misclassified"])

    # --data FILE: the run's own test split as a labelled TSV (0/1 labels) scores as that split.
    from apps.nlp.sentiment.data import load_dataset

    opened = load_run(run_dir)
    test = load_dataset(opened.cfg.data, seed=opened.cfg.train.seed, label_names=opened.state["label_names"]).evaluation["test"]
    rows = [f"{text}\t{['negative', 'positive'].index(label)}" for text, label in zip(test.texts, test.labels)]
    (tmp_path / "held.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    assert evaluate.main(["--run-dir", str(run_dir), "--data", str(tmp_path / "held.tsv")]) == 0
    held = json.loads((run_dir / "eval" / "held_test" / "metrics.json").read_text())
    assert held["accuracy"] == pytest.approx(metrics["test"]["accuracy"]) and held["num_examples"] == len(test)
    (tmp_path / "odd.tsv").write_text("sentence\tlabel\ngreat\tmaybe\n")
    capsys.readouterr()
    assert evaluate.main(["--run-dir", str(run_dir), "--data", str(tmp_path / "odd.tsv")]) == 2
    assert evaluate.main(["--run-dir", str(run_dir), "--data", str(tmp_path / "held.tsv"), "--split", "validation"]) == 2
    assert evaluate.main(["--run-dir", str(run_dir), "--data", str(tmp_path / "none.tsv")]) == 2
    err = capsys.readouterr().err
    assert "['maybe']" in err and "leave --split out" in err and "no such file" in err and "Traceback" not in err

    capsys.readouterr()
    assert predict.main(["--run-dir", str(run_dir), "great film", "the plot was not good"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    label, probability, text = lines[0].split("\t")
    assert label in ("negative", "positive") and 0.5 <= float(probability) <= 1.0 and text == "great film"

    # The exported string model, the SavedModel and the ONNX token-id graph all match Keras.
    assert export.main(["--run-dir", str(run_dir), "--formats", "saved_model", "onnx"]) == 0
    out = run_dir / "export"
    report = json.loads((out / "export.json").read_text())
    assert report["app"] == "sentiment" and report["text"]["formats"]["saved_model"]["max_abs_diff"] <= 1e-4
    assert report["token_ids"]["formats"]["onnx"]["max_abs_diff"] <= 1e-4
    from common.export import run_saved_model

    texts = ["great film", "i did not find the cast good"]
    served = run_saved_model(out / "text" / "saved_model", [np.asarray(texts, dtype=object)])[0]
    expected = inference.probabilities(load_run(run_dir), texts)[:, 1]
    assert served.shape == (2, 1)
    np.testing.assert_allclose(served[:, 0], expected, atol=1e-5)
    check_app_contract("sentiment", run_dir, tmp_path, capsys, export=False)  # exported above through the CLI


def test_recurrent_model_beats_bag_of_words_on_scope_task(tmp_path):
    # Tiny but real: "A but B" and "B but A" share their words, so only word order decides.
    metrics = _train(
        tmp_path / "scope",
        "data.synthetic_examples=3000", "model.units=(16,)", "model.embedding_dim=16", "model.attention_units=16",
        "train.epochs=4", "train.learning_rate=0.01", "train.schedule=constant",
    )
    rnn = metrics["test"]["accuracy"]
    bag_of_words = metrics["bag_of_words_accuracy"]["test"]
    assert bag_of_words < 0.62, bag_of_words
    assert rnn >= 0.8 and rnn >= bag_of_words + 0.25, (rnn, bag_of_words)


@pytest.mark.tf_only  # export needs TensorFlow
def test_ensemble_averages_its_members_and_resumes_after_a_finished_member(tmp_path, interrupt_fit, capsys):
    import keras

    from apps.nlp.sentiment import features

    run_dir = tmp_path / "run"
    # Stop the second member mid-way: the run is left staged with member 1 finished.
    restore_fit = interrupt_fit(2)
    # An interrupt is exit 130 with the staged state kept for --resume.
    assert train.main(["--config", "tiny", "--run-dir", str(run_dir), "--set", "model.ensemble_size=2"]) == 130
    staged = tmp_path / "run.partial"
    assert (staged / "members" / "1" / "model.keras").is_file() and not run_dir.exists()
    restore_fit()
    capsys.readouterr()
    assert train.main(["--config", "tiny", "--run-dir", str(run_dir), "--set", "model.ensemble_size=2",
                       "--resume"]) == 0
    assert "member 1 already trained" in capsys.readouterr().out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["members"]["size"] == 2 and len(metrics["members"]["test_accuracy"]) == 2
    assert len(metrics["epochs_run"]) == 2
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["members"]) == 2 and (run_dir / "training_curves.png").is_file()
    assert not list(run_dir.glob("members/*/model.keras"))  # weights live once, in the ensemble

    ensemble = load_run(run_dir).model
    members = [layer for layer in ensemble.layers if isinstance(layer, keras.Model)]
    assert [m.name for m in members] == ["member_1", "member_2"]
    ids = features.vectorize(["the plot was not good", "a truly brilliant cast"],
                             features.vectorizer_from_vocabulary(features.load_vocabulary(run_dir / "vocabulary.txt"), 24))
    outputs = [np.asarray(m.predict_on_batch(ids)) for m in members]
    assert not np.allclose(outputs[0], outputs[1])  # different seeds, different members
    np.testing.assert_allclose(np.asarray(ensemble.predict_on_batch(ids)), (outputs[0] + outputs[1]) / 2, atol=1e-6)
    # The nested ensemble exports to a string-input SavedModel like a single classifier.
    assert export.main(["--run-dir", str(run_dir), "--formats", "saved_model"]) == 0
    report = json.loads((run_dir / "export" / "export.json").read_text())
    assert report["text"]["formats"]["saved_model"]["max_abs_diff"] <= 1e-4
