"""Classify raw texts with a trained sentiment run.

    python -m apps.nlp.sentiment.predict --run-dir runs/sentiment "great film" "not great at all"
    python -m apps.nlp.sentiment.predict --run-dir runs/sentiment --file reviews.txt --json

Prints `label<TAB>probability<TAB>text` per input (probability of the predicted label).
Defined behaviour on bad input: an empty or whitespace-only text is an error (exit 2);
bytes that are not UTF-8 are replaced by U+FFFD; texts longer than the run's
`data.max_length` tokens are classified from their first `max_length` tokens.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from apps.nlp.sentiment import features
from apps.nlp.sentiment.evaluate import load_run, predict_ids
from common.training import load_model, report_user_error, USER_ERRORS


class Predictor:
    """Raw texts → labels and probabilities for a finished run dir (works under TF and JAX)."""

    def __init__(self, run_dir: str | Path):
        from apps.nlp.sentiment import model as _model  # noqa: F401  (registers the custom layers)

        self.run_dir, self.cfg, vocabulary, self.label_names = load_run(run_dir)
        self.classifier = load_model(self.run_dir)
        self.vectorizer = features.vectorizer_from_vocabulary(vocabulary, self.cfg.data.max_length)

    def probabilities(self, texts: Sequence[str | bytes]) -> np.ndarray:
        """`[n, num_classes]` probabilities; raises ValueError on an empty text."""
        texts = features.clean_texts(texts)
        for i, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"text {i + 1} is empty; give at least one word to classify")
        ids = features.vectorize(texts, self.vectorizer)
        return predict_ids(self.classifier, ids, multiple=self.cfg.data.bucket_multiple)

    def predict(self, texts: Sequence[str | bytes]) -> list[dict]:
        probabilities = self.probabilities(texts)
        results = []
        for text, row in zip(features.clean_texts(texts), probabilities):
            best = int(row.argmax())
            results.append({"text": text, "label": self.label_names[best], "probability": float(row[best]),
                            "probabilities": {name: float(p) for name, p in zip(self.label_names, row)}})
        return results


def read_lines(path: str | Path) -> list[str]:
    """One text per non-empty line; invalid UTF-8 bytes become U+FFFD instead of failing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--file {path} not found")
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise ValueError(f"--file {path} has no non-empty lines")
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify texts with a trained sentiment run dir")
    parser.add_argument("--run-dir", required=True, help="a run dir written by apps.nlp.sentiment.train")
    parser.add_argument("texts", nargs="*", help="texts to classify")
    parser.add_argument("--file", help="a text file with one text per line")
    parser.add_argument("--json", action="store_true", help="print one JSON object per text")
    args = parser.parse_args(argv)
    try:
        texts = list(args.texts) + (read_lines(args.file) if args.file else [])
        if not texts:
            raise ValueError("nothing to classify: pass texts as arguments or --file PATH")
        # Command-line arguments with invalid UTF-8 arrive as surrogate escapes; recover their bytes.
        texts = [t.encode("utf-8", errors="surrogateescape") if isinstance(t, str) and _has_surrogates(t) else t
                 for t in texts]
        results = Predictor(args.run_dir).predict(texts)
    except USER_ERRORS as err:
        return report_user_error(err)
    for result in results:
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(f"{result['label']}\t{result['probability']:.4f}\t{result['text'][:200]}")
    return 0


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


if __name__ == "__main__":
    raise SystemExit(main())
