"""The nightly history: a SQLite database over runs (db.py), series and their change
points (series.py, steps.py), a text summary that gates (show.py) and a static
dashboard (dashboard.py).

From Python: ``harness.history.load("history.sqlite")`` returns the tables as pandas
DataFrames (``runs``, ``results``, ``points``, ``records``, ``windows``).
"""

from harness.history.db import History, load
from harness.history.imports import add

__all__ = ["History", "add", "load"]
