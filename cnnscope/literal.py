"""Python literal text (``--arg`` values, a lock's ``args``) read without deep recursion.

``ast.literal_eval`` recurses once per nesting level, in C while parsing and in Python
while converting, so 4000 unary minus signs (well within a lock's 4096-character limit)
raise ``RecursionError`` instead of a one-line refusal. Here the tree is parsed with those
errors caught and its depth measured with an explicit stack before anything is converted.
"""

from __future__ import annotations

import ast
from typing import Any

MAX_DEPTH = 100  # a kwargs value nested deeper than this is not a model setting


class NotALiteral(ValueError):
    """The text is not a Python literal, or nests deeper than ``MAX_DEPTH``."""


def literal(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """The value of the literal ``text``; ``NotALiteral`` for anything else."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise NotALiteral(f"not a Python literal ({type(exc).__name__})") from None
    stack = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise NotALiteral(f"nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    try:
        return ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:
        raise NotALiteral(f"not a Python literal ({type(exc).__name__})") from None
