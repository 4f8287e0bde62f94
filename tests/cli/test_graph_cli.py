"""``cnnscope graph``: Mermaid and DOT that parse, pictures through Graphviz (a fake one
here: the default run has no Graphviz), and bad input as one line with exit 2."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from cnnscope.report import graph_render as graph_text
from cnnscope.analysis.graph import GraphEdge, GraphNode, ModelGraph

_MERMAID_NODE = re.compile(r'^    (n\d+)(\(\[|\(\(|\[\[|\[)"([^"]*)"(\]\)|\)\)|\]\]|\])$')
_MERMAID_EDGE = re.compile(r'^    (n\d+) -->\|"([^"]*)"\| (n\d+)$')
_MERMAID_STYLE = re.compile(r"^    (classDef shade\d fill:#[0-9a-f]{6},stroke:#555|"
                            r"class n\d+(,n\d+)* shade\d)$")
_QUOTED = r'"(?:[^"\\\n]|\\.)*"'
_DOT_NODE = re.compile(rf'^    ({_QUOTED}) \[(label={_QUOTED}(, [a-z]+=(?:{_QUOTED}|[a-z0-9]+))*)\];$')
_DOT_EDGE = re.compile(rf'^    ({_QUOTED}) -> ({_QUOTED}) \[label=({_QUOTED})\];$')


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Nodes (id -> label) and edges of our Mermaid flowchart; any other line fails."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    nodes, edges = {}, []
    for line in lines[1:]:
        if m := _MERMAID_NODE.match(line):
            opener, closer = m.group(2), m.group(4)
            assert {"([": "])", "((": "))", "[[": "]]", "[": "]"}[opener] == closer, line
            nodes[m.group(1)] = m.group(3)
        elif m := _MERMAID_EDGE.match(line):
            edges.append((m.group(1), m.group(3), m.group(2)))
        else:
            assert _MERMAID_STYLE.match(line), f"not a Mermaid statement we write: {line!r}"
    assert {e[0] for e in edges} | {e[1] for e in edges} <= set(nodes)
    return nodes, edges


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Nodes (id -> label attribute) and edges of our DOT; any other statement fails."""
    lines = text.splitlines()
    assert re.match(rf"^digraph {_QUOTED} \{{$", lines[0]) and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if m := _DOT_NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        elif m := _DOT_EDGE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3)))
        else:
            assert re.match(r"^    (graph|node|edge) \[.*\];$", line), line
    assert {e[0] for e in edges} | {e[1] for e in edges} <= set(nodes)
    return nodes, edges


def test_mermaid_of_the_inception_module_parses(run):
    result = run("graph", "googlenet", "--focus", "inception3a")
    assert result.exit_code == 0, result.output
    nodes, edges = parse_mermaid(result.stdout)
    assert len(edges) == 18 and len(nodes) == 16
    assert sorted(label for *_, label in edges if label.endswith("x28x28"))[:3] == \
        ["128x28x28", "128x28x28", "16x28x28"]
    assert "concat" in nodes.values()


def test_markdown_is_one_mermaid_block(run):
    result = run("graph", "resnet18", "--format", "md")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("```mermaid\nflowchart TB\n")
    assert result.stdout.endswith("\n```\n")
    parse_mermaid(result.stdout[len("```mermaid\n"):-len("```\n")])


def test_dot_parses_and_graphviz_draws_it_where_installed(run, tmp_path):
    out = tmp_path / "r50.dot"
    result = run("graph", "resnet50", "--depth", "2", "--rf", "-o", out)
    assert result.exit_code == 0, result.output
    nodes, edges = parse_dot(out.read_text())
    assert any("layer3.1-5\\nBottleneck ×5" in label for label in nodes.values())
    assert ('"n0"', '"n1"', '"3x224x224"') in edges
    dot = shutil.which("dot")
    if dot:  # the real parser, where the system has Graphviz
        done = subprocess.run([dot, "-Tsvg", str(out)], capture_output=True, timeout=120)
        assert done.returncode == 0 and b"<svg" in done.stdout, done.stderr


def _hostile_graph() -> ModelGraph:
    names = ['a "quoted" name', "new\nline", "<script>x</script>", "back\\slash", "hash #35;"]
    nodes = tuple(GraphNode(f"n{k}", name, "Conv2d", "layer", params=1, macs=2, weight=k / 4)
                  for k, name in enumerate(names))
    edges = tuple(GraphEdge(f"n{k}", f"n{k + 1}", (3, 4)) for k in range(len(names) - 1))
    return ModelGraph('model "x"\n', ((3, 4),), 1, (), nodes, edges, "macs")


def test_hostile_names_cannot_break_out_of_a_label():
    g = _hostile_graph()
    nodes, edges = parse_mermaid(g.to_mermaid())
    assert len(nodes) == 5 and len(edges) == 4
    assert "#quot;quoted#quot;" in nodes["n0"] and "<script>" not in g.to_mermaid()
    dot_nodes, dot_edges = parse_dot(g.to_dot())
    assert len(dot_nodes) == 5 and len(dot_edges) == 4
    assert '\\"quoted\\"' in dot_nodes['"n0"'] and "back\\\\slash" in dot_nodes['"n3"']


def _fake_graphviz(tmp_path, body: str):
    tool = tmp_path / "dot"
    tool.write_text("#!/bin/sh\n" + body)
    tool.chmod(0o755)
    return str(tool)


