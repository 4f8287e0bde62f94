"""The figures of docs/graph.md are what ``cnnscope graph`` draws now.

Each figure is the command's Markdown output (a Mermaid block) pasted between two
markers; a stale page fails with the command that regenerates it:

    .venv/bin/python tests/analysis/test_graph_docs.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "graph.md"
REGENERATE = "python tests/analysis/test_graph_docs.py"

# (marker, title, command arguments after "cnnscope graph")
FIGURES = (
    ("inception", "GoogLeNet: the Inception module (inception 3a)",
     ["googlenet", "--focus", "inception3a", "--format", "md"]),
    ("bottleneck", "ResNet-50: the bottleneck block with its projection shortcut (layer1.0)",
     ["resnet50", "--focus", "layer1.0", "--format", "md"]),
    ("resnet50", "ResNet-50 at depth 2: repeated blocks collapsed",
     ["resnet50", "--depth", "2", "--format", "md"]),
    ("densenet", "DenseNet-121: dense block 1 and transition 1",
     ["densenet121", "--focus", "features.denseblock1", "--focus", "features.transition1",
      "--depth", "1", "--format", "md"]),
    ("unet", "U-Net at 572x572, depth 1",
     ["unet", "--input", "1x572x572", "--format", "md"]),
    ("hrnet", "HRNetV2-W18 at depth 1: the parallel streams",
     ["hrnetv2_w18", "--format", "md"]),
)


def _figure(args: list[str]) -> str:
    from typer.testing import CliRunner

    from cnnscope.cli.main import app

    result = CliRunner().invoke(app, ["graph", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def render_figures(page: str) -> str:
    """``page`` with every figure block replaced by the command's output now."""
    for marker, title, args in FIGURES:
        begin, end = f"<!-- figure:{marker} -->", f"<!-- /figure:{marker} -->"
        block = (f"{begin}\n### {title}\n\n```bash\ncnnscope graph {' '.join(args)}\n```\n\n"
                 f"{_figure(args)}{end}")
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
        assert pattern.search(page), f"docs/graph.md has no {begin} ... {end} block"
        page = pattern.sub(lambda _: block, page)
    return page


def test_the_figures_in_docs_graph_md_are_fresh():
    page = PAGE.read_text(encoding="utf-8")
    assert render_figures(page) == page, f"docs/graph.md figures are stale; run {REGENERATE}"


if __name__ == "__main__":
    sys.path.insert(0, str(PAGE.parents[1]))
    PAGE.write_text(render_figures(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {PAGE}")
