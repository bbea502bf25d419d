"""The compiled batched search (decode.CompiledDecoder) gives the Python search's outputs."""

import keras
import pytest

from apps.nlp.translation.config import PRESETS
from apps.nlp.translation.decode import Translator, time_decoding
from apps.nlp.translation.model import Seq2Seq
from apps.nlp.translation.tokenizer import BPETokenizer

TEXTS = ["where is the station?", "the red car is small.", "we buy three red cars.", "a dog runs in the park.",
         "two men are playing music.", "where is the small red car?"] * 3


@pytest.mark.parametrize("beam_size", [1, 3])
def test_compiled_search_matches_python_search(beam_size):
    keras.utils.set_random_seed(0)
    cfg = PRESETS["tiny"]
    source, target = BPETokenizer.train(TEXTS, 60), BPETokenizer.train(TEXTS, 60)
    translator = Translator(cfg, source, target, Seq2Seq(cfg.model, source.vocab_size, target.vocab_size))
    ids, _ = translator.encode_sources(TEXTS[:6] + ["", "where"])
    report = time_decoding(translator, ids, beam_size)
    python, compiled = report["python"]["outputs"], report["compiled"]["outputs"]
    assert report["differing"] == [], (python, compiled)
    assert compiled[6] == [] and any(len(out) > 0 for out in compiled)  # empty source -> empty output
