"""The op registry: what cnnscope knows about each op, one module per op family."""
