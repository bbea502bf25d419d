"""Defined behaviour on bad input (empty, non-UTF-8, huge texts, unseen labels, user mistakes)
and the contracts of the app's layers. Uses an untrained run dir: behaviour, not accuracy."""

import json

import keras
import numpy as np
import pytest

from apps.nlp.sentiment import evaluate, features, inference, predict, train
from apps.nlp.sentiment.config import PRESETS
from apps.nlp.sentiment.model import MaskedMaxPooling, build_classifier
from common.config import save_config
from common.errors import DataError
from common.pipeline import load_run

VOCABULARY = ["", "[UNK]", "the", "film", "was", "not", "good", "bad", "but", "great"]
MAX_LENGTH = 12


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished-looking run dir with an untrained tiny classifier (no fit needed)."""
    path = tmp_path_factory.mktemp("sentiment") / "run"
    path.mkdir()
    cfg = PRESETS["tiny"]
    cfg = type(cfg)(data=type(cfg.data)(**{**cfg.data.__dict__, "max_length": MAX_LENGTH}), model=cfg.model, train=cfg.train)
    save_config(cfg, path / "config.json")
    keras.utils.set_random_seed(0)
    build_classifier(cfg.model, len(VOCABULARY), 2).save(path / "model.keras")
    features.save_vocabulary(VOCABULARY, path / "vocabulary.txt")
    (path / "labels.json").write_text(json.dumps({"label_names": ["negative", "positive"]}))
    (path / "metrics.json").write_text(json.dumps({"primary_split": "test"}))
    return path


def test_vocabulary_round_trip_and_truncation(run_dir):
    vocabulary = features.load_vocabulary(run_dir / "vocabulary.txt")
    assert vocabulary == VOCABULARY
    vectorizer = features.vectorizer_from_vocabulary(vocabulary, MAX_LENGTH)
    ids = features.vectorize(["The film, was NOT good!", "zebra", ""], vectorizer)
    assert ids.dtype == np.int32 and ids.shape == (3, MAX_LENGTH)
    assert ids[0, :5].tolist() == [2, 3, 4, 5, 6] and ids[1, 0] == features.OOV_ID and not ids[2].any()
    huge = features.vectorize(["great " * 100_000], vectorizer)
    assert huge.shape == (1, MAX_LENGTH) and (huge == 9).all()


def test_predictor_handles_bytes_and_huge_texts(run_dir):
    run = load_run(run_dir, "sentiment")
    probabilities = inference.probabilities(run, ["good film".encode(), "caf\u00e9 \u2603 good", "good " * 200_000])
    assert probabilities.shape == (3, 2) and np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    # A huge text is classified from its first max_length tokens.
    np.testing.assert_allclose(probabilities[2], inference.probabilities(run, ["good " * MAX_LENGTH])[0], atol=1e-6)
    with pytest.raises(DataError, match="text 2 is empty"):
        inference.probabilities(run, ["good", "   "])
    with pytest.raises(DataError, match="text 1 is not valid UTF-8"):  # never silently replaced
        inference.probabilities(run, [b"good \xff\xfe film"])
    rows = run.predict(["great film"])
    assert rows[0]["label"] in ("negative", "positive") and set(rows[0]["probabilities"]) == {"negative", "positive"}


def test_predict_cli_errors_and_file_input(run_dir, tmp_path, capsys):
    assert predict.main(["--run-dir", str(run_dir), ""]) == 2
    assert "empty" in capsys.readouterr().err
    assert predict.main(["--run-dir", str(tmp_path / "nope"), "great"]) == 2
    assert "not found" in capsys.readouterr().err
    lines = tmp_path / "reviews.txt"
    lines.write_bytes(b"great film\n\n\xff\xfe broken bytes but good\n")
    assert predict.main(["--run-dir", str(run_dir), "--file", str(lines), "--json"]) == 2
    err = capsys.readouterr().err
    assert "reviews.txt" in err and "line 3" in err and "UTF-8" in err and "Traceback" not in err
    lines.write_bytes(b"great film\n\nbroken bytes but good\n")
    assert predict.main(["--run-dir", str(run_dir), "--file", str(lines), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["great film", "broken bytes but good"]
    assert all(r["label"] in ("negative", "positive") and 0.5 <= r["probability"] <= 1 for r in rows)


def test_evaluate_rejects_unseen_labels(run_dir, tmp_path, capsys):
    table = tmp_path / "eval.tsv"
    table.write_text("sentence\tlabel\ngood film\tpositive\nbad film\tnegative\nhmm\tneutral\n")
    code = evaluate.main(["--run-dir", str(run_dir), "--set", "data.source=table", "--set", f"data.path={table}",
                          "--set", f"data.test_path={table}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "['neutral']" in err and "not seen in training" in err and "Traceback" not in err


def test_train_user_mistakes_leave_no_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--config", "tiny", "--run-dir", str(run), "--set", "model.unitz=(4,)"]) == 2
    assert "unknown config key" in capsys.readouterr().err
    assert train.main(["--config", "tiny", "--run-dir", str(run), "--set", "data.source=table",
                       "--set", f"data.path={tmp_path / 'missing.csv'}"]) == 2
    assert "missing.csv not found" in capsys.readouterr().err
    assert not run.exists() and not (tmp_path / "run.partial").exists()


@pytest.mark.tf_only
def test_string_model_matches_token_path_on_bad_input(run_dir):
    classifier = load_run(run_dir, "sentiment").model
    text_model = features.build_text_model(classifier, VOCABULARY, MAX_LENGTH)
    texts = ["great film", "", "good \ufffd\ufffd film", "not " * 50_000 + "good"]
    served = np.asarray(text_model(np.asarray(texts, dtype=object)))
    assert served.shape == (4, 1) and np.isfinite(served).all()  # empty text: a defined, finite probability
    # Raw invalid UTF-8 bytes inside the graph do not crash either.
    assert np.isfinite(np.asarray(text_model(np.asarray([b"\xff\xfe good"], dtype=object)))).all()
    ids = features.vectorize(texts, features.vectorizer_from_vocabulary(VOCABULARY, MAX_LENGTH))
    np.testing.assert_allclose(served[:, 0], np.asarray(classifier(ids))[:, 0], atol=1e-6)


def test_layer_contracts():
    ids = np.array([[5, 6, 7, 0], [8, 0, 0, 0]], dtype="int32")
    dropout = features.WordDropout(0.5, seed=1)
    np.testing.assert_array_equal(np.asarray(dropout(ids, training=False)), ids)
    dropped = np.asarray(dropout(np.repeat(ids, 200, axis=0), training=True))
    assert set(np.unique(dropped)) <= {0, 1, 5, 6, 7, 8} and (dropped[ids.repeat(200, 0) == 0] == 0).all()
    assert 0.3 < (dropped == 1).sum() / (ids != 0).repeat(200, 0).sum() < 0.7
    assert features.WordDropout.from_config(dropout.get_config()).rate == 0.5
    pooled = MaskedMaxPooling()(np.array([[[1.0], [5.0], [9.0]]] * 2, dtype="float32"),
                                mask=np.array([[True, True, False], [False, False, False]]))
    np.testing.assert_allclose(np.asarray(pooled), [[5.0], [0.0]])
    with pytest.raises(ValueError, match="rate must be in"):
        features.WordDropout(1.5)


def test_three_class_classifier_trains_and_round_trips(tmp_path):
    from apps.nlp.sentiment.model import class_probabilities, compile_classifier

    cfg = PRESETS["tiny"].model
    model = compile_classifier(build_classifier(cfg, 20, 3), "adam", 3)
    ids = np.array([[2, 3, 4, 0], [5, 6, 0, 0], [7, 0, 0, 0]], dtype="int32")
    model.fit(ids, np.array([0, 1, 2], dtype="int32"), epochs=1, verbose=0)
    probabilities = class_probabilities(model.predict_on_batch(ids))
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(np.asarray(reloaded.predict_on_batch(ids)), model.predict_on_batch(ids), atol=1e-6)
