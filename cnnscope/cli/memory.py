"""``cnnscope memory MODEL``: the peak memory of one training step, planned on meta."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import typer

from cnnscope.cli.common import (
    BatchOpt,
    ExplainOpt,
    FormatOpt,
    InputOpt,
    OutputFormat,
    OutputOpt,
    WideOpt,
    examples,
    parse_size,
    user_errors,
    write_result,
)
from cnnscope.cli.model_args import ArgOpt, parse_args
from cnnscope.cli.options import takes

ORDER = 35


@dataclass(frozen=True)
class MemoryOptions:
    """``cnnscope memory``'s options, in --help order (see ``cli.options.takes``)."""

    model: str = typer.Argument(..., help="Zoo name (see 'cnnscope zoo') or model spec.")
    input: Optional[str] = InputOpt
    batch: int = BatchOpt
    dtype: str = typer.Option("fp32", "--dtype", metavar="fp32|bf16|fp16",
                              help="fp32, or bf16/fp16 (autocast, fp32 master weights).")
    optimizer: str = typer.Option("sgd", "--optimizer", metavar="sgd|sgd-nesterov|adam|adamw",
                                  help="sgd (momentum 0.9), sgd-nesterov (momentum 0.9, Nesterov: as bench trains), adam, adamw.")
    inference: bool = typer.Option(False, "--inference", metavar="",
                                   help="Forward pass only (eval, no autograd): no gradients, "
                                        "no optimizer state, nothing saved for backward.")
    channels_last: bool = typer.Option(False, "--channels-last", metavar="", help="Model and input in channels-last layout.")
    device: str = typer.Option("cpu", "--device", metavar="cpu|cuda|cuda:smXY",
                               help="The device planned for (cuda: an sm_90 GPU); decides the "
                                    "attention kernel. The plan itself always runs on meta.")
    attention: str = typer.Option("auto", "--attention",
                                  metavar="auto|math|flash|efficient|cudnn",
                                  help="Attention kernel to plan (auto: the one PyTorch picks "
                                       "on --device).")
    fit: Optional[str] = typer.Option(None, "--fit", metavar="SIZE",
                                      help="Find the largest batch whose peak fits SIZE (e.g. 80GiB, 24GB).")
    freeze: Optional[List[str]] = typer.Option(None, "--freeze", metavar="MODULE",
                                               help="Freeze the parameters under this module prefix (repeatable).")
    depth: int = typer.Option(1, "--depth", help="Group the activation table to module depth N (0: every module).")
    top: int = typer.Option(10, "--top", help="Rows of the activation table (0: all).")
    format: Optional[OutputFormat] = FormatOpt
    output: Optional[str] = OutputOpt
    wide: bool = WideOpt
    explain: bool = ExplainOpt
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png|svg",
                                       help="Draw the breakdown and the activation memory by module; "
                                            "needs matplotlib (pip install 'cnnscope[plot]').")
    arg: Optional[List[str]] = ArgOpt


@takes(MemoryOptions)
def memory(o: MemoryOptions) -> None:
    """Peak memory of a steady-state training step: parameters, gradients, optimizer state, activations."""
    with user_errors():
        from cnnscope.analysis.memory import check_options, parse_bytes
        from cnnscope.api import fit_batch, plan_memory
        from cnnscope.errors import InvalidOptionError

        check_options(o.dtype, o.optimizer, o.attention, o.device)
        if o.depth < 0:
            raise InvalidOptionError(f"--depth {o.depth} is negative", "use 0 (every module) or more")
        if o.top < 0:
            raise InvalidOptionError(f"--top {o.top} is negative", "use 0 (all) or more")
        budget = parse_bytes(o.fit) if o.fit is not None else None
        if o.plot:
            from cnnscope.report.memory_plot import check_plot_target

            check_plot_target(o.plot, o.output)  # a missing matplotlib fails before any work
        options = dict(dtype=o.dtype, optimizer=o.optimizer, inference=o.inference,
                       channels_last=o.channels_last, freeze=tuple(o.freeze or ()), device=o.device,
                       attention=o.attention, **parse_args(o.arg))
        size = parse_size(o.input)
        if budget is not None:
            plan = fit_batch(o.model, budget, size, **options)
        else:
            plan = plan_memory(o.model, size, o.batch, **options)
        write_result(plan, o.format, o.output, wide=o.wide, explain=o.explain, depth=o.depth, top=o.top)
        if o.plot:
            from cnnscope.report.memory_plot import plot_memory

            plot_memory(plan, o.plot, depth=o.depth, top=o.top or 10)
            typer.echo(f"wrote {o.plot}", err=True)


def register(app: typer.Typer) -> None:
    app.command("memory", epilog=examples(
        "cnnscope memory resnet50 --batch 32",
        "cnnscope memory resnet50 --batch 64 --dtype bf16 --optimizer adamw",
        "cnnscope memory resnet50 --fit 80GiB",
        "cnnscope memory densenet121 --inference --batch 8 -o densenet121.memory.json"))(memory)
