"""Free text made safe to print: the one function every renderer and the error printer use.

Layer names come from a model, a lock's layer names and version from a file, a cache's
timestamps and device name from disk: none of them is cnnscope's to trust. Printed raw, an
escape sequence can retitle or clear the terminal, a right-to-left override reorders what
a reviewer reads, a newline breaks a Markdown row. ``printable`` turns every such
character into a visible escape (``\\x1b``, ``\\u202e``) before text reaches a table, a
footer, Markdown or stderr. JSON keeps the exact string (JSON escapes it itself); CSV
keeps it too, with a spreadsheet's formula characters guarded (``csv_text``).
"""

from __future__ import annotations

import re
import unicodedata

# Categories escaped: Cc (C0 and C1 controls, DEL), Cf (format characters: bidi
# embeddings, overrides, isolates and marks, zero-width spaces and joiners, the BOM,
# soft hyphen), Zl and Zp (line and paragraph separators), Cs (lone surrogates).
_ESCAPED = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))
# Printable ASCII and the usual Latin-1 letters: nothing to look up (the fast path).
_SAFE = re.compile(r"[\x20-\x7e\u00a0-\u00ac\u00ae-\u00ff]*")


def _escape(ch: str) -> str:
    n = ord(ch)
    if n <= 0xFF:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n <= 0xFFFF else f"\\U{n:08x}"


def printable(text: str) -> str:
    """``text`` with every control, format, separator and surrogate character written as
    a visible escape; anything else (letters of any script, symbols, emoji) unchanged."""
    if not isinstance(text, str):
        text = str(text)
    if _SAFE.fullmatch(text):
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _ESCAPED else ch for ch in text)


# OWASP's CSV injection advice: a text cell starting with one of these is read as a
# formula by a spreadsheet; a leading apostrophe makes it text again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_text(value):
    """A CSV cell: text that a spreadsheet would run as a formula gets a leading ``'``;
    numbers (also a number written as text, such as ``-5``), a lone ``-`` (a missing
    value) and other text unchanged."""
    if isinstance(value, str) and len(value) > 1 and value.startswith(_FORMULA_START) \
            and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
