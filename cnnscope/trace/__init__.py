"""Tracing: one forward pass -> one record per layer (see tracer.py; what is known of each op: ops.py)."""

from cnnscope.trace.records import CONVENTION, LayerRecord, ModelReport, Totals  # noqa: F401
