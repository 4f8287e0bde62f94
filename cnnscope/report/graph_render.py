"""A ``ModelGraph`` as Mermaid, DOT, or a picture drawn by Graphviz.

Mermaid and DOT are text and need nothing installed. Pictures (.svg, .png, .pdf) are
drawn by Graphviz's ``dot``: the system's (``apt-get install graphviz``: every format),
else the ``graphviz-pure`` wheel that ``pip install 'cnnscope[graph]'`` brings (a Rust
port of Graphviz 16.1 with the same command line, one binary in the wheel; it draws
.svg and .png, not .pdf). Whatever is missing is a one-line error saying what to install.

The graph data (``cnnscope.analysis.graph``) sits below ``report`` and may not import it:
this module registers ``cnnscope.results.render`` for ``ModelGraph`` (formats mermaid, md,
dot; svg, png, pdf as bytes), which ``ModelGraph.to_mermaid()``, ``to_dot()`` and
``render(path)`` call. No torch here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cnnscope.results as results
from cnnscope.analysis.graph import PICTURES, ModelGraph
from cnnscope.errors import UserFileError
from cnnscope.units import human

# Fill colours from "costs nothing" to "the heaviest node", white to orange.
PALETTE = ("#ffffff", "#fff3e0", "#ffe0b2", "#ffcc80", "#ffb74d", "#ff9800")
RENDER_TIMEOUT_S = 300

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shade_level(weight: float | None) -> int:
    """The palette index of a node's weight in [0, 1] (0: white, or not shaded)."""
    if weight is None or not weight > 0:
        return 0
    return max(1, min(len(PALETTE) - 1, round(weight * (len(PALETTE) - 1))))


def node_lines(node, focus: tuple[str, ...] = ()) -> list[str]:
    """The lines of a node's label: name (inside ``focus``, relative to the focused
    module: "branch1.conv"), type (and window, repeat), cost, receptive field."""
    if node.kind in ("input", "output"):
        return [node.name]
    if node.kind == "merge":
        return [node.type]
    kind = node.type + (f" {node.detail}" if node.detail else "")
    if node.repeat > 1:
        kind += f" ×{node.repeat}"
    name = node.name
    for root in sorted(focus, key=len, reverse=True):
        if name.startswith(root + "."):
            name = name[len(root) + 1:] if len(focus) == 1 else \
                f"{root.rsplit('.', 1)[-1]}.{name[len(root) + 1:]}"
            break
    lines = [name, kind]
    if node.params or node.macs:
        lines.append(f"{_short(node.params)} params, {_short(node.macs)} MACs")
    if node.rf:
        lines.append("RF " + ("x".join(map(str, node.rf)) if len(set(node.rf)) > 1
                              else str(node.rf[0])))
    return lines


def _short(n: int) -> str:
    return human(n).replace(" ", "")  # "12.35K": a label line stays short


def _clean(text: str) -> str:
    """No control characters (a module name may hold anything a dict key can)."""
    return _CONTROL.sub("?", text)


# ---------------------------------------------------------------------- Mermaid


def _mermaid_text(text: str) -> str:
    # Mermaid reads entity codes inside a quoted label: no quote, tag or '#' gets through raw.
    text = _clean(text).replace("#", "#35;").replace('"', "#quot;")
    return text.replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(graph) -> str:
    """A Mermaid ``flowchart``: boxes for layers and blocks, circles for merges,
    stadiums for inputs and outputs, edges labelled with shapes, fills by shade."""
    lines = ["flowchart TB"]
    for n in graph.nodes:
        label = "<br/>".join(_mermaid_text(t) for t in node_lines(n, graph.focus))
        if n.kind in ("input", "output"):
            lines.append(f'    {n.id}(["{label}"])')
        elif n.kind == "merge":
            lines.append(f'    {n.id}(("{label}"))')
        elif n.repeat > 1:
            lines.append(f'    {n.id}[["{label}"]]')  # a subroutine box: drawn once, run N times
        else:
            lines.append(f'    {n.id}["{label}"]')
    for e in graph.edges:
        lines.append(f'    {e.source} -->|"{_mermaid_text(e.label)}"| {e.target}')
    levels: dict[int, list[str]] = {}
    for n in graph.nodes:
        level = shade_level(n.weight)
        if level:
            levels.setdefault(level, []).append(n.id)
    for level, ids in sorted(levels.items()):
        lines.append(f"    classDef shade{level} fill:{PALETTE[level]},stroke:#555")
        lines.append(f"    class {','.join(ids)} shade{level}")
    return "\n".join(lines) + "\n"


