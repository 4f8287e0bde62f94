"""Running code the user named (a model file, a factory, its forward pass), contained.

cnnscope runs user code only when the user names it (``net.py:build``,
``pkg.mod:build``), and then contains it:

- whatever it prints goes to stderr, never into stdout, at the Python level
  (``print``) and at the file-descriptor level (C extensions, ``os.write(1, ...)``),
  so ``--format json`` stays valid JSON;
- ``sys.exit()``, a ``KeyboardInterrupt`` it raises as a value, or any other
  ``BaseException`` becomes a one-line ``ModelLoadError`` naming the code, so a model
  file cannot end the process with the exit code of its choice (a gate that exits 0).

A real Ctrl-C is told apart from a ``KeyboardInterrupt`` raised by code through
``interrupts_marked``: while it is active (every CLI command), the SIGINT handler notes
that the signal came before raising. Outside it (the Python API), a KeyboardInterrupt is
taken as real.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

import cnnscope.patches as patches
from cnnscope.errors import CnnscopeError, ModelLoadError

_state = {"active": 0, "signalled": False}


def _on_sigint(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    _state["signalled"] = True
    raise KeyboardInterrupt


@contextmanager
def interrupts_marked() -> Iterator[None]:
    """Within: a real Ctrl-C is recorded before its KeyboardInterrupt is raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _SIGINT_MARKED:
        _state["active"] += 1
        _state["signalled"] = False
        try:
            yield
        finally:
            _state["active"] -= 1


def _mark_sigint() -> object:
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, _on_sigint)
    return previous


_SIGINT_MARKED = patches.scoped("sigint-marked", install=_mark_sigint,
                                remove=lambda previous: signal.signal(signal.SIGINT, previous),
                                observe=lambda: signal.getsignal(signal.SIGINT))


def real_interrupt() -> bool:
    """Was the KeyboardInterrupt being handled a Ctrl-C (not one raised by code)?"""
    return _state["signalled"] or not _state["active"]


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (Python and fd 1) to stderr until exit."""
    with _STDOUT_TO_STDERR:
        yield


def _fd1_to_stderr() -> int | None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    saved_fd = None
    try:
        os.fstat(2)
        saved_fd = os.dup(1)  # EBADF when stdout is closed: then there is nothing to guard
        os.dup2(2, 1)
    except OSError:
        if saved_fd is not None:
            os.close(saved_fd)
        saved_fd = None
    return saved_fd


def _fd1_back(saved_fd: int | None) -> None:
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if saved_fd is not None:
        os.dup2(saved_fd, 1)
        os.close(saved_fd)


# The fd is redirected first and put back last, around the swap of sys.stdout.
_STDOUT_TO_STDERR = patches.scoped(
    "stdout-to-stderr", lambda: [patches.Swap(sys, "stdout", lambda below: sys.stderr)],
    install=_fd1_to_stderr, remove=_fd1_back)


@contextmanager
def user_code(label: str) -> Iterator[None]:
    """Run the user's code named ``label`` (e.g. "model file 'net.py'"), contained.

    Exceptions (``Exception``) pass through for the caller to word; exits, interrupts
    raised as values and other ``BaseException``s become a ``ModelLoadError``.
    """
    with stdout_to_stderr():
        try:
            yield
        except (CnnscopeError, Exception):
            raise
        except KeyboardInterrupt:
            if real_interrupt():
                raise
            raise ModelLoadError(f"{label} raised KeyboardInterrupt",
                                 "model code must not raise KeyboardInterrupt itself") from None
        except SystemExit as exc:
            raise ModelLoadError(f"{label} called sys.exit({exc.code!r})",
                                 "model code must return or raise, not exit the process") from None
        except BaseException as exc:  # noqa: BLE001 - GeneratorExit, custom BaseExceptions
            text = str(exc).strip().splitlines()
            raise ModelLoadError(f"{label} raised {type(exc).__name__}"
                                 f"{': ' + text[0] if text else ''}",
                                 "model code must raise an Exception, not a BaseException") from None
