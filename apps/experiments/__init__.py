"""Runnable checks of the LSTM literature's claims: long-time-lag tasks, cell comparison, gradient flow."""
