"""Export a trained language model (TensorFlow backend).

    python -m apps.nlp.language_model.export --run-dir runs/lm [--out DIR] [--formats saved_model tflite onnx]

Writes under `<run-dir>/export/`:
- `step/saved_model/`, `step/model.tflite` (builtin ops only), `step/model.onnx`: the streaming
  step model for on-device next-word prediction, `(token int32 [1, 1], state_0..state_k float32
  [1, units]) -> (log_probs [1, vocab], new states)`; zero states start a text, and feeding
  `<eos>` first matches how the model reads a new paragraph. Each format is run over a 100-token
  stream (its own states fed back) and must match the Keras step model within 1e-4 at every step.
- `next_words/`: a SavedModel with `serve(prompt: string scalar, k: int32 scalar) -> {"words":
  string [k], "probabilities": float32 [k]}` (splits the prompt on spaces, unknown words as <unk>),
  checked against the Python `next_words` on sample prompts.
- `vocabulary.txt` (id -> word) and `export.json`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from common.cli import export_main
from common.errors import UserError

ATOL = 1e-4


def _stream_tokens(run, count: int) -> np.ndarray:
    """`count` real tokens: the start of the run's test stream when its data is here, else seeded ids."""
    try:
        from apps.nlp.language_model.data import load_corpus

        corpus = load_corpus(run.cfg.data, seed=run.cfg.train.seed)
        if corpus.vocabulary == run.state["vocabulary"] and len(corpus.test) >= count:
            return corpus.test[:count].astype(np.int32)
    except UserError:
        pass
    return np.random.default_rng(0).integers(0, len(run.state["vocabulary"]), count).astype(np.int32)


def _run_stream(step, tokens: np.ndarray, num_states: int, widths) -> np.ndarray:
    states = [np.zeros((1, w), dtype=np.float32) for w in widths]
    outputs = []
    for token in tokens:
        out = step([np.array([[token]], dtype=np.int32), *states])
        outputs.append(np.asarray(out[0]))
        states = [np.asarray(s) for s in out[1:1 + num_states]]
    return np.concatenate(outputs)


def build_next_words_module(lm, vocabulary: Sequence[str]):
    """A tf.Module serving the top-k next words of a prompt string."""
    import tensorflow as tf

    from apps.nlp.language_model.data import EOS, UNK
    from apps.nlp.language_model.model import build_prompt_model

    prompt_model = build_prompt_model(lm)
    unk, eos = vocabulary.index(UNK), vocabulary.index(EOS)

    class NextWords(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = prompt_model
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(list(vocabulary)),
                                                    tf.range(len(vocabulary), dtype=tf.int64)), default_value=unk)
            self.words = tf.constant(list(vocabulary))

        @tf.function(input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32)])
        def serve(self, prompt, k):
            ids = tf.cast(self.table.lookup(tf.strings.split(prompt)), tf.int32)
            ids = tf.concat([[eos], ids], axis=0)[None]
            log_probs = self.model(ids, training=False)[0]
            top = tf.math.top_k(log_probs, k=k)
            return {"words": tf.gather(self.words, top.indices), "probabilities": tf.exp(top.values)}

    return NextWords()


def export_run(run, out: Path, formats: Sequence[str], num_tokens: int = 100) -> dict:
    from apps.nlp.language_model.inference import next_words
    from apps.nlp.language_model.model import build_step_model
    from common.export import ExportError, export_onnx, export_saved_model, export_tflite, input_names, onnx_runner
    from common.export import tflite_runner

    import tensorflow as tf

    lm, vocabulary = run.state["lm"], run.state["vocabulary"]
    widths = lm.state_shapes()
    step = build_step_model(lm, batch_size=1, unroll=True)  # one step: no loop left for TFLite/ONNX
    tokens = _stream_tokens(run, num_tokens)
    reference = _run_stream(step.predict_on_batch, tokens, len(widths), widths)
    folder = out / "step"
    folder.mkdir(parents=True, exist_ok=True)
    report = {"tokens": int(len(tokens)), "atol": ATOL, "state_widths": widths, "formats": {}}
    for fmt in formats:
        if fmt == "saved_model":
            path = export_saved_model(step, folder / "saved_model")
            loaded = tf.saved_model.load(str(path))
            serve = loaded.signatures["serving_default"]
            names = input_names(step)
            output_keys = None

            def runner(xs, serve=serve, names=names):
                nonlocal output_keys
                result = serve(**{n: tf.constant(x) for n, x in zip(names, xs)})
                if output_keys is None:
                    output_keys = sorted(result, key=lambda k: int(k.rsplit("_", 1)[-1]) if k[-1].isdigit() else -1)
                return [result[k].numpy() for k in output_keys]
        elif fmt == "tflite":
            path = export_tflite(step, folder / "model.tflite")
            runner = tflite_runner(path, input_names(step))
        else:
            path = export_onnx(step, folder / "model.onnx")
            runner = onnx_runner(path)
        outputs = _run_stream(runner, tokens, len(widths), widths)
        diff = float(np.abs(outputs - reference).max())
        if not diff <= ATOL:
            raise ExportError(f"{fmt} step model differs from Keras by {diff:.3g} (> {ATOL:g}) over {len(tokens)} tokens")
        report["formats"][fmt] = {"path": str(path), "max_abs_diff": diff}
    if "saved_model" in formats:
        module = build_next_words_module(lm, vocabulary)
        path = out / "next_words"
        tf.saved_model.save(module, str(path))
        served = tf.saved_model.load(str(path))
        checked = []
        for prompt in ("the", "in the early", "he was born in"):
            try:
                expected = next_words(run, prompt, 5)
            except UserError:
                continue
            got = served.serve(tf.constant(prompt), tf.constant(5))
            words = [w.decode() for w in got["words"].numpy()]
            diff = float(np.abs(got["probabilities"].numpy() - [e["probability"] for e in expected]).max())
            if words != [e["word"] for e in expected] or not diff <= ATOL:
                raise ExportError(f"next_words SavedModel disagrees with Python on {prompt!r}: {words} vs "
                                  f"{[e['word'] for e in expected]} (max |diff| {diff:.3g})")
            checked.append(prompt)
        report["next_words"] = {"path": str(path), "prompts_checked": checked}
    shutil.copy(run.path / "vocabulary.txt", out / "vocabulary.txt")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return export_main("language_model", argv)


if __name__ == "__main__":
    raise SystemExit(main())
