"""End to end on the tiny preset: train → evaluate → translate → export, plus bad input."""

import json

import pytest

from apps.nlp import translate as translate_entry
from apps.nlp.translation import evaluate, export, train
from apps.nlp.translation.config import PRESETS
from apps.nlp.translation.decode import Translator
from apps.nlp.translation.model import Seq2Seq
from apps.nlp.translation.tokenizer import BPETokenizer

from tests.contract import check_app_contract

pytestmark = pytest.mark.filterwarnings("ignore:.*shuffle=True. was passed")

TEXTS = ["where is the station?", "the red car is small.", "we buy three red cars."] * 4


def _untrained_translator(**overlong):
    cfg = PRESETS["tiny"]
    source = BPETokenizer.train(TEXTS, 40)
    target = BPETokenizer.train(TEXTS, 40)
    return Translator(cfg, source, target, Seq2Seq(cfg.model, source.vocab_size, target.vocab_size), **overlong)


@pytest.mark.tf_only
def test_train_evaluate_translate_export(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train.main(["--config", "tiny", "--run-dir", str(run_dir), "--set", "data.target_lang=de"]) == 0
    for name in ("config.json", "model.keras", "source_tokenizer.json", "target_tokenizer.json", "history.json", "metrics.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # Tiny but trained (measured BLEU 1.5, chrF 15.3 for de on 2 CPU cores): a model that emits nothing
    # useful scores BLEU 0.
    assert metrics["bleu"] >= 1.0 and metrics["chrf"] >= 12.0, (metrics["bleu"], metrics["chrf"])
    assert metrics["bleu_signature"].startswith("nrefs:1|case:lc")
    out = capsys.readouterr().out
    assert f"Run dir: {run_dir}" in out and "test_bleu" in out

    assert evaluate.main(["--run-dir", str(run_dir), "--beam-size", "1", "--max-examples", "4"]) == 0
    own = json.loads((run_dir / "eval" / "test_beam1" / "metrics.json").read_text())
    assert own["num_sentences"] == 4
    # --data: the run's test pairs as line-aligned files (a folder holding one NAME.en + NAME.de), and as a TSV.
    from apps.nlp.translation.data import load_splits
    from common.pipeline import load_run

    pairs = load_splits(load_run(run_dir).cfg.data).test
    held = tmp_path / "held"
    held.mkdir()
    (held / "test_2017.en").write_text("\n".join(s for s, _ in pairs) + "\n")
    (held / "test_2017.de").write_text("\n".join(t for _, t in pairs) + "\n")
    (tmp_path / "held.tsv").write_text("\n".join(f"{s}\t{t}" for s, t in pairs) + "\n")
    for data, name in ((held, "held"), (tmp_path / "held.tsv", "held_tsv")):
        assert evaluate.main(["--run-dir", str(run_dir), "--data", str(data), "--beam-size", "1", "--max-examples", "4",
                              "--out", str(tmp_path / name)]) == 0
        scored = json.loads((tmp_path / name / "metrics.json").read_text())
        assert (scored["bleu"], scored["chrf"], scored["num_sentences"]) == (own["bleu"], own["chrf"], 4), name
    capsys.readouterr()
    assert evaluate.main(["--run-dir", str(run_dir), "--data", str(tmp_path / "nowhere")]) == 2
    assert evaluate.main(["--run-dir", str(run_dir), "--data", str(held), "--split", "validation"]) == 2
    err = capsys.readouterr().err
    assert "neither" in err and "leave --split out" in err and "Traceback" not in err

    capsys.readouterr()
    long_sentence = " ".join(["we buy three red cars"] * 20)
    assert translate_entry.main(["Where is the station?", "Where is the 駅?", long_sentence, "--run-dir", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3
    assert "駅" in captured.err  # unknown characters: translated anyway, with a warning naming them
    assert "translated only the first 24" in captured.err  # over-long input: truncated with a warning
    assert translate_entry.main([long_sentence, "--run-dir", str(run_dir), "--strict"]) == 2
    assert "max_source_tokens" in capsys.readouterr().err
    assert translate_entry.main(["", "--run-dir", str(run_dir)]) == 2
    assert "empty source sentence" in capsys.readouterr().err

    assert export.main(["--run-dir", str(run_dir), "--num-examples", "4"]) == 0
    parity = json.loads((run_dir / "export" / "parity.json").read_text())
    translator_parity = parity["translator"]
    assert translator_parity["tokenization_matches"] and translator_parity["serve_matches_translate"]
    assert set(translator_parity["decoding"]) == {"beam1", "beam2"}  # greedy and the tiny preset's beam size
    for check in translator_parity["decoding"].values():
        # The exported loops equal the in-process compiled ones and, on this tiny model, the NumPy reference.
        assert check["matches_compiled"] == check["matches_python"] == translator_parity["sentences"] == 6, check
    assert parity["decoder_step"]["formats"]["saved_model"]["max_abs_diff"] <= 1e-4

    import tensorflow as tf

    loaded = tf.saved_model.load(str(run_dir / "export" / "translator"))  # keep a reference: it owns the variables
    python = Translator.from_run_dir(run_dir, implementation="python")
    sentences = ["Where is the station?", "we buy three red cars", ""]
    for k in (1, 3):
        served = loaded.translate(tf.constant(sentences), tf.constant(k))["translation"].numpy()
        assert [t.decode() for t in served] == [t.text for t in python.translate(sentences, beam_size=k)], k
    with pytest.raises(tf.errors.InvalidArgumentError, match="beam_size must be in"):
        loaded.translate(tf.constant(sentences), tf.constant(9))
    check_app_contract("translation", run_dir, tmp_path, capsys, export=False,
                       options={"beam_size": 1, "max_examples": 4})  # exported above through the CLI


def test_empty_source_gives_empty_translation_without_running_the_model():
    translator = _untrained_translator()
    results = translator.translate(["", "   ", "where is the station?"], beam_size=2)
    assert [r.text for r in results[:2]] == ["", ""]
    assert translator.translate_ids([[]]) == [[]]


def test_overlong_source_is_truncated_or_rejected():
    long_sentence = " ".join(["where is the station?"] * 30)
    translator = _untrained_translator()
    result = translator.translate([long_sentence], beam_size=1)[0]
    assert result.truncated
    translator.on_overlong = "error"
    with pytest.raises(ValueError, match="max_source_tokens"):
        translator.translate([long_sentence])


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    assert translate_entry.main(["hello", "--run-dir", str(tmp_path)]) == 2
    assert "not a run dir" in capsys.readouterr().err
    assert translate_entry.main(["hello", "--run-dir", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert train.main(["--config", "tiny", "--run-dir", str(tmp_path / "r"), "--set", "model.nope=1"]) == 2
    assert "unknown config key" in capsys.readouterr().err
    assert train.main(["--config", "tiny", "--run-dir", str(tmp_path / "r"), "--set", "data.source=nowhere"]) == 2
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.partial").exists()
    assert evaluate.main(["--run-dir", str(tmp_path / "missing")]) == 2
