"""Sequence-to-sequence translation: BPE subwords, BiLSTM/GRU encoder, attention decoder.

    make train-translate                      # offline synthetic English→Spanish demo (~10 min CPU)
    python -m apps.nlp.translation.train --config anki-cpu --run-dir runs/translate-anki
    python -m apps.nlp.translation.evaluate --run-dir runs/translate          # BLEU / chrF
    python -m apps.nlp.translate "Where is the station?" --run-dir runs/translate
    python -m apps.nlp.translation.export --run-dir runs/translate            # string SavedModel

Modules: config (presets), synthetic (demo data generator), data (sources, split, batches),
tokenizer (BPE), model (named layers → training / encoder / decoder-step models), decode
(greedy + beam search, Translator), train, evaluate, translate, export.
"""
