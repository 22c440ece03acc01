"""One target converted and measured; a second try with ONNX functions expanded; vouching.

:func:`measure` converts the source for one target and runs the artifact's
parity check. When that fails and the source's ONNX form calls ONNX
functions, it tries once more on the expanded form (see
:func:`aoe_pack.convert.onnx_graph.expand_functions`). :func:`vouched` then
accepts a reduced-precision variant only when its float32 counterpart passed
on the same graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aoe_pack.convert.api import Array, SourceModel, Target, control_of, tolerance_of
from aoe_pack.convert.outcome import Status, TargetOutcome
from aoe_pack.convert.parity import compare
from aoe_pack.convert.registry import converter_for
from aoe_pack.errors import (
    AoePackError,
    ConversionError,
    ParityError,
    RuntimeCrashError,
    UnsupportedModelError,
)

if TYPE_CHECKING:
    from aoe_pack.convert.context import BuildContext
    from aoe_pack.convert.isolate import Feeds


@dataclass(frozen=True)
class Measuring:
    """What every target of one build is converted from and measured against."""

    ctx: BuildContext
    source: SourceModel
    feeds: Feeds
    expected: Sequence[Sequence[Array]]
    names: list[str]
    kinds: list[str | None]


def attempt(
    job: Measuring, target: Target, control: bool, expand: bool, *, again: bool = False
) -> tuple[TargetOutcome, bool]:
    """The target's outcome, and whether its converter read the source's ONNX form.

    ``again``: a second measurement, in a folder of its own (see :func:`vouched`).
    """
    from aoe_pack.convert.isolate import run_artifact

    ctx, source = job.ctx, job.source
    conv = converter_for(target)
    start = time.perf_counter()
    base = TargetOutcome(target=target, status=Status.REFUSED, control=control)
    role = ("control" if control else "variant") if again else None
    target_ctx = ctx.for_target(target, expand_functions=expand, again=role)
    try:
        artifact = conv.convert(source, target, target_ctx)
    except AoePackError as e:
        outcome = replace(base, error=e, convert_seconds=time.perf_counter() - start)
        return outcome, target_ctx.used_onnx
    except Exception as e:  # noqa: BLE001 - a converter's (a plugin's?) bug fails its target only
        error = ConversionError(
            f"{target.name}: the {target.runtime} converter failed: {type(e).__name__}: {e}"
        )
        outcome = replace(base, error=error, convert_seconds=time.perf_counter() - start)
        return outcome, target_ctx.used_onnx
    # Expanded only if the converter read the ONNX form (a Keras source's
    # tflite target never does): nothing else may claim the expansion's tools.
    expanded = expand and target_ctx.used_onnx
    if expanded:
        expansion = ctx.expanded_onnx(source)
        tools = expansion[1] if expansion else {}
        artifact = replace(artifact, tools={**artifact.tools, **tools})
    converted = time.perf_counter()
    base = replace(base, artifact=artifact, convert_seconds=converted - start, expanded=expanded)
    try:
        got = run_artifact(artifact, job.feeds, label=target.name)
        parity = compare(
            job.expected,
            got,
            tolerance=tolerance_of(conv, target),
            names=job.names,
            kinds=job.kinds,
        )
    except RuntimeCrashError as e:
        status = Status.CRASHED
        outcome = replace(base, status=status, error=e, parity_seconds=_since(converted))
        return outcome, target_ctx.used_onnx
    except ParityError as e:
        status = Status.PARITY_FAILED
        outcome = replace(base, status=status, error=e, parity_seconds=_since(converted))
        return outcome, target_ctx.used_onnx
    except AoePackError as e:
        return replace(base, error=e, parity_seconds=_since(converted)), target_ctx.used_onnx
    failure = parity.failure()
    outcome = replace(
        base,
        status=Status.OK if failure is None else Status.PARITY_FAILED,
        parity=parity,
        error=None if failure is None else ParityError(f"{target.name}: {failure}"),
        parity_seconds=_since(converted),
    )
    return outcome, target_ctx.used_onnx


def measure(job: Measuring, target: Target, control: bool) -> TargetOutcome:
    """The target as the source is; failing that, with the source's ONNX functions expanded.

    A runtime may lack an op that the ONNX spec defines as a function of
    simpler ones (MNN has no Attention, ncnn no Swish), or run it wrongly;
    the spec's own body then often converts, and parity judges it against
    the source as it is. The artifact names ``onnx-inliner`` among its
    tools. When the second try fails too, the first outcome stands.
    """
    first, used_onnx = attempt(job, target, control, expand=False)
    retry = isinstance(first.error, _RETRIED)
    if first.ok or not retry or not used_onnx or not _has_expansion(job.ctx, job.source):
        return first
    second, _ = attempt(job, target, control, expand=True)
    if not second.ok:
        return with_second_reason(first, second)
    return replace(second, convert_seconds=second.convert_seconds + first.convert_seconds)


_RETRIED = (UnsupportedModelError, ConversionError, ParityError, RuntimeCrashError)
"""The failures a model's expanded ONNX functions may cure (not a missing tool, say)."""


