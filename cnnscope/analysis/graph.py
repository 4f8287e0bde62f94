"""The network as a graph of modules: what ``cnnscope graph`` draws, built from the records.

The trace already is a dataflow graph: every ``LayerRecord`` names the records that
produced its inputs (``inputs``) and the report names the records that produced the
model's outputs (``output_producers``). This module folds those records into nodes at a
chosen depth of the module tree (depth 1: the model's children, ``layer1``; depth 2:
their children, ``layer1.0``; leaf depth: one node per layer call and per op) and keeps
the tensors that cross between nodes as edges, labelled with their per-sample shape.

- Merges stay what they are: a ``cat`` is a ``concat`` node, an ``add`` an ``add`` node, a
  ``mul`` of two tensors (a squeeze-and-excitation gate) a ``multiply`` node.
- Views (``view``, ``flatten`` called as a function) and ``nn.Identity`` layers are not
  nodes: an edge passes through them with the shape the consumer reads.
- Repeats collapse: consecutive sibling blocks with the same structure and the same
  shapes (every record alike: type, input and output shapes, params, MACs), each fed by
  the previous one alone, are drawn once with ``repeat`` = their number. A block that
  differs (ResNet's first block of a stage has the projection shortcut and the stride)
  stays on its own, so ResNet-50's ``layer3`` at depth 2 is ``layer3.0`` and
  ``layer3.1-5 x5``; ``expand=True`` draws every block.
- ``focus`` draws the named submodules alone (leaf depth unless ``depth`` is given,
  which then counts from the focused module); the tensors entering and leaving become
  input and output nodes named after the layer they come from or the model's output.

No torch here: the graph is plain data, written as Mermaid or DOT by its renderer
(``cnnscope.report.graph_render``, reached through ``cnnscope.results.render``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any, Mapping, Sequence

from cnnscope.errors import InvalidOptionError
from cnnscope.results import LayerKind
from cnnscope.results import render as render_as
from cnnscope.trace.records import MODEL_INPUT, LayerRecord, ModelReport

# A graph with more nodes than this is refused with a hint (--depth, --focus): a layout
# of thousands of boxes takes minutes and nobody can read it. DenseNet-264 at leaf depth
# has 932 nodes (Graphviz: 5 s, a 1.3 MB SVG); ResNet-152 516 (benchmarks/graph_speed.py).
MAX_NODES = 1000

# Ops that join tensors, by the name a figure gives them.
_MERGES = {"cat": "concat", "concat": "concat", "stack": "concat",
           "add": "add", "add_": "add", "sub": "subtract", "sub_": "subtract",
           "mul": "multiply", "mul_": "multiply"}

SHADES = ("macs", "params", "time")


@dataclass(frozen=True)
class GraphNode:
    """One box of the drawing.

    ``kind``: "input" / "output" (tensors entering or leaving the drawn part), "block" (a
    module whose layers are folded into it), "layer" (one call of a torch.nn layer),
    "merge" (concat, add, multiply of two or more tensors) or "op" (any other function).
    ``params`` and ``macs`` are the sums over the folded records (over all ``repeat``
    blocks of a collapsed run); ``rf`` the receptive field of the node's last record per
    spatial axis (``--rf``); ``weight`` the shade in [0, 1] (the node's cost over the
    largest node's) and ``cost`` the number it comes from.
    """

    id: str
    name: str
    type: str
    kind: str
    detail: str = ""  # a layer's window: "3x3", "3x3/2" (stride 2); "" for others
    params: int = 0
    macs: int = 0
    repeat: int = 1
    members: tuple[str, ...] = ()  # the blocks a collapsed run stands for
    rf: tuple[int, ...] | None = None
    weight: float | None = None
    cost: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "kind": self.kind,
                "detail": self.detail,
                "params": self.params, "macs": self.macs, "repeat": self.repeat,
                "members": list(self.members), "rf": list(self.rf) if self.rf else None,
                "weight": self.weight, "cost": self.cost}


@dataclass(frozen=True)
class GraphEdge:
    """A tensor from one node to another; ``shape`` is per sample (no batch): (64, 56, 56)."""

    source: str
    target: str
    shape: tuple[int, ...]

    @property
    def label(self) -> str:
        return "x".join(map(str, self.shape)) if self.shape else "scalar"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelGraph:
    """Nodes (in dataflow order) and edges of one model at one depth; see the module doc."""

    model: str
    input_sizes: tuple[tuple[int, ...], ...]
    depth: int | None  # None: leaf depth
    focus: tuple[str, ...]
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    shade: str | None = None  # what ``weight`` measures: macs, params or time

    def node(self, name: str) -> GraphNode:
        """The node called ``name`` (KeyError if none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def inputs_of(self, name: str) -> list[GraphEdge]:
        nid = self.node(name).id
        return [e for e in self.edges if e.target == nid]

    def outputs_of(self, name: str) -> list[GraphEdge]:
        nid = self.node(name).id
        return [e for e in self.edges if e.source == nid]

    def name_of(self, node_id: str) -> str:
        return next(n.name for n in self.nodes if n.id == node_id)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "input_sizes": [list(s) for s in self.input_sizes],
                "depth": self.depth, "focus": list(self.focus), "shade": self.shade,
                "nodes": [n.to_dict() for n in self.nodes],
                "edges": [e.to_dict() for e in self.edges]}

    def to_mermaid(self) -> str:
        """A Mermaid flowchart (GitHub and the docs site draw it with nothing installed)."""
        return render_as(self, "mermaid")

    def to_dot(self) -> str:
        """Graphviz DOT source."""
        return render_as(self, "dot")

    def render(self, path: str) -> str:
        """Write the drawing to ``path`` (atomically), in the format its extension names:
        .svg/.png/.pdf (needs Graphviz), .dot, .mmd, .md."""
        from cnnscope.fileio import write_bytes_atomic, write_text_atomic

        drawn = render_as(self, output_kind(str(path)))
        (write_bytes_atomic if isinstance(drawn, bytes) else write_text_atomic)(path, drawn)
        return str(path)


# What a graph file's extension asks for (``ModelGraph.render``, ``cnnscope graph -o``).
PICTURES = (".svg", ".png", ".pdf")
TEXTS = {".mmd": "mermaid", ".md": "md", ".dot": "dot", ".gv": "dot"}


def output_kind(path: str) -> str:
    """What the file name asks for: svg, png, pdf, mermaid, md or dot (else a one-line error)."""
    suffix = PurePath(path).suffix.lower()
    if suffix in PICTURES:
        return suffix[1:]
    if suffix in TEXTS:
        return TEXTS[suffix]
    raise InvalidOptionError(f"cannot tell the format of {path!r}",
                             "name it .svg, .png, .pdf (drawn by Graphviz), .dot, .mmd or .md")


# ---------------------------------------------------------------------- building


def build_graph(report: ModelReport, *, depth: int | None = 1, focus: Sequence[str] = (),
                expand: bool = False, fields: Mapping[int, tuple[int, ...]] | None = None,
                shade: str | None = "macs", times: Mapping[str, float] | None = None,
                max_nodes: int = MAX_NODES) -> ModelGraph:
    """The graph of ``report`` (see the module doc). ``fields``: record index -> receptive
    field per axis (``--rf``); ``times``: layer name -> milliseconds (``shade="time"``)."""
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise InvalidOptionError(f"depth must be a whole number >= 1, not {depth!r}",
                                 "1 draws the model's stages; leave it out with --focus "
                                 "for leaf depth")
    if shade is not None and shade not in SHADES:
        raise InvalidOptionError(f"unknown shade {shade!r}", "use macs, params or time")
    if shade == "time" and not times:
        raise InvalidOptionError("shading by time needs per-layer times",
                                 "give the JSON of 'cnnscope bench --per-layer' (--times FILE)")
    roots = _check_focus(report, focus)
    builder = _Builder(report, depth, roots, fields or {})
    drafts, keyed = builder.build()
    nodes, edges = _finish(drafts, keyed, {}) if expand else _collapse(drafts, keyed)
    count = len(nodes)
    if not any(n.kind not in ("input", "output") for n in nodes):
        where = f"--focus {', '.join(roots)}" if roots else report.model
        raise InvalidOptionError(f"{where} runs no layer or op to draw (its forward only "
                                 "passes tensors through)", "draw a model or module that computes")
    if count > max_nodes:
        where = f"--focus {', '.join(roots)}" if roots else "the whole model"
        raise InvalidOptionError(
            f"{report.model}: {where} at {_depth_words(depth)} has {count:,} nodes "
            f"(the limit is {max_nodes:,}); such a drawing is unreadable",
            "draw fewer with --depth 1 or 2, or one part with --focus NAME")
    final = _shaded(nodes, shade, times) if shade else tuple(nodes)
    ordered = {n.id: k for k, n in enumerate(final)}
    edges = sorted(edges, key=lambda e: (ordered[e.source], ordered[e.target], e.shape))
    return ModelGraph(model=report.model,
                      input_sizes=tuple(report.input_sizes or (report.input_size,)),
                      depth=depth, focus=tuple(roots), nodes=final, edges=tuple(edges),
                      shade=shade)


def _depth_words(depth: int | None) -> str:
    return "leaf depth" if depth is None else f"depth {depth}"


def _check_focus(report: ModelReport, focus: Sequence[str]) -> list[str]:
    """The focused module names, checked against the model; an unknown one lists the nearest."""
    names = [n for n, _ in report.module_types if n]
    known = set(names)
    roots = []
    for raw in focus:
        name = raw.strip().strip(".")
        if name in known or any(r.name == name for r in report.layers):
            if name not in roots:
                roots.append(name)
            continue
        near = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        if not near:
            near = [n for n in names if name.split(".")[-1] in n][:5]
        hint = ("nearest: " + ", ".join(near)) if near else \
            "see the module names with 'cnnscope layers MODEL'"
        raise InvalidOptionError(f"{report.model} has no module {raw!r}", hint)
    return roots


@dataclass
class _Draft:
    """A node while the graph is built: its records and where it sits in the tree."""

    key: str
    name: str
    type: str
    kind: str
    parent: str
    first: int  # index of its first record: the drawing order
    records: list[LayerRecord] = field(default_factory=list)
    rf: tuple[int, ...] | None = None


class _Builder:
    def __init__(self, report: ModelReport, depth: int | None, roots: list[str],
                 fields: Mapping[int, tuple[int, ...]]):
        self.report = report
        self.depth = depth
        self.roots = roots
        self.fields = fields
        self.types = dict(report.module_types)
        self.by_index = {r.index: r for r in report.layers}
        # A ModuleList or ModuleDict is never called: its members are, one by one, from
        # the parent's forward. Folded into one node it would feed itself through the
        # parent's ops; its members are the nodes instead.
        self.containers = {n for n, t in report.module_types if t in ("ModuleList", "ModuleDict")}
        self.drafts: dict[str, _Draft] = {}

    # ---------------------------------------------------------------- nodes

    def _root_of(self, name: str) -> str | None:
        """The focused module holding record ``name`` ("" without --focus; None: outside)."""
        if not self.roots:
            return ""
        best = None
        for root in self.roots:
            if name == root or name.startswith(root + "."):
                if best is None or len(root) > len(best):
                    best = root
        return best

    def key_of(self, r: LayerRecord) -> str | None:
        """The node a record folds into (None: outside the focus; "": a contracted view)."""
        root = self._root_of(r.name.split("#")[0])
        if root is None:
            return None
        parts = r.name.split(".")
        base = len(root.split(".")) if root else 0
        if root and r.name.split("#")[0] == root:
            return r.name  # the focused module is itself one layer
        cut = base + self.depth if self.depth is not None else len(parts)
        while cut < len(parts) and ".".join(parts[:cut]) in self.containers:
            cut += 1
        if cut >= len(parts):
            return r.name  # a layer (or op) of its own at this depth
        return ".".join(parts[:cut])

    def _draft(self, key: str, r: LayerRecord) -> _Draft:
        draft = self.drafts.get(key)
        if draft is not None:
            return draft
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        if key != r.name:  # a folded module
            draft = _Draft(key, key, self.types.get(key, "Module"), "block", parent, r.index)
        elif r.kind == LayerKind.MODULE:
            draft = _Draft(key, key, r.type, "layer", parent, r.index)
        elif r.type == "slice" and r.attrs.get("dim", 0) >= 2:
            draft = _Draft(key, key, "crop", "op", parent, r.index)
        elif r.type in _MERGES and len(r.input_shapes) >= 2:
            draft = _Draft(key, key, _MERGES[r.type], "merge", parent, r.index)
        else:
            draft = _Draft(key, key, r.type, "op", parent, r.index)
        self.drafts[key] = draft
        return draft

    def _crop_of(self, r: LayerRecord, node_of: dict[int, str]) -> str | None:
        """The crop node a spatial slice continues (U-Net's "copy and crop"), if any."""
        if r.type != "slice" or len(r.inputs) != 1 or r.attrs.get("dim", 0) < 2:
            return None
        key = node_of.get(r.inputs[0])
        draft = self.drafts.get(key) if key is not None else None
        return key if draft is not None and draft.type == "crop" else None

    def _through_views(self, i: int) -> int:
        """The producer behind a chain of views (``x.view(...)`` is not a node)."""
        seen = 0
        while i in self.by_index and _passes(self.by_index[i]) and seen < 10_000:
            i = self.by_index[i].inputs[0]
            seen += 1
        return i

    # ---------------------------------------------------------------- build

    def build(self) -> tuple[list[_Draft], set[tuple[str, str, tuple[int, ...]]]]:
        report = self.report
        node_of: dict[int, str] = {}
        for r in report.layers:
            key = self.key_of(r)
            if key is None:
                continue
            if _passes(r):
                continue  # a view or an Identity: edges pass through it
            crop = self._crop_of(r, node_of)
            if crop is not None:  # a crop slices one axis at a time: one node for the chain
                key = crop
            draft = self._draft(key, r)
            draft.records.append(r)
            node_of[r.index] = key
            if r.index in self.fields:
                draft.rf = self.fields[r.index]  # the last record's field: the node's output
        self.inputs: dict[str, _Draft] = {}
        edges: set[tuple[str, str, tuple[int, ...]]] = set()
        for r in report.layers:
            target = node_of.get(r.index)
            if target is None:
                continue
            for i in r.inputs:
                for source, shape in self._sources(i, r, node_of):
                    if source != target:
                        edges.add((source, target, shape))
        self.outputs: dict[str, _Draft] = {}
        for source, shape, label in self._exits(node_of):
            key = f"<output:{label}>"
            if key not in self.outputs:
                self.outputs[key] = _Draft(key, label, "output", "output", "", 1 << 60)
            edges.add((source, key, shape))
        taken = {d.name for d in self.drafts.values()}
        for d in (*self.inputs.values(), *self.outputs.values()):
            if d.name in taken:  # a layer called "output" (LeNet-5's RBF layer)
                d.name = f"model {d.name}"
        drafts = sorted(self.inputs.values(), key=lambda d: d.first) + \
            sorted(self.drafts.values(), key=lambda d: d.first) + list(self.outputs.values())
        return drafts, edges

    def _shape_read(self, i: int) -> tuple[int, ...]:
        """The per-sample shape of record ``i``'s output."""
        r = self.by_index.get(i)
        return tuple(r.output_shape[1:]) if r is not None else ()

    def _sources(self, i: int, reader: LayerRecord,
                 node_of: dict[int, str]) -> list[tuple[str, tuple[int, ...]]]:
        """(node, shape) of the tensor ``reader`` reads from record ``i``."""
        origin = self._through_views(i)
        shape = self._shape_read(i)
        if origin in node_of:
            return [(node_of[origin], shape)]
        if origin == MODEL_INPUT:
            first = reader if origin == i else self.by_index[_last_view(self.by_index, i)]
            return [(key, shape if origin != i else size)
                    for key, size in self._model_inputs(first)]
        r = self.by_index.get(origin)
        label = self._outside(r.name) if r is not None else f"record {origin}"
        key = f"<input:{label}>"
        if key not in self.inputs:
            self.inputs[key] = _Draft(key, label, "input", "input", "", -1)
        return [(key, self._shape_read(origin) if origin == i else shape)]

    def _outside(self, name: str) -> str:
        """A layer outside the focus, named at the focused module's level ("layer1.1")."""
        level = len(self.roots[0].split(".")) if self.roots else 1
        return ".".join(name.split("#")[0].split(".")[:level])

    def _model_inputs(self, reader: LayerRecord) -> list[tuple[str, tuple[int, ...]]]:
        """(node, shape) of the model inputs ``reader`` reads. Several inputs are told apart
        by their shapes; inputs of one shape share a node (the records do not say which)."""
        sizes = [tuple(s) for s in (self.report.input_sizes or (self.report.input_size,))]
        read = {tuple(s[1:]) for s in reader.input_shapes}
        matched = [s for s in dict.fromkeys(sizes) if s in read] or list(dict.fromkeys(sizes))
        found = []
        for size in matched:
            ks = [k + 1 for k, s in enumerate(sizes) if s == size]
            label = "input" if len(sizes) == 1 else "input " + ",".join(map(str, ks))
            key = f"<model-input:{label}>"
            if key not in self.inputs:
                self.inputs[key] = _Draft(key, label, "input", "input", "", -len(sizes) + ks[0])
            found.append((key, size))
        return found

    def _exits(self, node_of: dict[int, str]) -> list[tuple[str, tuple[int, ...], str]]:
        """(node, shape, output label) of the tensors leaving the drawn part."""
        report = self.report
        outs = list(report.output_producers) or _sinks(report)
        found: list[tuple[str, tuple[int, ...], str]] = []
        many = len(outs) > 1
        for k, i in enumerate(outs):
            origin = self._through_views(i)
            if origin in node_of:
                found.append((node_of[origin], self._shape_read(i),
                              f"output {k + 1}" if many else "output"))
        if self.roots:  # tensors read by layers outside the focus
            for r in report.layers:
                if self.key_of(r) is not None:
                    continue
                for i in r.inputs:
                    origin = self._through_views(i)
                    if origin in node_of:
                        found.append((node_of[origin], self._shape_read(i),
                                      f"to {self._outside(r.name)}"))
        # One output node per leaving tensor: all readers of a tensor share the first's.
        seen: dict[tuple[str, tuple[int, ...]], str] = {}
        return [(source, shape, seen.setdefault((source, shape), label))
                for source, shape, label in found]


def _passes(r: LayerRecord) -> bool:
    """A record that is not a node: a view (``x.view``, ``torch.flatten``) or an
    ``nn.Identity`` (timm's disabled drop-block and anti-aliasing slots), one input each."""
    return len(r.inputs) == 1 and (r.kind == LayerKind.SHAPE or
                                   (r.type == "Identity" and r.kind == LayerKind.MODULE))


def _last_view(by_index: dict[int, LayerRecord], i: int) -> int:
    """The view in a chain from record ``i`` that reads the model input directly."""
    while by_index[i].inputs and by_index[i].inputs[0] in by_index:
        i = by_index[i].inputs[0]
    return i


def _sinks(report: ModelReport) -> list[int]:
    read = {i for r in report.layers for i in r.inputs}
    return [r.index for r in report.layers if r.index not in read][-1:]


# ---------------------------------------------------------------------- repeats


def _signature(d: _Draft) -> tuple:
    """What makes two blocks identical: every record's place, type, shapes and cost."""
    cut = len(d.key) + 1
    return (d.type, tuple((r.name[cut:], r.type, r.input_shapes, r.output_shape, r.params,
                           r.macs, r.kernel_size, r.stride, r.groups) for r in d.records))


def _collapse(drafts: list[_Draft], edges: set):
    """Runs of identical blocks, each fed by the previous alone, become one draft."""
    outs: dict[str, set[str]] = {}
    ins: dict[str, set[str]] = {}
    for s, t, _ in edges:
        outs.setdefault(s, set()).add(t)
        ins.setdefault(t, set()).add(s)
    by_key = {d.key: d for d in drafts}
    signatures = {d.key: _signature(d) for d in drafts if d.kind == "block"}
    absorbed: dict[str, str] = {}  # member key -> the run's key
    runs: dict[str, list[_Draft]] = {}
    for d in drafts:
        if d.kind != "block" or d.key in absorbed:
            continue
        run = [d]
        while True:
            last = run[-1]
            nxt = outs.get(last.key, set())
            if len(nxt) != 1:
                break
            c = by_key[next(iter(nxt))]
            if c.kind != "block" or c.parent != d.parent or c.key in absorbed or \
                    ins.get(c.key) != {last.key} or signatures[c.key] != signatures[d.key]:
                break
            run.append(c)
        if len(run) > 1:
            runs[d.key] = run
            for member in run[1:]:
                absorbed[member.key] = d.key
    if not runs:
        return _finish(drafts, edges, {})
    kept = []
    for d in drafts:
        if d.key in absorbed:
            continue
        run = runs.get(d.key)
        if run:
            d = _Draft(d.key, _run_name(run), d.type, d.kind, d.parent, d.first,
                       [r for m in run for r in m.records], run[-1].rf)
        kept.append(d)
    run_of = {m.key: k for k, run in runs.items() for m in run}
    new_edges = set()
    for s, t, shape in edges:
        rs, rt = run_of.get(s), run_of.get(t)
        if rs is not None and rs == rt:
            continue  # between two blocks of one run
        # Only the last block of a run feeds anything outside it, and only the first is
        # fed from outside (the chain rule above): the run's edges are theirs.
        new_edges.add((rs or s, rt or t, shape))
    return _finish(kept, new_edges, runs)


def _window(r: LayerRecord) -> str:
    """A layer's window as the papers write it: "3x3", "3x3/2" when the stride is not 1."""
    if not r.kernel_size:
        return ""
    text = "x".join(map(str, r.kernel_size))
    if r.stride and any(s != 1 for s in r.stride):
        text += "/" + ("x".join(map(str, r.stride)) if len(set(r.stride)) > 1 else str(r.stride[0]))
    return text


def _run_name(run: list[_Draft]) -> str:
    first, last = run[0].key, run[-1].key
    head, _, a = first.rpartition(".")
    head2, _, b = last.rpartition(".")
    if head == head2 and a.isdigit() and b.isdigit():
        return f"{first}-{b}"
    return f"{first}..{last}"


def _finish(drafts: list[_Draft], edges: set, runs: dict[str, list[_Draft]]):
    ids = {d.key: f"n{k}" for k, d in enumerate(drafts)}
    nodes = []
    for d in drafts:
        run = runs.get(d.key)
        nodes.append(GraphNode(
            id=ids[d.key], name=d.name, type=d.type, kind=d.kind,
            detail=_window(d.records[0]) if d.kind == "layer" and d.records else "",
            params=sum(r.params for r in d.records), macs=sum(r.macs for r in d.records),
            repeat=len(run) if run else 1,
            members=tuple(m.key for m in run) if run else (),
            rf=tuple(d.rf) if d.rf else None,
        ))
    graph_edges = {GraphEdge(ids[s], ids[t], shape) for s, t, shape in edges}
    nodes_records = {ids[d.key]: d.records for d in drafts}
    return _Nodes(nodes, nodes_records), graph_edges


class _Nodes(list):
    """The final nodes, with each node's records kept for shading by time."""

    def __init__(self, nodes: list[GraphNode], records: dict[str, list[LayerRecord]]):
        super().__init__(nodes)
        self.records = records


# ---------------------------------------------------------------------- shading


def _shaded(nodes: _Nodes, shade: str, times: Mapping[str, float] | None) -> tuple[GraphNode, ...]:
    """Each node's cost (MACs, params or measured milliseconds) and its share of the largest."""
    costs: dict[str, float] = {}
    for n in nodes:
        if n.kind in ("input", "output"):
            continue
        if shade == "macs":
            costs[n.id] = float(n.macs)
        elif shade == "params":
            costs[n.id] = float(n.params)
        else:
            seen = set()
            total = 0.0
            for r in nodes.records[n.id]:
                name = r.name.split("#")[0]
                if name in times and name not in seen:
                    seen.add(name)
                    total += float(times[name])
            costs[n.id] = total
    top = max(costs.values(), default=0.0)
    return tuple(replace(n, cost=costs[n.id], weight=costs[n.id] / top if top > 0 else 0.0)
                 if n.id in costs else n for n in nodes)
