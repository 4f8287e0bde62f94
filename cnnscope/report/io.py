"""The renderers' import path for writing output: see ``cnnscope.fileio``.

The writers live at the bottom of the package (next to ``errors``) so that a record
(``ModelReport.to_csv(path)``) can write a file without importing the report layer.
"""

import os  # noqa: F401 - tests patch os.replace through this module

from cnnscope.fileio import (  # noqa: F401 - re-exported
    finite_or_none,
    strict_json,
    write_bytes_atomic,
    write_error,
    write_text_atomic,
)
