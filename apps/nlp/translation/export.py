"""Exports a trained run: a string-in → string-out SavedModel plus encoder/decoder-step models.

    python -m apps.nlp.translation.export --run-dir runs/translate [--out runs/translate/export] [--num-examples 32]

Writes under `<out-dir>`:
- `translator/`: a TF SavedModel mapping a batch of source strings to translated strings.
  Signatures: `serving_default` (`text`; the run's `decode.beam_size`) and `translate`
  (`text`, `beam_size` from 1 = greedy to max(8, the run's beam size)). Tokenization
  (lower-casing, word/punctuation pieces, BPE merges, `<unk>` for unknown characters),
  the batched search (`decode.greedy_search_ops` / `beam_search_ops`, one `tf.while_loop`
  with the run's length penalty) and detokenization are all TF ops, so no Python is needed
  at serving time. Difference from the Python tokenizer: no Unicode NFKC normalisation.
  `parity.json` compares it on held-out sentences with the in-process compiled search
  (must match exactly) and with the NumPy reference searches (counted: float64 vs float32
  scores may break near-ties differently), for greedy and the run's beam size.
- `encoder/`, `decoder_step/`: SavedModels of the two inference models (checked to 1e-4
  against Keras), for runtimes that do their own beam search; plus both tokenizer files.

    import tensorflow as tf
    translator = tf.saved_model.load("runs/translate/export/translator")
    translator.serve(tf.constant(["Where is the station?"]))  # -> {"translation": [b"..."]}
    translator.translate(tf.constant(["Where is the station?"]), tf.constant(1))  # greedy
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from apps.nlp.translation.data import load_splits, pad_batch
from apps.nlp.translation.decode import _max_steps, beam_decode, beam_search_ops, greedy_decode, greedy_search_ops
from apps.nlp.translation.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, WORD_START, BPETokenizer
from common.export import ExportError, export_all
from common.cli import export_main

MAX_BEAM = 8  # the exported translator accepts beam sizes 1..max(MAX_BEAM, the run's beam size): a bound on memory (rows = batch x beam)
_OPEN, _CLOSE = "\x01", "\x02"  # delimit BPE symbols so regex merges never overlap


def _merge_patterns(tokenizer: BPETokenizer) -> tuple[list[str], list[str]]:
    patterns = [re.escape(f"{_OPEN}{a}{_CLOSE}{_OPEN}{b}{_CLOSE}") for a, b in tokenizer.merges]
    rewrites = [f"{_OPEN}{a}{b}{_CLOSE}".replace("\\", "\\\\") for a, b in tokenizer.merges]
    return patterns, rewrites


def build_string_translator(translator: "Translator"):  # noqa: F821  (apps.nlp.translation.decode)
    """A tf.Module with `serve(text)` (the run's beam size) and `translate(text, beam_size)`, each
    strings [batch] -> {"translation": strings [batch]}; the searches are `decode`'s compiled loops."""
    import tensorflow as tf

    cfg = translator.cfg
    source_tok, target_tok = translator.source_tokenizer, translator.target_tokenizer
    encoder, step = translator.encoder, translator.step
    patterns, rewrites = _merge_patterns(source_tok)
    max_source, max_target = cfg.data.max_source_tokens, cfg.data.max_target_tokens
    ratio, extra = cfg.decode.max_length_ratio, cfg.decode.max_extra_tokens
    alpha, default_beam = cfg.decode.length_penalty, cfg.decode.beam_size
    max_beam = max(MAX_BEAM, default_beam)

    class StringTranslator(tf.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.step = encoder, step
            self.source_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(source_tok.vocab), tf.range(source_tok.vocab_size, dtype=tf.int64)),
                default_value=UNK)
            self.merge_patterns = tf.constant(patterns or [""], dtype=tf.string)
            self.merge_rewrites = tf.constant(rewrites or [""], dtype=tf.string)
            self.num_merges = len(patterns)
            self.max_beam = max_beam
            pieces = ["" if i < len(SPECIAL_TOKENS) else t for i, t in enumerate(target_tok.vocab)]
            self.target_pieces = tf.constant(pieces, dtype=tf.string)

        def tokenize(self, text):
            """strings [batch] -> int32 [batch, tokens] padded with 0, at most max_source tokens."""
            if source_tok.lowercase:
                text = tf.strings.lower(text, encoding="utf-8")
            text = tf.strings.regex_replace(text, WORD_START, " ")
            text = tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))
            text = tf.strings.regex_replace(text, r"(^| )(\S)", "\\1" + WORD_START + "\\2")  # word-start marker
            text = tf.strings.regex_replace(text, rf"({WORD_START}?)([^\pL\pN_\s{WORD_START}])", r" \1\2 ")
            pieces = tf.strings.split(text)  # ragged [batch, pieces]
            chars = tf.strings.unicode_split(pieces.flat_values, "UTF-8")  # ragged [pieces, chars]
            wrapped = tf.strings.reduce_join(_OPEN + chars + _CLOSE, axis=-1)  # [pieces] "\x01a\x02\x01b\x02..."

            def merge(i, words):
                return i + 1, tf.strings.regex_replace(words, self.merge_patterns[i], self.merge_rewrites[i])

            _, merged = tf.while_loop(lambda i, _: i < self.num_merges, merge, [tf.constant(0), wrapped])
            symbols = tf.strings.split(tf.strings.regex_replace(merged, f"^{_OPEN}|{_CLOSE}$", ""), _CLOSE + _OPEN)
            ids = tf.cast(self.source_table.lookup(symbols.flat_values), tf.int32)
            per_piece = symbols.with_flat_values(ids)  # ragged [pieces, symbols]
            per_sentence = pieces.with_flat_values(per_piece).merge_dims(1, 2)  # ragged [batch, tokens]
            return per_sentence[:, :max_source].to_tensor(default_value=PAD)

        def decode(self, text, beam_size):
            """strings [batch], beam size (Python int, or int32 scalar tensor in [1, max_beam]) -> strings [batch]."""
            if not isinstance(beam_size, int):
                tf.debugging.assert_greater_equal(beam_size, 1, message=f"beam_size must be in [1, {max_beam}]")
                tf.debugging.assert_less_equal(beam_size, max_beam, message=f"beam_size must be in [1, {max_beam}]")
            source_ids = self.tokenize(text)
            batch = tf.shape(source_ids)[0]
            lengths = tf.reduce_sum(tf.cast(source_ids != PAD, tf.int32), axis=1)
            longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
            # The Python translator's output-length cap (decode._max_steps), over this batch.
            steps = tf.maximum(1, tf.minimum(max_target, tf.cast(ratio * tf.cast(longest, tf.float32), tf.int32) + extra))
            source_ids = tf.concat([source_ids, tf.zeros([batch, 1], tf.int32)], axis=1)[:, : tf.maximum(1, longest)]

            def search(k):
                if isinstance(k, int) and k == 1:  # the same loops as the in-process compiled decoder (decode.CompiledDecoder)
                    return lambda: greedy_search_ops(self.encoder, self.step, source_ids, steps, max_target)
                return lambda: beam_search_ops(self.encoder, self.step, source_ids, steps, k, alpha, max_target)

            if isinstance(beam_size, int):  # serve: the run's beam size, fixed
                target_ids = search(beam_size)()
            else:  # greedy, or one beam loop whose width is the tensor beam_size
                target_ids = tf.cond(beam_size == 1, search(1), search(beam_size))
            ended = tf.cumsum(tf.cast(target_ids == EOS, tf.int32), axis=1) > 0
            target_ids = tf.where(ended, PAD, target_ids)
            words = tf.strings.reduce_join(tf.gather(self.target_pieces, target_ids), axis=1)
            translation = tf.strings.strip(tf.strings.regex_replace(words, f"({WORD_START}|\\s)+", " "))
            return {"translation": tf.where(lengths > 0, translation, "")}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            """The run's decoding (`decode.beam_size` of its config)."""
            return self.decode(text, int(default_beam))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                      tf.TensorSpec([], tf.int32, name="beam_size")])
        def translate(self, text, beam_size):
            """Any beam size from 1 (greedy) to max(MAX_BEAM, the run's beam size)."""
            return self.decode(text, beam_size)

    return StringTranslator()


