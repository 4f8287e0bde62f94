"""cnnscope: architecture analyzer and profiler for convolutional networks.

The Python API mirrors the CLI: ``analyze`` traces a model into per-layer records.
"""

__version__ = "0.1.0"

from cnnscope.api import analyze, smallest_input  # noqa: E402,F401
from cnnscope.errors import CnnscopeError  # noqa: E402,F401
