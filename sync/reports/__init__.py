"""Evidence from recorded history: terminations, drift and operator reports.

Pure queries over the database (never the HRIS or the LMS) and pure summaries, so that
the same period over the same database always gives the same report; renderers turn a
report into CSV, JSON or one self-contained HTML file with inline SVG charts.
"""

from rostersync.sync.reports.period import Period, PeriodError, parse_period

__all__ = ["Period", "PeriodError", "parse_period"]
