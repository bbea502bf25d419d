"""Sentiment prediction with a trained run: raw texts -> labels and probabilities (TF and JAX backends).

    from common.pipeline import load_run
    run = load_run("runs/sst2")
    run.predict(["a gripping , beautifully shot film", "not worth the ticket"])
    run.predict(frame["review"])            # any sequence of strings, e.g. a DataFrame column

Defined behaviour on bad input: an empty or whitespace-only text is an error; bytes that are not
UTF-8 are an error naming the text (the CLI's --file names the line); texts longer than the
run's `data.max_length` tokens are classified from their first `max_length` tokens.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from common.errors import DataError


def predict_ids(model, ids: np.ndarray, batch_size: int = 256, multiple: int = 16) -> np.ndarray:
    """`[n, num_classes]` probabilities, batching similar lengths together (order preserved)."""
    from apps.nlp.sentiment import features
    from apps.nlp.sentiment.model import class_probabilities

    if len(ids) == 0:
        return np.zeros((0, model.output_shape[-1] if model.output_shape[-1] > 1 else 2), dtype=np.float32)
    order = np.argsort(features.sequence_lengths(ids), kind="stable")
    probabilities = None
    for start in range(0, len(ids), batch_size):
        index = order[start:start + batch_size]
        # predict_on_batch runs the traced/compiled graph; an eager call steps the RNN op by op.
        out = class_probabilities(model.predict_on_batch(features.trim_padding(ids[index], multiple)))
        if probabilities is None:
            probabilities = np.zeros((len(ids), out.shape[1]), dtype=np.float32)
        probabilities[index] = out
    return probabilities


def as_texts(inputs) -> list[str]:
    """Strings from a string, a sequence of strings/bytes or a pandas Series; checked."""
    if isinstance(inputs, (str, bytes)):
        inputs = [inputs]
    texts = []
    for i, text in enumerate(list(inputs)):
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"text {i + 1} is not valid UTF-8 ({err.reason} at byte {err.start}); re-save it as "
                                f"UTF-8") from None
        if not isinstance(text, str):
            raise DataError(f"text {i + 1} is {type(text).__name__}, expected a string")
        if not text.strip():
            raise DataError(f"text {i + 1} is empty; give at least one word to classify")
        texts.append(text)
    if not texts:
        raise DataError("nothing to classify: give at least one text")
    return texts


def probabilities(run, inputs: Sequence[str]) -> np.ndarray:
    from apps.nlp.sentiment import features

    ids = features.vectorize(as_texts(inputs), run.state["vectorizer"])
    return predict_ids(run.model, ids, multiple=run.cfg.data.bucket_multiple)


def predict_texts(run, inputs) -> list[dict]:
    """`[{"text", "label", "probability", "probabilities": {label: p}}]` per text."""
    texts = as_texts(inputs)
    names = run.state["label_names"]
    results = []
    for text, row in zip(texts, probabilities(run, texts)):
        best = int(row.argmax())
        results.append({"text": text, "label": names[best], "probability": float(row[best]),
                        "probabilities": {name: float(p) for name, p in zip(names, row)}})
    return results
