"""cnnscope from Python: analyse, export, compare, and check a module you built yourself.

    python examples/api_script.py [OUT_DIR]

Everything runs on the meta device (no weights are allocated), so it takes seconds.
"""

import sys
import tempfile
from pathlib import Path

import cnnscope

HERE = Path(__file__).resolve().parent


def main(out_dir: str | None = None) -> None:
    out = Path(out_dir or tempfile.mkdtemp(prefix="cnnscope-"))
    out.mkdir(parents=True, exist_ok=True)

    # 1. A zoo model: per-layer records and exact totals.
    report = cnnscope.analyze("resnet18")
    t = report.totals
    print(f"resnet18: {t.params:,} params, {t.macs:,} MACs, output {report.output_shapes[0]}")

    # 2. The layer table as a pandas DataFrame, and as CSV / JSON files.
    frame = report.to_pandas()
    top = frame.nlargest(3, "macs")[["name", "type", "macs"]]
    print("most expensive layers:\n" + top.to_string(index=False))
    report.to_csv(out / "resnet18.layers.csv")
    report.to_json(out / "resnet18.json")

    # 3. Your own model from a file, with builder arguments (same as --arg width=32).
    spec = f"{HERE / 'custom_model.py'}:build"
    custom = cnnscope.analyze(spec, width=32)
    print(f"custom_model width=32: {custom.totals.params:,} params at input "
          f"{'x'.join(map(str, custom.input_size))}")

    # 4. A module you already built (on the CPU, with real weights): traced through a
    #    meta copy, so it is neither changed nor copied.
    module = cnnscope.resolve(spec, width=32).build("cpu")
    same = cnnscope.analyze(module, (3, 32, 32))
    assert same.totals.params == custom.totals.params
    assert next(module.parameters()).device.type == "cpu"

    # 5. Side by side, ratios against the first model.
    comparison = cnnscope.compare(["vgg16", "googlenet"])
    for m in comparison.models:
        print(f"{m.model}: depth {m.depth}, peak activations {m.peak.bytes:,} bytes")
    print(comparison.ratio_line(comparison.models[1]))
    print(f"wrote {out / 'resnet18.layers.csv'} and {out / 'resnet18.json'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
