"""Tracing: one forward pass -> one record per layer (see tracer.py, formulas.py)."""

from cnnscope.trace.records import CONVENTION, LayerRecord, ModelReport, Totals  # noqa: F401
