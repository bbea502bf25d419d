"""Speech command recognition (keyword spotting): raw 16 kHz audio -> keyword / _silence_ / _unknown_.

    make train-speech                                    # synthetic eSpeak NG + SVOX Pico speech, ~6-10 min on 2 cores
    python -m apps.speech.evaluate --run-dir runs/speech
    python -m apps.speech.predict --run-dir runs/speech clip.wav
    python -m apps.speech.export --run-dir runs/speech
    python -m apps.speech.train --config fsdd --run-dir runs/fsdd      # real spoken digits
    python -m apps.speech.loso --run-root runs/fsdd_loso               # FSDD leave-one-speaker-out

Files: config.py (presets), synth.py (offline data), pico.py (the second engine), data.py (sources, augmentation pipeline),
features.py (log-mel/MFCC + SpecAugment layers), model.py (CRNN, attention RNN, streaming),
train.py, evaluate.py, predict.py, export.py, loso.py.
"""