def to_markdown(graph) -> str:
    """The Mermaid flowchart in a fenced block, for a Markdown page."""
    return "```mermaid\n" + to_mermaid(graph) + "```\n"


# ---------------------------------------------------------------------- DOT


def _dot_text(text: str) -> str:
    return _clean(text).replace("\\", "\\\\").replace('"', '\\"')


def to_dot(graph) -> str:
    """Graphviz DOT: one statement a line, every ID and label quoted."""
    title = _dot_text(graph.model)
    lines = [f'digraph "{title}" {{',
             '    graph [rankdir=TB, fontname="Helvetica", nodesep=0.3, ranksep=0.35];',
             '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
             'fontname="Helvetica", fontsize=10];',
             '    edge [fontname="Helvetica", fontsize=9];']
    for n in graph.nodes:
        label = "\\n".join(_dot_text(t) for t in node_lines(n, graph.focus))
        attrs = [f'label="{label}"']
        if n.kind in ("input", "output"):
            attrs += ["shape=oval", 'fillcolor="#eeeeee"']
        elif n.kind == "merge":
            attrs += ["shape=circle"]
        elif n.repeat > 1:
            attrs += ['peripheries=2']
        level = shade_level(n.weight)
        if level:
            attrs.append(f'fillcolor="{PALETTE[level]}"')
        lines.append(f'    "{n.id}" [{", ".join(attrs)}];')
    for e in graph.edges:
        lines.append(f'    "{e.source}" -> "{e.target}" [label="{_dot_text(e.label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- pictures


def find_renderer(fmt: str) -> list[str]:
    """The command that draws ``fmt``: system ``dot``, else ``graphviz-pure`` (svg, png)."""
    dot = shutil.which("dot")
    if dot:
        return [dot]
    pure = shutil.which("graphviz-pure") or _beside_python("graphviz-pure")
    if pure and fmt != "pdf":
        return [pure]
    if pure:
        raise UserFileError("graphviz-pure draws .svg and .png, not .pdf",
                            "install Graphviz for .pdf (apt-get install graphviz), or draw .svg")
    raise UserFileError(f"drawing a .{fmt} needs Graphviz, which is not installed",
                        "pip install 'cnnscope[graph]' for svg and png, or apt-get install "
                        "graphviz for every format; .dot and .mmd need nothing")


def _beside_python(name: str) -> str | None:
    # A virtual environment's scripts sit beside its python even when it is not activated.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def draw(graph, fmt: str) -> bytes:
    """The picture's bytes, drawn by Graphviz from ``to_dot`` (nothing is written)."""
    command = find_renderer(fmt)
    try:
        done = subprocess.run([*command, f"-T{fmt}"], input=to_dot(graph).encode(),
                              capture_output=True, timeout=RENDER_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UserFileError(f"Graphviz took over {RENDER_TIMEOUT_S} s to draw {graph.model}",
                            "draw fewer nodes with --depth or --focus") from None
    except OSError as exc:
        raise UserFileError(f"cannot run {command[0]}: {exc.strerror or exc}",
                            "reinstall Graphviz") from None
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise UserFileError(f"{Path(command[0]).name} failed to draw the graph: "
                            f"{err[0] if err else 'exit ' + str(done.returncode)}",
                            "write .dot instead and draw it with your own Graphviz")
    return done.stdout


def graph_text(graph, kind: str) -> str:
    """The text forms: mermaid, md (a Mermaid block) or dot."""
    return {"mermaid": to_mermaid, "md": to_markdown, "dot": to_dot}[kind](graph)


@results.render.register(ModelGraph)
def render_graph(graph: ModelGraph, format: str) -> str | bytes:
    """``graph`` as text (mermaid, md, dot) or a picture's bytes drawn by Graphviz (svg,
    png, pdf)."""
    if "." + format in PICTURES:
        return draw(graph, format)
    return graph_text(graph, format)
