"""What the commands of an offline ceremony share: ``--prepare``, and a proposal's summary."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from aoe_pack.cli._options import FC
from aoe_pack.cli._output import Output
from aoe_pack.errors import UsageError


def prepare_options(f: FC) -> FC:
    """``--prepare`` and ``--out PROPOSAL``, for a command that otherwise signs with --sign-key."""
    f = click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="PROPOSAL",
        help="With --prepare: the proposal file to write (refused if it exists).",
    )(f)
    return click.option(
        "--prepare",
        is_flag=True,
        help="Sign nothing: write the change as a proposal (--out) that each key holder "
        "signs on their own machine (`manifest sign-proposal`), to install once a "
        "threshold signed (`manifest apply-proposal`).",
    )(f)


def check_mode(sign_keys: tuple[str, ...], *, prepare: bool, out: Path | None) -> None:
    """Sign now (--sign-key), or prepare a proposal (--prepare --out): exactly one."""
    if prepare:
        if sign_keys:
            raise UsageError(
                "--prepare signs nothing: drop --sign-key",
                hint="each key holder signs the proposal with `aoe-pack manifest sign-proposal`",
            )
        if out is None:
            raise UsageError("--prepare needs --out PROPOSAL, the file to write")
        return
    if out is not None:
        raise UsageError("--out names the proposal file of --prepare; add --prepare")
    if not sign_keys:
        raise UsageError(
            "Missing option '--sign-key'",
            hint="sign with a threshold of the root's keys, or write a proposal for an "
            "offline ceremony with --prepare --out PROPOSAL",
        )


def report_text(output: Output, report: Any) -> None:
    """A proposal's summary for people: the change, then each threshold."""
    from aoe_pack.repository.proposal import describe_status

    p = report.proposal
    output.line(
        f"  kind       {report.to_dict()['kind']} of repository "
        f"{p.base_root.repository_id or '(no id)'}"
    )
    base = report.to_dict()["base"]
    output.line(
        f"  base       root version {p.base_root.version}, manifest version "
        f"{p.base_manifest.version} ({p.base_manifest_sha256[:16]}…), expires "
        f"{base['manifestExpires']}"
    )
    if report.root is not None:
        r = report.root
        output.line(
            f"  root       version {r.version}: {r.threshold} of {len(r.keys)} key(s) "
            f"(version {r.version_before}: {r.threshold_before} of its keys)"
        )
        for kid in r.keys:
            output.line(f"    {'+' if kid in r.added else ' '} {kid}")
        for kid in r.removed:
            output.line(f"    - {kid}")
    m = report.manifest
    expires = m.to_dict()["expires"]
    expired = "  EXPIRED: prepare it again" if m.expires <= dt.datetime.now(dt.UTC) else ""
    output.line(f"  manifest   version {m.version}, expires {expires}{expired}")
    for c in m.releases:
        detail = f" ({', '.join(c.fields)})" if c.fields else ""
        output.line(f"    {c.change:<8} {c.tag} {c.version}{detail}")
        if c.release is not None:
            for label, text in release_lines(c.release):
                output.line(f"               {label:<8} {text}")
    for pin in m.pins:
        output.line(f"    pin      {pin.tag}: {pin.before or 'none'} -> {pin.after or 'none'}")
    for kid in m.bundle_keys_added:
        output.line(f"    bundle key added {kid}")
    for kid in m.bundle_keys_removed:
        output.line(f"    bundle key removed {kid}")
    for path in m.other:
        output.line(f"    changed  {path}")
    if not (m.releases or m.pins or m.bundle_keys_added or m.bundle_keys_removed or m.other):
        output.line("    no release changes")
    output.line("  signatures")
    for line in describe_status(report.status):
        output.line(f"    {line}")


def release_lines(r: Any) -> list[tuple[str, str]]:
    """What an added release tells devices, for a holder to read before signing it."""
    devices = f"channel {r.channel}, rollout {r.rollout_bp / 100:g}%"
    if r.critical:
        devices += ", critical"
    required = f" (required: {', '.join(r.required_runtimes)})" if r.required_runtimes else ""
    lines = [
        ("sha256", f"{r.sha256} ({r.size} bytes)"),
        ("devices", devices),
        ("app", f"{r.min_app_version or 'any'} to {r.max_app_version or 'any'}"),
        ("runtimes", f"{', '.join(r.runtimes)}{required}"),
        ("signers", ", ".join(r.signers) or "none recorded: the root's keys"),
    ]
    if r.yanked is not None:
        lines.append(("yanked", r.yanked))
    others = [*r.extra, *(f"rollout/{k}" for k in r.rollout_extra)]
    others += [f"yanked/{k}" for k in r.yanked_extra]
    if others:
        lines.append(("other", ", ".join(sorted(others))))
    return lines


def next_step(output: Output, path: Path, report: Any) -> None:
    if report.complete:
        output.line(
            f"every threshold is met: install it with "
            f"`aoe-pack manifest apply-proposal {path} --repo REPO`",
            fg="green",
        )
    else:
        output.line(
            f"each key holder still needed runs `aoe-pack manifest sign-proposal {path} "
            "--sign-key KEY`, then passes the file on"
        )


def save(out: Path, proposal: Any) -> Any:
    """Write a prepared proposal to ``out``; its report."""
    from aoe_pack.publish import ceremony

    ceremony.write_proposal(out, proposal)
    return ceremony.inspect_proposal(proposal)


def show_prepared(output: Output, out: Path, report: Any) -> None:
    """The result of a command run with --prepare."""

    def text() -> None:
        output.line(f"proposal written to {out}", fg="green", bold=True)
        report_text(output, report)
        next_step(output, out, report)

    output.result({"proposal": str(out), **report.to_dict()}, text)
