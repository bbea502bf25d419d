"""A bad --set value ends every train script with a one-line error (exit 2) before any run dir exists."""

import importlib

import pytest

CASES = [
    ("apps.nlp.sentiment.train", "data.vocab_size=0", "vocab_size"),
    ("apps.nlp.sentiment.train", "data.max_length=0", "max_length"),
    ("apps.nlp.sentiment.train", "data.bucket_multiple=0", "bucket_multiple"),
    ("apps.nlp.sentiment.train", "data.validation_fraction=1.5", "fraction"),
    ("apps.nlp.translation.train", "data.pad_multiple=0", "pad_multiple"),
    ("apps.nlp.translation.train", "decode.beam_size=0", "beam_size"),
    ("apps.nlp.translation.train", "tokenizer.source_vocab_size=0", "vocab_size"),
    ("apps.timeseries.train", "data.horizon=0", "horizon"),
    ("apps.timeseries.train", "model.seg_len=0", "seg_len"),
    ("apps.speech.train", "model.units=()", "units"),
    ("apps.speech.train", "data.clip_seconds=0", "clip_seconds"),
    ("apps.speech.train", "train.epochs=0", "epochs"),
    ("apps.speech.train", "features.num_mel_bins=0", "num_mel_bins"),
    ("apps.timeseries.train", "data.path=mine.csv", "data.source=csv"),
    ("apps.nlp.sentiment.train", "data.path=mine.csv", "data.source=table"),
    ("apps.nlp.sentiment.train", "data.text_column=review", "data.source=table"),
    ("apps.nlp.sentiment.train", "data.pretrain_corpus=imdb", "embedding_init=word2vec"),
    ("apps.nlp.sentiment.train", "data.corpus_vocab_size=5000", "embedding_init=word2vec"),
    ("apps.nlp.sentiment.train", "data.corpus_vocab_size=-1", "corpus_vocab_size"),
    ("apps.speech.train", "data.path=clips", "data.source=folder"),
    ("apps.speech.train", "model.rnn_implementation=cudnn", "rnn_implementation"),
    ("apps.speech.train", "model.scan_unroll=0", "scan_unroll"),
    ("apps.nlp.sentiment.train", "model.scan_unroll=0", "scan_unroll"),
    ("apps.nlp.translation.train", "model.scan_unroll=0", "scan_unroll"),
]


@pytest.mark.parametrize("module,setting,word", CASES, ids=[f"{m.split('.')[-2]}:{s}" for m, s, _ in CASES])
def test_bad_setting_is_a_clear_error_without_a_run_dir(module, setting, word, tmp_path, capsys):
    main = importlib.import_module(module).main
    assert main(["--config", "tiny", "--set", setting, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and word in err and "Traceback" not in err
    assert not any(tmp_path.iterdir()), "a run dir (or .partial) was left behind"
