"""The number formats renderers use; they live in ``cnnscope.units`` (base layer), so that
analysis can word a message with them too."""

from cnnscope.units import bytes_h, human, shape, thousands  # noqa: F401
