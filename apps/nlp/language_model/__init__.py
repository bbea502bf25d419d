"""Word-level language modelling and text generation (WikiText-2, any UTF-8 text, a generated corpus)."""
