"""Grouping layer records by module depth (``--depth N``); totals never change."""

from __future__ import annotations

from cnnscope.trace.records import LayerRecord, ModelReport


def group_by_depth(report: ModelReport, depth: int | None) -> list[LayerRecord]:
    """Rows of the table at module depth ``depth`` (None or 0: every layer).

    A layer deeper than ``depth`` is summed into its ancestor at that depth, in order of
    first appearance. Sums of params, MACs, FLOPs are exact: grouping only regroups.
    """
    layers = report.visible_layers()
    if not depth:
        return layers
    types = dict(report.module_types)
    groups: dict[str, list[LayerRecord]] = {}
    for r in layers:
        key = ".".join(r.name.split(".")[:depth])
        groups.setdefault(key, []).append(r)
    rows = []
    for i, (key, members) in enumerate(groups.items()):
        if len(members) == 1 and members[0].name == key:
            rows.append(members[0])
            continue
        first, last = members[0], members[-1]
        rows.append(LayerRecord(
            index=i,
            name=key,
            type=types.get(key.split("#")[0], first.type),
            kind="group",
            inputs=(),
            input_shapes=first.input_shapes,
            output_shape=last.output_shape,
            params=sum(m.params for m in members),
            trainable_params=sum(m.trainable_params for m in members),
            macs=sum(m.macs for m in members),
            flops=sum(m.flops for m in members),
            activations=sum(m.activations for m in members),
            bytes_moved=sum(m.bytes_moved for m in members),  # each layer's own traffic
            unsupported=tuple(sorted({u for m in members for u in m.unsupported})),
        ))
    return rows
