"""Time-series forecasting: SegRNN and LSTM/GRU forecasters beside naive, seasonal-naive and DLinear baselines.

    python -m apps.timeseries.train --config default --run-dir runs/forecast     # CO2 (statsmodels), offline
    python -m apps.timeseries.evaluate --run-dir runs/forecast
    python -m apps.timeseries.forecast --run-dir runs/forecast --horizon 104
    python -m apps.timeseries.export --run-dir runs/forecast
"""
