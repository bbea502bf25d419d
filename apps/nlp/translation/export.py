"""Exports a trained run: a string-in → string-out SavedModel plus encoder/decoder-step models.

    python -m apps.nlp.translation.export --run-dir runs/translate [--out runs/translate/export] [--num-examples 32]

Writes under `<out-dir>`:
- `translator/`: a TF SavedModel whose `serve` signature maps a batch of source strings
  to translated strings with greedy decoding inside one `tf.function`. Tokenization
  (lower-casing, word/punctuation pieces, BPE merges, `<unk>` for unknown characters),
  the decoding loop and detokenization are all TF ops, so no Python is needed at
  serving time. Difference from the Python tokenizer: no Unicode NFKC normalisation.
  Checked against the Python greedy translator on held-out sentences (`parity.json`).
- `encoder/`, `decoder_step/`: SavedModels of the two inference models (checked to 1e-4
  against Keras), for runtimes that do their own beam search; plus both tokenizer files.

    import tensorflow as tf
    translator = tf.saved_model.load("runs/translate/export/translator")
    translator.serve(tf.constant(["Where is the station?"]))  # -> {"translation": [b"..."]}
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from apps.nlp.translation.data import load_splits, pad_batch
from apps.nlp.translation.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, WORD_START, BPETokenizer
from common.export import ExportError, export_all
from common.cli import export_main

_OPEN, _CLOSE = "\x01", "\x02"  # delimit BPE symbols so regex merges never overlap


def _merge_patterns(tokenizer: BPETokenizer) -> tuple[list[str], list[str]]:
    patterns = [re.escape(f"{_OPEN}{a}{_CLOSE}{_OPEN}{b}{_CLOSE}") for a, b in tokenizer.merges]
    rewrites = [f"{_OPEN}{a}{b}{_CLOSE}".replace("\\", "\\\\") for a, b in tokenizer.merges]
    return patterns, rewrites


def build_string_translator(translator: "Translator"):  # noqa: F821  (apps.nlp.translation.decode)
    """A tf.Module with `serve(strings [batch]) -> {"translation": strings [batch]}` (greedy)."""
    import tensorflow as tf

    cfg = translator.cfg
    source_tok, target_tok = translator.source_tokenizer, translator.target_tokenizer
    encoder, step = translator.encoder, translator.step
    patterns, rewrites = _merge_patterns(source_tok)
    max_source, max_target = cfg.data.max_source_tokens, cfg.data.max_target_tokens
    ratio, extra = cfg.decode.max_length_ratio, cfg.decode.max_extra_tokens

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
            pieces = ["" if i < len(SPECIAL_TOKENS) else t for i, t in enumerate(target_tok.vocab)]
            self.target_pieces = tf.constant(pieces, dtype=tf.string)
            self.forbidden = tf.constant([i in (PAD, BOS) for i in range(target_tok.vocab_size)])

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

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            source_ids = self.tokenize(text)
            batch = tf.shape(source_ids)[0]
            lengths = tf.reduce_sum(tf.cast(source_ids != PAD, tf.int32), axis=1)
            longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
            steps = tf.maximum(1, tf.minimum(max_target, tf.cast(ratio * tf.cast(longest, tf.float32), tf.int32) + extra))
            source_ids = tf.concat([source_ids, tf.zeros([batch, 1], tf.int32)], axis=1)[:, : tf.maximum(1, longest)]
            # tf.identity drops the Keras mask attached to the encoder outputs (the step model takes it explicitly).
            encoder_outputs, mask, *states = [tf.identity(x) for x in self.encoder(source_ids, training=False)]

            def body(t, tokens, done, states, outputs):
                logits, *new_states = self.step([tokens, encoder_outputs, mask] + list(states), training=False)
                # <pad> and <s> are never valid outputs (as in the Python decoders).
                logits = tf.where(self.forbidden, tf.constant(-float("inf"), logits.dtype), logits)
                next_tokens = tf.cast(tf.argmax(logits, axis=-1), tf.int32)
                next_tokens = tf.where(done, PAD, next_tokens)
                outputs = outputs.write(t, next_tokens)
                return t + 1, next_tokens[:, None], done | (next_tokens == EOS), new_states, outputs

            def keep_going(t, tokens, done, states, outputs):
                return (t < steps) & ~tf.reduce_all(done)

            outputs = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
            start = tf.fill([batch, 1], BOS)
            _, _, _, _, outputs = tf.while_loop(
                keep_going, body, [0, start, tf.zeros([batch], tf.bool), list(states), outputs],
                shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, 1]), tf.TensorShape([None]),
                                  [tf.TensorShape([None, s.shape[-1]]) for s in states], None])
            target_ids = tf.transpose(outputs.stack())  # [batch, steps]
            ended = tf.cumsum(tf.cast(target_ids == EOS, tf.int32), axis=1) > 0
            target_ids = tf.where(ended, PAD, target_ids)
            words = tf.strings.reduce_join(tf.gather(self.target_pieces, target_ids), axis=1)
            translation = tf.strings.strip(tf.strings.regex_replace(words, f"({WORD_START}|\\s)+", " "))
            return {"translation": tf.where(lengths > 0, translation, "")}

    return StringTranslator()


def export_run(run, out: Path, num_parity_examples: int = 32) -> dict:
    import tensorflow as tf

    from apps.nlp.translation.app import make_translator

    translator = make_translator(run)
    cfg, run_dir = run.cfg, run.path
    test = load_splits(cfg.data).test[:num_parity_examples]
    sources = [s for s, _ in test] + ["", "Where is the station?"]

    # Encoder and decoder step: Keras-level parity via the shared exporter.
    ids, _ = translator.encode_sources([s for s in sources if s.strip()])
    source_ids = pad_batch(ids)
    encoder_outputs = [np.asarray(x) for x in translator.encoder(source_ids, training=False)]
    step_inputs = [np.full((len(ids), 1), BOS, "int32"), encoder_outputs[0], encoder_outputs[1]] + encoder_outputs[2:]
    report = {"encoder": export_all(translator.encoder, out / "encoder", [source_ids], formats=("saved_model",)),
              "decoder_step": export_all(translator.step, out / "decoder_step", step_inputs, formats=("saved_model",))}
    for name in ("source_tokenizer.json", "target_tokenizer.json", "config.json"):
        shutil.copy(Path(run_dir) / name, out / name)

    # String in → string out, compared with the Python greedy translator.
    module = build_string_translator(translator)
    path = out / "translator"
    shutil.rmtree(path, ignore_errors=True)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    loaded = tf.saved_model.load(str(path))
    exported = [t.decode("utf-8") for t in loaded.serve(tf.constant(sources))["translation"].numpy()]
    expected = [t.text for t in translator.translate(sources, beam_size=1)]
    tf_ids = module.tokenize(tf.constant(sources)).numpy()
    py_ids = pad_batch([translator.source_tokenizer.encode(s)[: cfg.data.max_source_tokens] or [PAD] for s in sources],
                       length=max(1, tf_ids.shape[1]))
    matches = sum(a == b for a, b in zip(exported, expected))
    report["translator"] = {
        "path": str(path), "decoding": "greedy", "sentences": len(sources), "exact_matches": matches,
        "tokenization_matches": bool(np.array_equal(tf_ids, py_ids)),
        "mismatches": [{"source": s, "python": e, "saved_model": x} for s, e, x in zip(sources, expected, exported) if e != x][:5],
    }
    (out / "parity.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if matches != len(sources):
        raise ExportError(f"string translator disagrees with Python greedy decoding on {len(sources) - matches} "
                          f"of {len(sources)} sentences; see {out / 'parity.json'}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return export_main("translation", argv)


if __name__ == "__main__":
    raise SystemExit(main())
