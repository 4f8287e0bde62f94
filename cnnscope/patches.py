"""Every change cnnscope makes to torch, the standard library or the process: named, scoped, listed.

cnnscope swaps a few functions of torch and the standard library for the span of a build
or a trace (the meta-build shortcuts, one-op attention, refusing downloads, user code's
stdout), sets a few torch flags for a timed row, and makes a few changes that last as long
as the process (an op library, torch's dynamo cache, the CLI's direct exit). All of them
are made here, or through here, so that one list says what is patched, for how long and
why (``PATCHES``; ``docs/architecture.md`` shows it as a table, made by ``markdown_table``).

Three kinds of change, one lock (re-entrant) for all of them:

- **scoped** (``scoped``): installed when the first user enters, restored when the last
  one leaves (nested or in other threads: a count under the lock), also when the body
  raises. Attribute swaps (``Swap``) are layered per attribute: when two patches replace
  the same attribute (``torch.nn.init`` by the meta-build shortcuts and by ``skip_init``),
  the value is always the original wrapped by the patches still active, in the order they
  were installed, so they may be entered and left in any order; when the last one leaves,
  the very same original object is back.
- **settings** (``setting``): a flag set to a value for a span (``cudnn.benchmark``,
  TF32, torch's threads), the previous value put back afterwards (nested uses unwind in
  order).
- **process** (``once``, ``for_process``, ``exit_now``): changes that are never undone.

This module imports nothing heavy: the patched objects are named by the modules that
implement each patch, when they are installed.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, NoReturn, Sequence

# The scopes, as the docs table words them.
BUILD = "while a model is built"
META_BUILD = "while a model is built on meta"
CPU_BUILD = "while a model is built on the CPU without initialisation"
TRACE = "while a model is traced"
DETECTION_TRACE = "while a torchvision detection model is traced"
BUILD_OR_TRACE = "while a model is built or traced, and while a bench row is timed"
USER_CODE = "while user code runs"
COMMAND = "while a CLI command runs"
ROW = "while a bench row runs"
LAUNCH = "while the DDP launcher runs"
PLOT = "while matplotlib is imported"
PROCESS = "for the process"


@dataclass(frozen=True)
class Patch:
    """One change cnnscope makes outside its own objects."""

    name: str
    what: str    # what is replaced or changed (Markdown)
    scope: str   # for how long (one of the scopes above)
    why: str     # the reason, in a sentence
    where: str   # the code that makes it (Markdown)


PATCHES: tuple[Patch, ...] = (
    Patch("meta-build-shortcuts",
          "`torch.nn.init.*_`, `nn.Module.__setattr__`, torch layers' `reset_parameters` "
          "and `reset_running_stats`", META_BUILD,
          "a meta tensor has no values to initialise, and a plain attribute (a stride) needs "
          "none of `__setattr__`'s checks: a third of a build each; real tensors still get "
          "the full work", "`trace.meta.building_on(\"meta\")`"),
    Patch("skip-init", "`torch.nn.init.*_`, torch layers' `reset_*`", CPU_BUILD,
          "builders that compute while building (RegNets) are built on the CPU, then moved "
          "to meta: their values are never read", "`build.skip_init`"),
    Patch("no-downloads",
          "`torch.hub.download_url_to_file`, `torch.hub.load_state_dict_from_url`, "
          "`urllib.request.urlopen`, `socket.getaddrinfo`, `socket.socket.connect`, "
          "`socket.socket.connect_ex`", BUILD,
          "a build never reaches the network: a one-line error names what tried",
          "`build.no_downloads`"),
    Patch("one-op-attention", "`torch.nn.functional.scaled_dot_product_attention`", TRACE,
          "attention is one record, the same on every device (and one meta op instead of 16 "
          "slow ones)", "`trace.attention.one_op_attention`"),
    Patch("detection-caps",
          "`torchvision.ops.boxes.batched_nms`, `nms`, `remove_small_boxes`", DETECTION_TRACE,
          "a detection model keeps every candidate up to its caps, so its cost does not "
          "depend on random weights (not with `--detections data`)",
          "`thirdparty.detection_caps`"),
    Patch("gc-paused", "the cyclic garbage collector (`gc.disable`)", BUILD_OR_TRACE,
          "each collection rescans the tens of thousands of objects a build or trace makes "
          "(15% of a zoo trace); in a timed row it would land in one sample",
          "`trace.meta.paused_gc`, `benchmark.runner.no_gc`"),
    Patch("stdout-to-stderr", "`sys.stdout`, file descriptor 1", USER_CODE,
          "what user code prints cannot get into stdout (`--format json` stays JSON)",
          "`usercode.stdout_to_stderr`"),
    Patch("sigint-marked", "the SIGINT handler (main thread)", COMMAND,
          "a real Ctrl-C is told apart from a `KeyboardInterrupt` raised by model code",
          "`usercode.interrupts_marked`"),
    Patch("mplbackend-hidden", "the `MPLBACKEND` environment variable", PLOT,
          "matplotlib raises on a backend name it does not know; cnnscope draws files with "
          "Agg", "`report.plot.file_matplotlib`"),
    Patch("cudnn-benchmark", "`torch.backends.cudnn.benchmark`", ROW,
          "`--cudnn-benchmark` (autotuned convolution algorithms) for the rows that ask",
          "`benchmark.runner`"),
    Patch("tf32", "`torch.backends.cuda.matmul` and `torch.backends.cudnn` TF32 flags "
          "(`fp32_precision` or `allow_tf32`)", ROW,
          "TF32 on for `tf32` rows and off for every other dtype, whatever was set before",
          "`benchmark.precision.tf32_flags`"),
    Patch("torch-threads", "torch's intra-op threads (`torch.set_num_threads`)", ROW,
          "`--threads`: the row is timed with the threads it names", "`benchmark.runner.torch_threads`"),
    Patch("launcher-log", "file descriptor 2, pointed at the rank-log folder's `launcher.log`",
          LAUNCH, "the launcher's warnings and what a rank writes before its own redirection "
          "stay with the rank logs; cnnscope's one line follows after", "`benchmark.ddp.launch`"),
    Patch("launcher-signals", "the SIGINT, SIGTERM, SIGHUP and SIGQUIT handlers", LAUNCH,
          "torch's launcher installs its own and never removes them: the previous ones are "
          "put back", "`benchmark.ddp`"),
    Patch("objects-aged", "the garbage collector's generations (`gc.freeze`, `gc.unfreeze`)",
          PROCESS, "objects made while the collector was paused move to the oldest generation: "
          "resuming it would otherwise scan them all at once (14 ms after ResNet-152's trace)",
          "`gc-paused`, when it ends"),
    Patch("cnnscope-op-library", "a `torch.library` namespace `cnnscope` with one op, "
          "`cnnscope::scaled_dot_product_attention`", PROCESS,
          "attention on meta as one op with a shape-only kernel; torch cannot drop an op "
          "while its handle is used", "`trace.attention`, on the first attention traced"),
    Patch("dynamo-cache", "the `__dynamo_disable` cache of the tracer's dispatch functions",
          PROCESS, "the first traced op would import `torch._dynamo` (1.5 s) only to mark "
          "them as not to compile; left alone when `torch._dynamo` is loaded",
          "`fill_dynamo_cache`, when `trace` is imported"),
    Patch("rank-threads", "torch's intra-op threads (`torch.set_num_threads`)", PROCESS,
          "a CPU DDP rank uses its share of the cores", "`benchmark.ddp_rank`"),
    Patch("no-color", "the `NO_COLOR` environment variable", PROCESS,
          "`--no-color`: the console that renders tables reads it", "`cli.main`"),
    Patch("stdout-devnull", "file descriptor 1, pointed at `/dev/null`", PROCESS,
          "stdout's reader went away (`| head`) or a write failed: the flush at exit must "
          "not fail again (nothing more can reach the reader anyway)",
          "`cli.common.write_stdout`"),
    Patch("direct-exit", "the interpreter's teardown (`os._exit`)", PROCESS,
          "freeing every module after the output is written costs 0.4 s with torch loaded; "
          "atexit handlers run and streams are flushed first", "`exit_now`, from `cli.main.run`"),
)

_BY_NAME = {p.name: p for p in PATCHES}

# One lock for every patch: installing, removing and counting users happen under it, so a
# thread never sees half of a patch, and two patches of the same attribute compose.
_LOCK = threading.RLock()
_MISSING = object()


def describe(name: str) -> Patch:
    """The description of the patch ``name`` (KeyError names the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no patch named {name!r}; known: {', '.join(_BY_NAME)}") from None


# ---------------------------------------------------------------------- scoped patches


class Swap(NamedTuple):
    """``owner.attr`` replaced by ``make(previous)``, ``previous`` being the value below it
    (the original, or what an earlier active patch of the same attribute made of it)."""

    owner: Any
    attr: str
    make: Callable[[Any], Any]


class _Layers:
    """One patchable attribute: its original and the active patches' swaps, oldest first.

    Kept for the process once made (a few dozen), so that installing a patch on the
    build path costs little more than its ``setattr`` calls.
    """

    __slots__ = ("owner", "attr", "original", "base", "swaps")

    def __init__(self, owner: Any, attr: str):
        self.owner, self.attr = owner, attr
        self.original: Any = _MISSING
        self.base: Any = None
        self.swaps: list[tuple[ScopedPatch, Callable[[Any], Any]]] = []

    def push(self, patch: "ScopedPatch", make: Callable[[Any], Any]) -> None:
        if not self.swaps:
            # The object itself as stored (a class's own function, not a bound method), or
            # _MISSING when the attribute is inherited: then it is deleted at the end.
            self.original = vars(self.owner).get(self.attr, _MISSING)
            self.base = (self.original if self.original is not _MISSING
                         else getattr(self.owner, self.attr))
            self.swaps.append((patch, make))
            setattr(self.owner, self.attr, make(self.base))
            return
        self.swaps.append((patch, make))
        self._compose()

    def pop(self, patch: "ScopedPatch") -> None:
        if len(self.swaps) == 1 and self.swaps[0][0] is patch:
            self.swaps.clear()
        else:
            self.swaps = [s for s in self.swaps if s[0] is not patch]
        if self.swaps:
            self._compose()  # the patches still active, without this one
        elif self.original is _MISSING:
            delattr(self.owner, self.attr)
        else:
            setattr(self.owner, self.attr, self.original)
        if not self.swaps:
            self.original = self.base = _MISSING  # hold no reference once restored

    def _compose(self) -> None:
        value = self.base
        for _, make in self.swaps:
            value = make(value)
        setattr(self.owner, self.attr, value)


_LAYERS: dict[tuple[int, str], _Layers] = {}
_IMPLEMENTED: dict[str, "ScopedPatch | Setting"] = {}


class ScopedPatch:
    """A named patch as a re-entrant context manager: ``with PATCH: ...``.

    ``swaps`` (a list of ``Swap``, or a function returning one, called at the first
    install so that heavy modules are imported only then) are installed by the first user
    and removed by the last; ``install()`` and ``remove(state)`` do what is not an
    attribute swap (a file descriptor, the collector), ``install``'s result passed to
    ``remove``. ``observe()``, when given, returns what the patch changes that is not an
    attribute (the tests compare it before, inside and after).
    """

    def __init__(self, name: str, swaps: Sequence[Swap] | Callable[[], Sequence[Swap]] = (),
                 install: Callable[[], Any] | None = None,
                 remove: Callable[[Any], None] | None = None,
                 observe: Callable[[], Any] | None = None):
        self.patch = describe(name)
        if self.patch.scope == PROCESS:
            raise ValueError(f"patch {name!r} is for the process: use once or for_process")
        self.name = name
        self._swaps = swaps
        self._install, self._remove, self.observe = install, remove, observe
        self.users = 0
        self._state: Any = None
        self._installed = False
        self._resolved: list[tuple[_Layers, Callable[[Any], Any]]] | None = None
        self._done: list[_Layers] = []

    def swaps(self) -> list[Swap]:
        """The swaps this patch makes."""
        return list(self._swaps() if callable(self._swaps) else self._swaps)

    def __enter__(self) -> None:
        with _LOCK:
            if self.users == 0:
                self._apply()
            self.users += 1

    def __exit__(self, *exc: Any) -> None:
        with _LOCK:
            self.users -= 1
            if self.users == 0:
                self._unapply()

    def _apply(self) -> None:
        self._done = []
        self._state = self._install() if self._install is not None else None
        self._installed = True
        try:
            if self._resolved is None:
                self._resolved = [(_layers(s.owner, s.attr), s.make) for s in self.swaps()]
            for layers, make in self._resolved:
                self._done.append(layers)
                layers.push(self, make)
        except BaseException:
            self._unapply()  # nothing half-installed
            raise

    def _unapply(self) -> None:
        try:
            for layers in reversed(self._done):
                if any(p is self for p, _ in layers.swaps):
                    layers.pop(self)
        finally:
            self._done = []
            if self._installed and self._remove is not None:
                state, self._state = self._state, None
                self._remove(state)
            self._installed = False


def _layers(owner: Any, attr: str) -> _Layers:
    key = (id(owner), attr)
    layers = _LAYERS.get(key)
    if layers is None or layers.owner is not owner:
        layers = _LAYERS[key] = _Layers(owner, attr)
    return layers


def scoped(name: str, swaps: Sequence[Swap] | Callable[[], Sequence[Swap]] = (),
           install: Callable[[], Any] | None = None, remove: Callable[[Any], None] | None = None,
           observe: Callable[[], Any] | None = None) -> ScopedPatch:
    """The implementation of the listed patch ``name`` (see ``ScopedPatch``); one per name."""
    patch = ScopedPatch(name, swaps, install, remove, observe)
    _implement(name, patch)
    return patch


def _implement(name: str, patch: "ScopedPatch | Setting") -> None:
    with _LOCK:
        if name in _IMPLEMENTED:  # two modules claiming one name: one of them is unlisted
            raise RuntimeError(f"patch {name!r} is implemented twice")
        _IMPLEMENTED[name] = patch


def implemented() -> dict[str, "ScopedPatch | Setting"]:
    """The scoped patches and settings implemented by the modules imported so far, by name."""
    with _LOCK:
        return dict(_IMPLEMENTED)


# ---------------------------------------------------------------------- settings


class Setting:
    """A listed flag set to a value for a span: ``with SETTING(value): ...``.

    ``save()`` returns the current state, ``apply(value)`` sets the value, ``restore(state)``
    puts a saved state back (``apply`` when not given). Nested uses unwind in order.
    """

    def __init__(self, name: str, save: Callable[[], Any], apply: Callable[[Any], None],
                 restore: Callable[[Any], None] | None = None):
        self.patch = describe(name)
        if self.patch.scope == PROCESS:
            raise ValueError(f"patch {name!r} is for the process: use once or for_process")
        self.name = name
        self.save, self.apply = save, apply
        self.restore = restore if restore is not None else apply

    def __call__(self, value: Any) -> "_SettingScope":
        return _SettingScope(self, value)


class _SettingScope:
    __slots__ = ("setting", "value", "saved")

    def __init__(self, setting: Setting, value: Any):
        self.setting, self.value = setting, value

    def __enter__(self) -> None:
        with _LOCK:
            self.saved = self.setting.save()
            self.setting.apply(self.value)

    def __exit__(self, *exc: Any) -> None:
        with _LOCK:
            self.setting.restore(self.saved)


def setting(name: str, save: Callable[[], Any], apply: Callable[[Any], None],
            restore: Callable[[Any], None] | None = None) -> Setting:
    """The implementation of the listed setting ``name`` (see ``Setting``)."""
    flag = Setting(name, save, apply, restore)
    _implement(name, flag)
    return flag


# ---------------------------------------------------------------------- for the process

_DONE: dict[str, Any] = {}


def once(name: str, change: Callable[[], Any]) -> Any:
    """Make the process-long change ``name`` (``change()``) the first time; its result."""
    if name in _DONE:
        return _DONE[name]
    with _LOCK:
        if name not in _DONE:
            if describe(name).scope != PROCESS:
                raise ValueError(f"patch {name!r} is scoped: use scoped")
            _DONE[name] = change()
        return _DONE[name]


def for_process(name: str, change: Callable[..., Any], *args: Any) -> Any:
    """Make the process-long change ``name``: ``change(*args)`` under the lock, each call."""
    if describe(name).scope != PROCESS:
        raise ValueError(f"patch {name!r} is scoped: use scoped")
    with _LOCK:
        _DONE.setdefault(name, None)
        return change(*args)


def made_for_process() -> list[str]:
    """The process-long changes made so far, by name."""
    return sorted(_DONE)


def fill_dynamo_cache(mode: type) -> None:
    """Spare the first traced op a 1.5 s ``import torch._dynamo`` ("dynamo-cache").

    TorchDispatchMode wraps every subclass's ``__torch_dispatch__`` in
    ``torch._disable_dynamo``, whose first call imports torch._dynamo only to mark the
    function as not to be compiled. The tracer never runs under torch.compile, so the
    wrapper's cache is filled with the plain function. If torch._dynamo is already
    loaded (someone is compiling), the wrapper is left to do its normal job.
    """
    if "torch._dynamo" in sys.modules:
        return
    raw = getattr(mode.__dict__.get("__torch_dispatch__"), "__wrapped__", None)
    if raw is not None and getattr(raw, "__dynamo_disable", None) is None:
        for_process("dynamo-cache", setattr, raw, "__dynamo_disable", raw)


def set_environ(name: str, variable: str, value: str) -> None:
    """Set the environment variable ``variable`` for the process (the listed change ``name``)."""
    for_process(name, os.environ.__setitem__, variable, value)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` without the interpreter's teardown ("direct-exit").

    What a normal exit guarantees is done first: atexit handlers run and stdout/stderr
    are flushed (a reader gone, a full disk or a closed stream is ignored).
    """
    import atexit

    _DONE.setdefault("direct-exit", None)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # reader gone (| head), disk full, or stream closed
            pass
    os._exit(code)


# ---------------------------------------------------------------------- the docs table

BEGIN = "<!-- patches:begin -->"
END = "<!-- patches:end -->"
DOCS_PAGE = "docs/architecture.md"
REGENERATE = "python -m cnnscope.patches docs/architecture.md"


def markdown_table(patches: Iterable[Patch] = PATCHES) -> str:
    """The Markdown table of ``patches``: name, what, scope, why, where (no trailing newline)."""
    rows = ["| patch | changes | scope | why | made by |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| `{p.name}` | {p.what} | {p.scope} | {p.why} | {p.where} |" for p in patches]
    return "\n".join(rows)


def with_table(page: str) -> str:
    """``page`` with the text between the patches markers replaced by ``markdown_table()``."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no {BEGIN} ... {END} markers")
    return page[:start + len(BEGIN)] + "\n" + markdown_table() + "\n" + page[end:]


if __name__ == "__main__":  # python -m cnnscope.patches docs/architecture.md
    for path in sys.argv[1:] or [DOCS_PAGE]:
        with open(path, encoding="utf-8") as f:
            page = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(with_table(page))
        print(f"{path}: the patches table is written")