def test_a_picture_is_what_graphviz_returns_written_whole(run_main, monkeypatch, tmp_path):
    seen = tmp_path / "stdin.dot"
    tool = _fake_graphviz(tmp_path, f'cat > "{seen}"; echo "<svg>$1</svg>"\n')
    monkeypatch.setattr(graph_text.shutil, "which", lambda name: tool if name == "dot" else None)
    out = tmp_path / "g.svg"
    result = run_main("graph", "googlenet", "--focus", "inception3a", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text() == "<svg>-Tsvg</svg>\n"
    parse_dot(seen.read_text())  # Graphviz was given our DOT on stdin


def test_a_failing_graphviz_is_one_line_and_writes_nothing(run_main, monkeypatch, tmp_path,
                                                           one_line_error):
    tool = _fake_graphviz(tmp_path, 'echo "Error: syntax error in line 3" >&2; exit 1\n')
    monkeypatch.setattr(graph_text.shutil, "which", lambda name: tool if name == "dot" else None)
    out = tmp_path / "g.png"
    line = one_line_error(run_main("graph", "lenet5", "-o", out))
    assert "syntax error in line 3" in line and not out.exists()


@pytest.mark.parametrize("name", ["g.svg", "g.png", "g.pdf"])
def test_a_picture_without_graphviz_says_what_to_install(run_main, monkeypatch, tmp_path,
                                                        one_line_error, name):
    monkeypatch.setattr(graph_text.shutil, "which", lambda name: None)
    monkeypatch.setattr(graph_text, "_beside_python", lambda name: None)
    out = tmp_path / name
    line = one_line_error(run_main("graph", "no_such_model_either", "-o", out))
    # Checked before the model is even resolved: the unknown model is not the error.
    assert "needs Graphviz" in line and "pip install 'cnnscope[graph]'" in line
    assert not out.exists()


def test_pdf_with_only_the_wheel_asks_for_system_graphviz(run_main, monkeypatch, tmp_path,
                                                          one_line_error):
    monkeypatch.setattr(graph_text.shutil, "which",
                        lambda name: "/opt/gp/graphviz-pure" if name == "graphviz-pure" else None)
    line = one_line_error(run_main("graph", "lenet5", "-o", tmp_path / "g.pdf"))
    assert "not .pdf" in line and "apt-get install graphviz" in line


def test_shading_by_measured_time(run, tmp_path):
    timing = {"rows": [{"model": "lenet5", "per_layer": {"layers": [
        {"name": "c1", "fwd_ms": 0.25}, {"name": "f6", "fwd_ms": 1.0}]}}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(timing))
    result = run("graph", "lenet5", "--depth", "9", "--times", path)  # --shade time implied
    assert result.exit_code == 0, result.output
    nodes, _ = parse_mermaid(result.stdout)
    shaded = dict(re.findall(r"class (\S+) shade(\d)", result.stdout))
    heavy = next(i for i, label in nodes.items() if label.startswith("f6<br/>"))
    light = next(i for i, label in nodes.items() if label.startswith("c1<br/>"))
    assert shaded[heavy] == "5" and shaded[light] == "1"  # 0.25 / 1.0 of five steps, rounded


@pytest.mark.parametrize("args, says", [
    (["googlenet", "--focus", "inception3z"], "nearest: inception3b, inception3a"),
    (["lenet5", "--depth", "0"], "depth must be a whole number >= 1"),
    (["lenet5", "-o", "g.json"], "cannot tell the format"),
    (["lenet5", "-o", "g.dot", "--format", "mmd"], "names a dot file but --format is mmd"),
    (["lenet5", "--shade", "time"], "needs per-layer times"),
    (["lenet5", "--shade", "time", "--times", "missing.json"], "cannot read"),
    (["lenet5", "--shade", "time", "--times", "nan.json"], "not a finite number"),
    (["lenet5", "--shade", "time", "--times", "empty.json"], "holds no per-layer times"),
    (["lenet5", "--times", "odd.json"], "holds no per-layer times"),
    (["lenet5", "--times", "fifo"], "is not a regular file"),
    (["lenet5", "--times", "."], "is not a regular file"),
    (["lenet5", "--times", "bin.json"], "is not JSON"),
])
def test_bad_input_is_one_line_exit_2(run, one_line_error, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nan.json").write_text(
        '{"rows": [{"per_layer": {"layers": [{"name": "c1", "fwd_ms": NaN}]}}]}')
    (tmp_path / "empty.json").write_text('{"rows": []}')
    (tmp_path / "odd.json").write_text('{"rows": [{"per_layer": [1, 2]}, 3, null]}')
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe{")
    os.mkfifo(tmp_path / "fifo")  # reading it would block forever
    line = one_line_error(run("graph", *args))
    assert says in line
    assert not (tmp_path / "g.json").exists() and not (tmp_path / "g.dot").exists()


def test_format_names_what_to_write_when_the_file_name_cannot(run_main, tmp_path):
    """-f dot -o /dev/stdout (or a FIFO, or a name with no extension): --format decides;
    without --format such a name is one line, and /dev/null stays a device."""
    import stat

    out = tmp_path / "graph"
    assert run_main("graph", "lenet5", "-f", "dot", "-o", out).exit_code == 0
    assert out.read_text().startswith('digraph "lenet5" {')
    assert run_main("graph", "lenet5", "-f", "mmd", "-o", os.devnull).exit_code == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert run_main("graph", "lenet5", "-o", tmp_path / "graph2").exit_code == 2
    assert not (tmp_path / "graph2").exists()
