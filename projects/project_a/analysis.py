"""A tiny analysis the project_a notebook server can import: summary statistics with pandas."""

import pandas as pd


def summary(values):
    """Mean, minimum and maximum of a list of numbers."""
    series = pd.Series(values)
    return {"mean": float(series.mean()), "min": float(series.min()), "max": float(series.max())}
