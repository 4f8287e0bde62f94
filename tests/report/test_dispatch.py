"""Renderers are picked by the result's type (``functools.singledispatch`` in
``cnnscope.results``), never by its class name: every result type has one, a type without
one is a clear error, and the side paths (``ModelReport.to_csv``/``to_json``, a graph's
text) are the renderers' bytes."""

from __future__ import annotations

import ast
import csv
import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import cnnscope
from cnnscope.results import NoRenderer, Shown, document, render

REPORT = Path(cnnscope.__file__).parent / "report"


def _result_types() -> list[type]:
    """Every result type of cnnscope that shows itself (``Shown``), subclasses included."""
    from cnnscope.report.render import load_all

    load_all()  # imports every result module with its renderer
    found, todo = [], list(Shown.__subclasses__())
    while todo:
        t = todo.pop()
        todo += t.__subclasses__()
        if t.__module__.startswith("cnnscope."):  # not a test's own type
            found.append(t)
    return found


def test_every_result_type_has_its_own_document_function():
    types = _result_types()
    # the API's results (at least these: a new one is found by the walk above)
    assert {"ModelReport", "Comparison", "BenchResult", "DdpResult", "ShardedResult",
            "SpecTables"} <= {t.__name__ for t in types}
    fallback = document.dispatch(object)
    missing = [t.__name__ for t in types if document.dispatch(t) is fallback]
    assert missing == []


def test_every_result_type_has_its_renderers_listed_for_lazy_loading():
    from cnnscope.analysis.graph import ModelGraph
    from cnnscope.report.render import RENDERERS

    unlisted = [t.__name__ for t in [*_result_types(), ModelGraph]
                if not any(c.__module__ in RENDERERS for c in t.__mro__)]
    assert unlisted == []


def test_a_command_loads_only_its_own_renderer(warm_python):
    # Every renderer together costs about 90 ms of CPU at each start: a ModelReport's
    # CSV imports the layer table's renderer, not the receptive field's or bench's.
    code = ("import sys, cnnscope; text = cnnscope.analyze('lenet5').to_csv(); "
            "print(sorted(m for m in sys.modules if m.startswith('cnnscope.report.')))")
    done = subprocess.run([warm_python, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.strip() == str(["cnnscope.report.document", "cnnscope.report.layers",
                                       "cnnscope.report.render"])


def test_a_ddp_or_sharded_sweep_is_rendered_by_its_own_type():
    from cnnscope.benchmark.records import BenchResult, DdpResult, ShardedResult
    from cnnscope.report import bench_render, ddp_render

    assert document.dispatch(BenchResult) is bench_render.document
    assert document.dispatch(DdpResult) is ddp_render.document
    assert document.dispatch(ShardedResult) is ddp_render.sharded_document


def test_bench_render_does_not_import_ddp_render():
    # The old runtime circle: bench_render looked at env["ddp"] and called ddp_render,
    # which builds on bench_render. The type now picks; the import goes one way.
    tree = ast.parse((REPORT / "bench_render.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
              for a in n.names]
    assert [n for n in names if "ddp_render" in n] == []


def test_no_renderer_is_found_by_class_name():
    for path in REPORT.glob("*.py"):
        assert "importlib" not in path.read_text(), path.name


@dataclass(frozen=True)
class Unrendered(Shown):
    """A new result type whose renderer was never registered."""

    value: int = 1

    def to_dict(self):
        return {"value": self.value}


def test_a_result_type_without_a_renderer_is_a_clear_error():
    with pytest.raises(NoRenderer, match=r"no document for Unrendered: register one in "
                       r"cnnscope/report/ with @cnnscope\.results\.document\.register"):
        document(Unrendered())
    for format in ("csv", "json", "md"):  # every format says the same
        with pytest.raises(TypeError, match="no document for Unrendered"):
            render(Unrendered(), format)
    with pytest.raises(TypeError, match="no document for Unrendered"):
        Unrendered()._repr_markdown_()


def test_a_type_that_no_generic_knows_names_itself():
    class Plain:
        pass

    with pytest.raises(NoRenderer, match="no document for Plain"):
        document(Plain())


@pytest.fixture(scope="module")
def lenet5():
    return cnnscope.analyze("lenet5")


def test_model_report_files_are_the_renderers_bytes(lenet5, tmp_path):
    from cnnscope.report.render import render_text

    assert lenet5.to_csv() == render_text(lenet5, "csv")
    assert lenet5.to_json() == render_text(lenet5, "json")
    assert lenet5.to_csv(tmp_path / "l.csv") == (tmp_path / "l.csv").read_text()
    # the CSV a user gets: a header, then one line per table row, conv1 first with its
    # exact MACs (c1: 6 filters of 5x5 over 1 channel at 28x28 outputs)
    rows = list(csv.DictReader(io.StringIO(lenet5.to_csv())))
    assert len(rows) == len(lenet5.table_layers())
    assert rows[0]["name"] == "c1" and int(rows[0]["macs"]) == 6 * 5 * 5 * 1 * 28 * 28
    assert json.loads(lenet5.to_json())["totals"]["macs"] == lenet5.totals.macs


def test_a_graph_renders_in_every_format_it_offers(lenet5):
    from cnnscope.analysis.graph import TEXTS, build_graph

    graph = build_graph(lenet5)
    for format in set(TEXTS.values()):  # mermaid, md, dot: text, nothing installed
        text = render(graph, format)
        assert isinstance(text, str) and "Conv2d 5x5" in text
    assert graph.to_mermaid().startswith("flowchart TB\n")
    assert graph.to_dot().startswith('digraph "lenet5" {')
    assert render(graph, "md") == "```mermaid\n" + graph.to_mermaid() + "```\n"
    with pytest.raises(NoRenderer, match="no document for ModelGraph"):
        document(graph)  # not a table: its own formats only


def test_a_sharded_sweep_shows_where_each_rank_ran():
    from cnnscope.benchmark.records import BenchResult, BenchRow, ShardedResult
    from cnnscope.report.render import render_text

    row = BenchRow(model="lenet5", device="cpu", device_name="CPU", batch=1, dtype="fp32",
                   mode="infer", input_size=(1, 32, 32), samples=5, median_ms=1.0)
    env = {"device": "cpu", "device_name": "CPU", "torch": "x",
           "shard": {"world_size": 2, "backend": "gloo",
                     "ranks": [{"rank": 0, "host": "h", "device": "cpu", "device_name": "CPU",
                                "rows": 1}, {"rank": 1, "host": "h", "device": "cpu",
                                             "device_name": "CPU", "rows": 0}]}}
    sweep = ShardedResult(env=env, settings={}, rows=[row], planned=1)
    md = render_text(sweep, "md")
    assert "- rank 0: h, cpu (CPU): 1 row(s)" in md and "- rank 1: h, cpu (CPU): 0 row(s)" in md
    header = render_text(sweep, "csv").splitlines()[0].split(",")
    assert header[-2:] == ["threads_per_rank", "rank_median_ms"]  # the DDP columns, empty
    back = BenchResult.from_dict(json.loads(render_text(sweep, "json")))
    assert type(back) is ShardedResult and back == sweep