def export_run(run, out: Path, num_parity_examples: int = 32) -> dict:
    import tensorflow as tf

    from apps.nlp.translation.app import make_translator

    translator = make_translator(run)
    cfg, run_dir = run.cfg, run.path
    test = load_splits(cfg.data).test[:num_parity_examples]
    sources = [s for s, _ in test] + ["", "Where is the station?"]

    encoded, _ = translator.encode_sources(sources)  # truncated to max_source_tokens
    nonempty = [i for i, ids in enumerate(encoded) if ids]
    source_ids = pad_batch([encoded[i] for i in nonempty])

    # Encoder and decoder step: Keras-level parity via the shared exporter.
    encoder_outputs = [np.asarray(x) for x in translator.encoder(source_ids, training=False)]
    step_inputs = [np.full((len(nonempty), 1), BOS, "int32"), encoder_outputs[0], encoder_outputs[1]] + encoder_outputs[2:]
    report = {"encoder": export_all(translator.encoder, out / "encoder", [source_ids], formats=("saved_model",)),
              "decoder_step": export_all(translator.step, out / "decoder_step", step_inputs, formats=("saved_model",))}
    for name in ("source_tokenizer.json", "target_tokenizer.json", "config.json"):
        shutil.copy(Path(run_dir) / name, out / name)

    # String in → string out. Each beam size checked twice on the same batch: against the in-process compiled
    # search (the same float32 loop: must agree exactly) and against the NumPy reference searches
    # (float64 scores: may differ in near-ties, so counted, not required).
    module = build_string_translator(translator)
    path = out / "translator"
    shutil.rmtree(path, ignore_errors=True)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve, "translate": module.translate})
    loaded = tf.saved_model.load(str(path))
    tf_ids = module.tokenize(tf.constant(sources)).numpy()
    py_ids = pad_batch([ids or [PAD] for ids in encoded], length=max(1, tf_ids.shape[1]))
    steps = _max_steps(source_ids, cfg.decode, cfg.data.max_target_tokens)
    alpha = cfg.decode.length_penalty
    text = translator.target_tokenizer.decode
    checks, exported_by_beam = {}, {}
    for k in sorted({1, cfg.decode.beam_size}):
        exported = [t.decode("utf-8") for t in loaded.translate(tf.constant(sources), tf.constant(k, tf.int32))["translation"].numpy()]
        exported_by_beam[k] = exported
        compiled = [""] * len(sources)
        reference = [""] * len(sources)
        for i, c, r in zip(nonempty, translator.compiled_decoder().decode(source_ids, steps, k, alpha),
                           greedy_decode(translator.encoder, translator.step, source_ids, steps) if k == 1 else
                           beam_decode(translator.encoder, translator.step, source_ids, steps, k, alpha)):
            compiled[i], reference[i] = text(c), text(r)
        checks[f"beam{k}"] = {
            "beam_size": k, "matches_compiled": sum(a == b for a, b in zip(exported, compiled)),
            "matches_python": sum(a == b for a, b in zip(exported, reference)),
            "mismatches": [{"source": s, "python": r, "compiled": c, "saved_model": x}
                           for s, r, c, x in zip(sources, reference, compiled, exported) if x != r or x != c][:5]}
    served = [t.decode("utf-8") for t in loaded.serve(tf.constant(sources))["translation"].numpy()]
    report["translator"] = {
        "path": str(path), "signatures": {"serving_default": f"text -> translation, beam {cfg.decode.beam_size}",
                                          "translate": f"text, beam_size (1-{module.max_beam}) -> translation"},
        "sentences": len(sources), "tokenization_matches": bool(np.array_equal(tf_ids, py_ids)),
        "serve_matches_translate": served == exported_by_beam[cfg.decode.beam_size],
        "decoding": checks}
    (out / "parity.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, check in checks.items():
        if check["matches_compiled"] != len(sources):
            raise ExportError(f"exported translator disagrees with the compiled {name} search on "
                              f"{len(sources) - check['matches_compiled']} of {len(sources)} sentences; see {out / 'parity.json'}")
    if not report["translator"]["serve_matches_translate"]:
        raise ExportError(f"the exported serve and translate signatures disagree; see {out / 'parity.json'}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return export_main("translation", argv)


if __name__ == "__main__":
    raise SystemExit(main())
