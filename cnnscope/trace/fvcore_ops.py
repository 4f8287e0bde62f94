"""fvcore's operator keys that are multiply-accumulates (cnnscope's MACs).

One table for the counter (``fvcore_counter``, which imports torch) and the side-by-side
check (``cnnscope.analysis.fvcore_check``, which imports no torch).
"""

MAC_OPERATORS = frozenset({"conv", "linear", "addmm", "matmul", "bmm", "einsum", "mm",
                           "conv_transpose", "baddbmm"})
