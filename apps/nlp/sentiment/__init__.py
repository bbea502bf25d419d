"""Sentiment classification: raw text in, label + probability out.

Data sources (`data.py`, `synthetic.py`) → vocabulary and batching (`features.py`) →
embedding + RecurrentStack + pooling classifier (`model.py`) → `train.py` / `evaluate.py`
/ `predict.py` / `export.py`. Run `python -m apps.nlp.sentiment.train --help`.
"""
