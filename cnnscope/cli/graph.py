"""``cnnscope graph MODEL``: the network drawn as its paper draws it, from the real trace."""

from __future__ import annotations

from enum import Enum
from dataclasses import dataclass
from typing import List, Optional

import typer

from cnnscope.cli.common import InputsOpt, emit, examples, parse_sizes, user_errors
from cnnscope.cli.model_args import ArgOpt, parse_args
from cnnscope.cli.options import takes

ORDER = 32


class GraphFormat(str, Enum):
    mmd = "mmd"
    md = "md"
    dot = "dot"


class Shade(str, Enum):
    macs = "macs"
    params = "params"
    time = "time"
    none = "none"


@dataclass(frozen=True)
class GraphOptions:
    """``cnnscope graph``'s options, in --help order (see ``cli.options.takes``)."""

    model: str = typer.Argument(..., help="Zoo name (see 'cnnscope zoo') or model spec.")
    depth: Optional[int] = typer.Option(
        None, "--depth", metavar="N", help="Module depth of the nodes: 1 the model's children "
        "(default), 2 theirs...; beyond the tree: every layer. With --focus: counted from it.")
    input: Optional[List[str]] = InputsOpt
    focus: Optional[List[str]] = typer.Option(
        None, "--focus", metavar="NAME", help="Draw this submodule alone, layer by layer "
        "(repeatable: neighbours side by side), e.g. --focus inception3a.")
    expand: bool = typer.Option(False, "--expand", metavar="",
                                help="Draw every block; by default identical consecutive "
                                     "blocks are one node marked ×N.")
    rf: bool = typer.Option(False, "--rf", metavar="",
                            help="Show each node's receptive field (input pixels) at its output.")
    shade: Shade = typer.Option(Shade.macs, "--shade", case_sensitive=False,
                                help="Fill the heavier nodes darker, by MACs, params or "
                                     "measured time (--times).")
    times: Optional[str] = typer.Option(
        None, "--times", metavar="FILE.json",
        help="Per-layer times for --shade time: the JSON of 'cnnscope bench --per-layer'.")
    format: Optional[GraphFormat] = typer.Option(
        None, "--format", "-f", case_sensitive=False,
        help="Text written to stdout or -o: mmd (Mermaid, the default), md (a Mermaid "
             "block in Markdown) or dot (Graphviz).")
    output: Optional[str] = typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Write here; the extension picks the format: .svg .png .pdf (drawn by "
             "Graphviz), .dot, .mmd, .md.")
    arg: Optional[List[str]] = ArgOpt


@takes(GraphOptions)
def graph(o: GraphOptions) -> None:
    """Draw the network: nodes are modules at --depth, edges the tensors with their shapes.

    Merges are drawn as what they are (concat, add, multiply); identical consecutive
    blocks collapse into one ×N node; nodes are shaded by cost. Mermaid and DOT need
    nothing installed; pictures need Graphviz (the graph extra installs it: pip install graphviz-pure).
    """
    with user_errors():
        from cnnscope.report.graph_render import find_renderer, graph_text
        from cnnscope.api import graph as model_graph
        from cnnscope.models import resolve

        kind = _kind(o.format, o.output)
        if kind in ("svg", "png", "pdf"):
            find_renderer(kind)  # a missing Graphviz fails before tracing
        result = model_graph(resolve(o.model, **parse_args(o.arg)), parse_sizes(o.input),
                             depth=o.depth, focus=tuple(o.focus or ()), expand=o.expand, rf=o.rf,
                             shade=None if o.shade is Shade.none else o.shade.value, times=o.times)
        if o.output and kind in ("svg", "png", "pdf"):
            result.render(o.output)
            typer.echo(f"wrote {o.output} ({len(result.nodes)} nodes)", err=True)
        else:
            emit(graph_text(result, kind), o.output)


def _kind(format: Optional[GraphFormat], output: Optional[str]) -> str:
    """What to write: the -o extension's format, --format's, or Mermaid; both must agree.
    With --format, a name that tells no format (/dev/stdout, a FIFO, 'graph') is fine."""
    from cnnscope.analysis.graph import output_kind
    from cnnscope.errors import InvalidOptionError

    asked = {"mmd": "mermaid", "md": "md", "dot": "dot"}[format.value] if format else None
    said = None
    if output:
        try:
            said = output_kind(output)
        except InvalidOptionError:
            if not asked:
                raise
    if said and asked and said != asked:
        raise InvalidOptionError(f"-o {output} names a {said} file but --format is {format.value}",
                                 "drop --format, or name the file for it")
    return said or asked or "mermaid"


def register(app: typer.Typer) -> None:
    app.command("graph", epilog=examples(
        "cnnscope graph resnet50",
        "cnnscope graph googlenet --focus inception3a -o inception.svg",
        "cnnscope graph resnet50 --depth 2 --rf -o resnet50.dot",
        "cnnscope graph unet --input 1x572x572 --format md"))(graph)
