"""One error hierarchy for everything a user can get wrong.

Library code raises these; the CLI turns each into a single line on stderr and
exit code 2 (see ``cnnscope.cli.common.fail``). Anything that is not a
``CnnscopeError`` is a bug in cnnscope and keeps its traceback.
"""

from __future__ import annotations


class CnnscopeError(Exception):
    """Base class: ``str(err)`` says what is wrong, ``hint`` what to do about it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UnknownModelError(CnnscopeError):
    """A model name that is not in the zoo."""


class RegistryError(CnnscopeError):
    """A model registered twice or with bad metadata (a programming error in a zoo file)."""


class InvalidInputSizeError(CnnscopeError):
    """A malformed ``--input`` value or batch size."""


class InputTooSmallError(CnnscopeError):
    """The input shrinks below one pixel somewhere in the network."""

    def __init__(self, message: str, hint: str | None = None, *, layer: str | None = None,
                 min_size: int | None = None):
        super().__init__(message, hint)
        self.layer = layer
        self.min_size = min_size


class DeviceUnavailableError(CnnscopeError):
    """``--device cuda`` on a machine without CUDA, or an unknown device string."""


class InvalidOptionError(CnnscopeError):
    """An option value that does not make sense (bad format, bad dtype, ...)."""


class UserFileError(CnnscopeError):
    """A file the user named is missing, unreadable, or not what it should be."""


class SpecRefusedError(UserFileError):
    """A model spec read from data (a lock file) that names what data may not name: an
    attribute chain, a dunder, or something not defined in the file or module named."""


class ModelLoadError(CnnscopeError):
    """A user model (``file.py:factory``, ``pkg.mod:factory``) could not be loaded."""


class TraceError(CnnscopeError):
    """The model's forward pass failed for a reason that is the input's or the model's."""


class FormulaError(TraceError):
    """A user's cost formula (``register_formula``) returned something that is not a count."""


class DistributedError(CnnscopeError):
    """A distributed run (``bench --ddp``) that could not start or lost a rank. Not the
    user's input: exit code 1, like a failed row."""

    exit_code = 1


class DataDependentError(TraceError):
    """An op whose output shape depends on tensor values (``nonzero``, NMS) ran on meta.

    The meta device has shapes but no values; ``cnnscope.analyze`` catches this and traces
    again on the CPU with random weights.
    """

    def __init__(self, message: str, hint: str | None = None, *, op: str = "?"):
        super().__init__(message, hint)
        self.op = op


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) that arrived while torch's launcher
    held the signal handlers (``bench --ddp``): the command exits 128 + its number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type name when it has none): what a
    one-line error or an error cell shows of a failure in someone else's code."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
