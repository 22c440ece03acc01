"""The table of targets that ``build`` prints, and the refusals ``inspect`` shows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aoe_pack.cli._output import Output

if TYPE_CHECKING:
    from aoe_pack.convert.outcome import TargetOutcome
    from aoe_pack.convert.pipeline import Conversion

_STATUS_COLOR = {"ok": "green", "parity-failed": "red", "refused": "yellow", "crashed": "red"}


def _figures(o: TargetOutcome) -> tuple[str, str, str]:
    """Relative error, SNR and top-1 of the output furthest from passing."""
    parity = o.parity
    worst = parity.worst if parity else None
    if parity is None or worst is None:
        return "-", "-", "-"
    rel = f"{worst.relative:.1e}" if math.isfinite(worst.relative) else "inf"
    snr = "inf" if math.isinf(worst.snr_db) and worst.snr_db > 0 else f"{worst.snr_db:.0f} dB"
    top1 = parity.top1
    decisive = sum(x.decisive for x in parity.outputs if x.scores)
    return rel, snr, "-" if top1 is None else f"{top1:.0%} of {decisive}"


def show_targets(output: Output, conversion: Conversion) -> None:
    """One row per target: status, parity figures, time, and the reason for a failure."""
    rows = [*conversion.outcomes, *conversion.controls]
    if not rows:
        return
    width = max(len(r.target.name) + (10 if r.control else 0) for r in rows)
    output.line(
        f"  {'target':<{width}}  {'status':<13}  {'rel.error':>9}  {'SNR':>7}  "
        f"{'top-1':>9}  {'time':>7}"
    )
    for r in rows:
        name = r.target.name + (" (control)" if r.control else "")
        rel, snr, top1 = _figures(r)
        seconds = r.convert_seconds + r.parity_seconds
        status = r.status.value
        output.line(
            f"  {name:<{width}}  {status:<13}  {rel:>9}  {snr:>7}  {top1:>9}  {seconds:>5.1f} s",
            fg=_STATUS_COLOR.get(status),
        )
        if r.reason:
            lines = r.reason.splitlines()
            output.line(f"  {'':<{width}}  {lines[0]}")
            for extra in lines[1:]:
                output.line(f"  {'':<{width}}    {extra}")
        if r.error is not None and r.error.hint:
            output.line(f"  {'':<{width}}  hint: {r.error.hint}")
    samples = conversion.samples
    output.line(
        f"  parity: {samples} sample(s); error allowed per output = atol + rtol x the "
        "source's peak magnitude"
    )
    if conversion.inconclusive:
        output.line(
            f"  parity inconclusive: the source's output(s) {', '.join(conversion.inconclusive)} "
            f"barely change over the {samples} samples, so agreement proves little; give "
            '"sampleInputs" (real inputs) in the config',
            fg="yellow",
        )


def show_provenance_targets(output: Output, provenance: Mapping[str, Any]) -> None:
    """``inspect``: each shipped conversion's parity, then each refused target's reason.

    A feature bundle's provenance holds them per model (``models``).
    """
    models = provenance.get("models")
    if isinstance(models, Mapping):
        for key, model in models.items():
            source = model.get("source") or {}
            output.line(f"  model     {key}  source {source.get('path')} ({source.get('format')})")
            _show_one(output, model, prefix=f"{key}/")
        return
    _show_one(output, provenance, prefix="")


def _show_one(output: Output, provenance: Mapping[str, Any], *, prefix: str) -> None:
    for c in provenance.get("conversions", []):
        p = c.get("parity") or {}
        top1 = f"  top1 {p['top1']}" if p.get("top1") else ""
        tol = p.get("tolerance") or {}
        if isinstance(tol, Mapping):
            tol_text = f"rtol {tol.get('rtol')}, atol {tol.get('atol')}"
        else:  # bundles built by aoe-pack 0.1: a max absolute error
            tol_text = f"tolerance {tol}"
        flag = "  INCONCLUSIVE" if p.get("conclusive") is False else ""
        output.line(
            f"  parity    {prefix}{c.get('target')}: max {p.get('maxAbs')}{top1}  "
            f"({tol_text}, {p.get('samples')} samples){flag}"
        )
    refused: Sequence[Mapping[str, Any]] = provenance.get("refused", [])
    for r in refused:
        reason = str(r.get("reason") or "").splitlines()
        output.line(
            f"  refused   {prefix}{r.get('target')}: {r.get('status')} ({r.get('code')}): "
            f"{reason[0] if reason else ''}"
        )
