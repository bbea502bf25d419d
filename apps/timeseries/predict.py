"""The forecasting app's predict command under the name every app shares: see forecast.py."""

from apps.timeseries.forecast import main

if __name__ == "__main__":
    raise SystemExit(main())