def with_second_reason(first: TargetOutcome, second: TargetOutcome) -> TargetOutcome:
    """The first outcome, its reason followed by why the expanded model failed as well."""
    if first.error is None or not second.reason:
        return first
    reason = (second.reason.splitlines() or [""])[0]
    message = f"{first.error.message}\n(with its ONNX functions expanded: {reason})"
    try:
        error = type(first.error)(message, hint=first.error.hint)
    except TypeError:  # an error class that takes more than a message
        return first
    return replace(first, error=error)


def _has_expansion(ctx: BuildContext, source: SourceModel) -> bool:
    """Whether the source's ONNX form calls ONNX functions that can be expanded."""
    try:
        return ctx.expanded_onnx(source) is not None
    except Exception:  # noqa: BLE001 - no ONNX form at all: the first outcome already says why
        return False


Remeasure = Callable[[Target, bool, bool], TargetOutcome]
"""Convert and measure (target, control, expand) once more."""


def vouched(
    outcome: TargetOutcome,
    done: Mapping[str, TargetOutcome],
    remeasure: Remeasure | None = None,
) -> TargetOutcome:
    """A passed reduced variant fails when its float32 counterpart did not pass.

    The counterpart vouches only for a conversion of the same graph: when one
    of the two passed with the source's ONNX functions expanded and the other
    without, the variant is measured again (``remeasure``) on the
    counterpart's graph; failing that, the counterpart on the variant's graph
    (as a control: its own outcome stands). The variant fails if neither passes.
    """
    if not outcome.ok:
        return outcome
    t = outcome.target
    control_variant = control_of(converter_for(t), t.variant)
    if control_variant is None:
        return outcome
    control = done[Target(runtime=t.runtime, variant=control_variant).name]
    if control.ok and control.expanded != outcome.expanded:
        if remeasure is None:
            raise ValueError("a variant and its control differ in graph: remeasure is needed")
        return _on_one_graph(outcome, control, remeasure)
    if control.ok:
        return outcome
    what = (
        "fails parity" if control.status is Status.PARITY_FAILED else f"was {control.status.value}"
    )
    error = ParityError(
        f"{t.name}: not accepted because its float32 counterpart {control.target.name} "
        f"{what} ({control.reason}); a looser tolerance must not hide a conversion error",
        hint=f"fix what {control.target.name} reports first",
    )
    return replace(outcome, status=Status.PARITY_FAILED, error=error)


def _on_one_graph(
    outcome: TargetOutcome, control: TargetOutcome, remeasure: Remeasure
) -> TargetOutcome:
    """A passed variant and its passed counterpart measured on one graph, else a failure."""
    t = outcome.target
    again = remeasure(t, outcome.control, control.expanded)
    if again.ok:  # the variant passes on its counterpart's graph too
        return again
    as_control = True  # else the counterpart, measured on the variant's graph, may vouch
    if remeasure(control.target, as_control, outcome.expanded).ok:
        return outcome
    graph = "with its ONNX functions expanded" if control.expanded else "as it is"
    error = ParityError(
        f"{t.name}: not accepted because its float32 counterpart {control.target.name} "
        f"passed only on the model {graph}, where this variant fails ({again.reason})",
        hint=f"drop {t.name}, or ship {control.target.name}",
    )
    return replace(outcome, status=Status.PARITY_FAILED, error=error, artifact=None)


def _since(start: float) -> float:
    return time.perf_counter() - start
