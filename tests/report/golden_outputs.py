"""Capture every command's output over a matrix of formats and page widths, or diff two captures.

Not a test: a tool for refactoring the renderers without changing a byte of output.

    python tests/report/golden_outputs.py save DIR     # run the matrix, one file per case
    python tests/report/golden_outputs.py diff OLD NEW # list the cases that differ

To capture main's outputs, run it with main's tree first on the path:
``git archive main | tar -x -C /tmp/main; PYTHONPATH=/tmp/main python ... save DIR``.

Each command runs in-process (``cnnscope.cli.main.main``) with stdout either a pipe-like
buffer (plain tables) or one that says it is a terminal (boxed tables, colours), at
COLUMNS=80 and 200. Bench timings vary from run to run, so bench outputs are compared by
shape: every number becomes ``#`` and runs of spaces collapse.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path

MODELS = ["lenet5", "resnet18", "googlenet"]
BENCH = ["bench", "lenet5", "--device", "cpu", "--per-layer", "-n", "3", "--warmup", "1",
         "--max-warmup", "2", "--no-ceiling", "--no-progress"]


def commands(tmp: Path) -> dict[str, list[str]]:
    cases = {f"params_{m}": ["params", m] for m in MODELS}
    cases.update({
        "summary_resnet18_depth1": ["summary", "resnet18", "--depth", "1"],
        "summary_googlenet_depth2": ["summary", "googlenet", "--depth", "2"],
        "summary_lenet5_train": ["summary", "lenet5", "--train"],
        "summary_lenet5_fvcore": ["summary", "lenet5", "--counter", "fvcore"],
        "summary_resnet18_fvcore_depth1": ["summary", "resnet18", "--counter", "fvcore", "--depth", "1"],
        "compare_vgg16_googlenet": ["compare", "vgg16", "googlenet"],
        "compare_five": ["compare", "lenet5", "alexnet", "resnet18", "googlenet", "mobilenet_v2"],
        "summary_lenet5_fvcore_train": ["summary", "lenet5", "--counter", "fvcore", "--train"],
        "rf_googlenet": ["rf", "googlenet"],
        "rf_resnet18": ["rf", "resnet18"],
        "shape_resnet18": ["shape", "resnet18"],
        "shape_unet_near": ["shape", "unet", "--near", "500"],
        "spec_googlenet": ["spec", "googlenet"],
        "spec_resnet": ["spec", "resnet"],
        "spec_densenet": ["spec", "densenet"],
        "zoo_resnet": ["zoo", "resnet*"],
        "zoo_nocounts": ["zoo", "--no-counts"],
        "memory_resnet18": ["memory", "resnet18"],
        "memory_resnet18_depth2_top3": ["memory", "resnet18", "--depth", "2", "--top", "3"],
        "check_ok": ["check", str(tmp / "ok.lock.json")],
        "check_drift": ["check", str(tmp / "drift.lock.json")],
        "bench_lenet5": BENCH,
        "bench_lenet5_top2": BENCH + ["--top", "2"],
    })
    return cases


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(argv: list[str], terminal: bool = False) -> str:
    from cnnscope.cli.main import main

    out, err = (_Terminal() if terminal else io.StringIO()), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return f"exit {code}\n--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}"


def make_locks(tmp: Path) -> None:
    run(["snapshot", "lenet5", "resnet18", "-o", str(tmp / "ok.lock.json")])
    text = json.dumps(json.loads((tmp / "ok.lock.json").read_text()))
    # drift: the first recorded MACs gain a leading 1 (1,327,256 for LeNet-5's 327,256)
    (tmp / "drift.lock.json").write_text(text.replace('"macs": ', '"macs": 1', 1))


def bench_shape(key: str, text: str) -> str:
    """What of a bench output does not depend on the timings: the CSV header and row
    count, the JSON keys, the words of tables and Markdown (narrow tables: nothing, their
    column cuts move with the numbers' widths)."""
    lines = text.splitlines()
    if key == "csv":
        return "\n".join(lines[:3]) + f"\n{len(lines)} lines\n"
    if key == "json":
        body = text.split("--- stdout\n", 1)[1].split("--- stderr", 1)[0]
        return json.dumps(_skeleton(json.loads(body)), indent=1)
    if key.endswith("80"):
        return ""
    words = set(re.findall(r"[A-Za-z][A-Za-z/_]{3,}", re.sub(r"\x1b\[[\d;]*m", "", text)))
    # the warm-up warning comes and goes with the timings
    return " ".join(sorted(words - {"settle", "settled", "within", "windows", "differ"}))


def _skeleton(data):
    if isinstance(data, dict):
        return {k: _skeleton(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_skeleton(data[0])] if data else []
    return type(data).__name__


def save(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.pop("NO_COLOR", None)
    os.environ["TERM"] = "xterm-256color"
    os.environ.pop("COLORTERM", None)
    tmp = Path(tempfile.mkdtemp(prefix="golden-"))
    make_locks(tmp)
    only = os.environ.get("GOLDEN_ONLY")
    for name, argv in commands(tmp).items():
        if only and not re.search(only, name):
            continue
        variants = {}
        for fmt in ("csv", "json", "md"):
            variants[fmt] = run(argv + ["-f", fmt])
        for cols in ("80", "200"):
            os.environ["COLUMNS"] = cols
            variants[f"table{cols}"] = run(argv)
            variants[f"tty{cols}"] = run(argv, terminal=True)
            variants[f"wide{cols}"] = run(argv + ["--wide"]) if "--wide" in _help(argv[0]) else ""
        os.environ.pop("COLUMNS", None)
        out_file = tmp / f"{name}.txt"
        variants["file_txt"] = run(argv + ["-o", str(out_file)]) + _read(out_file)
        for key, text in variants.items():
            text = text.replace(str(tmp), "TMP")
            if name.startswith("bench"):
                # --top shows the slowest layers, which change from run to run
                text = bench_shape(key, text) if "top" not in name or key in ("csv", "json") else ""
            (folder / f"{name}.{key}").write_text(text)
        print(name, flush=True)


_HELP: dict[str, str] = {}


def _help(command: str) -> str:
    if command not in _HELP:
        _HELP[command] = run([command, "--help"])
    return _HELP[command]


def _read(path: Path) -> str:
    return "\n--- file\n" + (path.read_text() if path.exists() else "(none)\n")


def diff(old: Path, new: Path) -> int:
    bad = 0
    names = sorted({p.name for p in old.iterdir()} | {p.name for p in new.iterdir()})
    for name in names:
        a, b = old / name, new / name
        if not (a.exists() and b.exists()) or a.read_text() != b.read_text():
            print("DIFFERS", name)
            bad += 1
    print(f"{len(names)} outputs, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "save":
        save(Path(sys.argv[2]))
    else:
        sys.exit(diff(Path(sys.argv[2]), Path(sys.argv[3])))
