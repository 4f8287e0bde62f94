"""Issue 21 item 11: free text never reaches a terminal, Markdown or stderr raw; JSON
keeps it exact; CSV cells a spreadsheet would run as formulas are guarded (OWASP)."""

from __future__ import annotations

import io
import json
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from cnnscope.printable import csv_text, printable
from cnnscope.report.document import (
    Column,
    Document,
    Section,
    cell,
    render_table,
    row,
    to_csv,
    to_json,
    to_markdown,
)

ESCAPED = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _unsafe(text: str) -> list[str]:
    """Characters of ``text`` a terminal would act on (a line break of the output aside)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ESCAPED]


def test_controls_bidi_and_zero_width_become_visible_escapes():
    assert printable("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"  # retitles a terminal
    assert printable("\x1b[2J") == "\\x1b[2J"  # clears it
    assert printable("conv\nrelu\r\t") == "conv\\x0arelu\\x0d\\x09"
    assert printable("a\x7fb\x9bc") == "a\\x7fb\\x9bc"  # DEL and a C1 control (CSI)
    assert printable("abc\u202edcb") == "abc\\u202edcb"  # right-to-left override
    assert printable("\u2066x\u2069") == "\\u2066x\\u2069"  # an isolate
    assert printable("a\u200db\u200bc\ufeff") == "a\\u200db\\u200bc\\ufeff"  # ZWJ, ZWSP, BOM
    assert printable("\U000e0041") == "\\U000e0041"  # a tag character (Cf), beyond the BMP


def test_ordinary_text_is_unchanged():
    for text in ("layer1.0.downsample.0", "Ünïcödé-Schicht", "畳み込み層", "conv 😀",
                 "x|y", "a\\x1b (a backslash is text)"):
        assert printable(text) == text


def test_csv_guard_follows_owasp():
    for formula in ("=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
                    "\tx", "\rx"):
        assert csv_text(formula) == "'" + formula
    for kept in (5, -5, 1.5, -0.25, "-5", "-1.5e3", "+7", "-", "resnet18", "", None):
        assert csv_text(kept) == kept


def _doc(name: str) -> Document:
    columns = (Column("layer", csv="name", shorten=20), Column("MACs", csv="macs", right=True))
    return Document(f"model {name}", (Section(columns, (row(cell(name, name), cell("1,024", 1024)),
                                                         row(cell("total"), "1,024", total=True))),),
                    footer=(f"peak at {name}",), data={"layers": [{"name": name}]})


def _table(doc: Document, terminal: bool, width: int = 80) -> str:
    con = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=terminal)
    render_table(doc, con)
    return con.file.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=40))
def test_random_layer_names_never_reach_output_raw(name):
    doc = _doc(name)
    for terminal in (True, False):
        assert _unsafe(_table(doc, terminal)) == []
    md = to_markdown(doc)
    assert _unsafe(md) == []
    table_rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table_rows) == 2 + 2  # header, rule, the layer, the total: no broken row
    assert json.loads(to_json(doc))["layers"][0]["name"] == name  # JSON: the exact string
    assert to_csv(doc).splitlines()[0] == "name,macs"


def test_markdown_newline_and_pipe_in_a_name_stay_in_their_cell():
    md = to_markdown(_doc("a\nb|c"))
    assert "| a\\x0ab\\|c | 1,024 |" in md


def test_csv_cell_that_would_be_a_formula_is_guarded_numbers_are_not():
    text = to_csv(_doc("=cmd|' /C calc'!A0"))
    assert text.splitlines()[1].startswith("'=cmd")
    assert text.splitlines()[1].endswith(",1024")


NET = """
    from torch import nn

    class Sneaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("\\x1b]0;pwned\\x07\\u202eevil", nn.Conv2d(3, 4, 3))

        def forward(self, x):
            return next(iter(self.children()))(x)

    def build():
        return Sneaky()
"""


def test_a_model_layer_name_is_escaped_in_every_text_output_and_exact_in_json(run, write_file):
    path = write_file("net.py", NET)
    spec = f"{path}:build"
    raw = "\x1b]0;pwned\x07\u202eevil"
    for args in ((), ("--format", "md"), ("--counter", "fvcore")):
        res = run("params", spec, "--input", "3x8x8", *args)
        assert res.exit_code == 0, res.output
        assert _unsafe(res.stdout) == [], args
        assert "\\x1b]0;pwned\\x07\\u202eevil" in res.stdout
    res = run("params", spec, "--input", "3x8x8", "--format", "json")
    assert [layer["name"] for layer in json.loads(res.stdout)["layers"]] == [raw]


def test_an_error_message_reaches_stderr_escaped(run, one_line_error, tmp_path):
    # the hint repeats the path as typed (no repr): only the error printer escapes it
    res = run("check", str(tmp_path / "\x1b[2Jx\u202e.json"))
    line = one_line_error(res)
    assert _unsafe(line) == [] and line.endswith("\\x1b[2Jx\\u202e.json)")
