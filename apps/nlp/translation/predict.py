"""The translation app's predict command under the name every app shares: see translate.py."""

from apps.nlp.translation.translate import main

if __name__ == "__main__":
    raise SystemExit(main())
