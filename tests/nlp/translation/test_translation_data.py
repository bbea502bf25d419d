"""Data: synthetic generator, deterministic split without source overlap, readers, batches."""

import gzip

import numpy as np
import pytest

from apps.nlp.translation.config import DataConfig
from apps.nlp.translation.data import (PairBatches, load_splits, read_parallel, read_tab_pairs,
                                       source_key, split_pairs, teacher_forcing_batch)
from apps.nlp.translation.synthetic import generate_pairs
from apps.nlp.translation.tokenizer import BOS, EOS, PAD
from common.errors import DataError


def _no_overlap(splits):
    keys = [{source_key(s) for s, _ in part} for part in (splits.train, splits.valid, splits.test)]
    return not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])


def test_synthetic_is_deterministic_and_has_agreement_and_reordering():
    pairs = generate_pairs(400, "es", seed=3)
    assert pairs == generate_pairs(400, "es", seed=3) and len({s for s, _ in pairs}) == 400
    lookup = dict(generate_pairs(3000, "es"))
    assert any("coche rojo" in t or "coches rojos" in t for t in lookup.values())  # adjective after the noun
    for source, target in lookup.items():
        if " red houses" in source:
            assert "casas rojas" in target  # feminine plural agreement
    german = dict(generate_pairs(2000, "de"))
    fronted = [(s, t) for s, t in german.items() if s.startswith("On ") and " we " in s]
    assert fronted and all(" wir " in t and t.split()[3] != "wir" for s, t in fronted)  # verb before subject


def test_split_is_deterministic_and_keeps_each_source_in_one_split():
    pairs = [(f"sentence {i % 300}", f"satz {i}") for i in range(900)]  # every source three times
    splits = split_pairs(pairs, 0.1, 0.1, seed=0)
    shuffled = split_pairs(list(reversed(pairs)), 0.1, 0.1, seed=0)
    for part, other in zip((splits.train, splits.valid, splits.test), (shuffled.train, shuffled.valid, shuffled.test)):
        assert sorted(part) == sorted(other)  # file order does not matter
    assert _no_overlap(splits)
    assert 40 < len(splits.test) < 160 and sum(splits.sizes().values()) == 900
    with pytest.raises(ValueError, match="fraction"):
        split_pairs(pairs, 0.6, 0.5)


def test_official_splits_lose_overlapping_training_sources(tmp_path):
    for split, rows in {"train": ["a b", "c d", "E F", "g h"], "val": ["c d"], "test_2016_flickr": ["e f"]}.items():
        for lang, suffix in (("de", ""), ("en", " en")):
            with gzip.open(tmp_path / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("".join(r + suffix + "\n" for r in rows))
    found = read_parallel(tmp_path, "de", "en")
    assert found["train"][0] == ("a b", "a b en")
    cfg = DataConfig(source=f"parallel:{tmp_path}", source_lang="de", target_lang="en", num_examples=0)
    splits = load_splits(cfg)
    assert [s for s, _ in splits.train] == ["a b", "g h"] and _no_overlap(splits)


def test_tab_pairs_direction_and_errors(tmp_path):
    path = tmp_path / "spa.txt"
    path.write_text("Go.\tVe.\tCC-BY\nHi.\tHola.\n", encoding="utf-8")
    assert read_tab_pairs(path, "es", "en") == [("Ve.", "Go."), ("Hola.", "Hi.")]
    assert read_tab_pairs(path, "en", "es")[0] == ("Go.", "Ve.")
    with pytest.raises(DataError, match="not found"):
        read_tab_pairs(tmp_path / "missing.txt", "es", "en")
    with pytest.raises(ValueError, match="unknown data.source"):
        load_splits(DataConfig(source="nowhere"))


def test_anki_split_has_no_source_overlap(shared_data):
    cfg = DataConfig(source="anki", source_lang="es", target_lang="en", num_examples=0)
    splits = load_splits(cfg)
    assert sum(splits.sizes().values()) > 110_000 and _no_overlap(splits)


def test_teacher_forcing_batches_shift_and_pad():
    inputs, target_out = teacher_forcing_batch([[5, 6, 7], [8]], [[9, 10], [11]])
    assert inputs["source_ids"].shape == (2, 8) and inputs["target_in"].shape == target_out.shape == (2, 8)
    assert inputs["target_in"][0, :3].tolist() == [BOS, 9, 10] and target_out[0, :3].tolist() == [9, 10, EOS]
    assert target_out[1, 2] == PAD
    batches = PairBatches([[1] * n for n in range(1, 41)], [[2] * n for n in range(1, 41)], batch_size=8, seed=0)
    assert len(batches) == 5
    seen = np.concatenate([(batches[i][0]["source_ids"] != PAD).sum(1) for i in range(len(batches))])
    assert sorted(seen.tolist()) == list(range(1, 41))  # every pair exactly once
