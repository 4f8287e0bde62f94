"""The op registry: one entry per group of ops, a module per family (see ``registry``)."""
