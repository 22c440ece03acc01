"""``bench``: time a bundle's artifacts on this device; ``bench report`` compares devices.

``aoe-pack bench BUNDLE ...`` and ``aoe-pack bench report A.json B.json ...``
share one name: :class:`_BenchGroup` treats a first argument that is not a
subcommand as the BUNDLE of the default ``run`` command. A bundle file that is
literally called ``report`` is written ``./report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    BUNDLE_FILE,
    INPUT_FILE,
    decryption_key_option,
    json_option,
    key_password_option,
    load_verification_keys,
)
from aoe_pack.cli._output import Output

if TYPE_CHECKING:
    from aoe_pack.bench import BenchReport

DEFAULT_COMMAND = "run"


class _BenchGroup(click.Group):
    """A group whose first argument, unless it names a subcommand, goes to ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "BUNDLE [OPTIONS]  |  report REPORT... --out FILE")


@click.group(cls=_BenchGroup)
def bench() -> None:
    """Time every artifact of a bundle on this device, and compare devices.

    \b
    aoe-pack bench BUNDLE [--trusted-key PUB] [--decryption-key KEY] [--runs N]
                          [--json] [--out REPORT.json]
        load each artifact through its runtime here; report load time,
        latency p50/p90/p99 and peak memory, with this device's description
        (`aoe-pack bench run --help` lists every option)
    aoe-pack bench report A.json B.json ... --out report.html|report.md
        merge reports from several devices into one table and plot

    \b
    Example:
      aoe-pack bench mnist.aoe --trusted-key keys/release.pub --out this-device.json
      aoe-pack bench report this-device.json other-device.json --out report.html
    """


@bench.command("run")
@click.argument("bundle", type=BUNDLE_FILE)
@click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    metavar="PUB",
    help="Check the signatures first, as `verify` does (path or env://VAR; repeatable). "
    "Without it only integrity is checked, and the report says so.",
)
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many distinct trusted keys must have signed (with --trusted-key).",
)
@decryption_key_option
@key_password_option("--decryption-key")
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Timed inferences per artifact.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Untimed inferences before the timed ones.",
)
@click.option(
    "--device-name",
    metavar="NAME",
    help="How this device is labelled in comparisons (default: the host name).",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON report here (for `aoe-pack bench report`).",
)
@json_option
def run(
    bundle: Path,
    trusted_keys: tuple[str, ...],
    threshold: int,
    decryption_key: str | None,
    key_passwords: tuple[tuple[str, str], ...],
    runs: int,
    warmup: int,
    device_name: str | None,
    out: Path | None,
    json_mode: bool,
) -> None:
    """Load every artifact of BUNDLE through its runtime here and time it.

    Each artifact runs in a fresh process, fed seeded random inputs drawn
    within the config's declared ranges: load time, latency p50/p90/p99 over
    --runs, and that process's peak memory. An encrypted bundle needs
    --decryption-key; its models are decrypted into anonymous memory only,
    never into a file. Without --trusted-key only the bundle's integrity is
    checked, not who signed it (the report records which).

    \b
    Example:
      aoe-pack bench mnist.aoe --decryption-key keys/phone.key \\
          --trusted-key keys/signer.pub --out pixel8.json
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        import json

        from aoe_pack._io import write_atomic
        from aoe_pack.bench import bench_bundle

        trusted, dkey = load_verification_keys(trusted_keys, decryption_key, key_passwords)
        output.info(f"benchmarking {bundle} ({runs} runs per artifact)")
        report = bench_bundle(
            bundle,
            trusted_keys=trusted,
            threshold=threshold,
            decryption_key=dkey,
            runs=runs,
            warmup=warmup,
            device_name=device_name,
            report=output.info,
        )
        for note in report.notes:
            output.warn(note)
        if out is not None:
            text = json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
            write_atomic(out, text.encode())

    output.result(report.to_dict(), lambda: _print_table(output, report, out))


def _print_table(output: Output, report: BenchReport, out: Path | None) -> None:
    b, d = report.bundle, report.device
    output.line(f"{b.tag} {b.version} on {d.summary()}", bold=True)
    output.line(f"  {d.kernel}, {d.python}; {report.runs} runs after {report.warmup} warm-up")
    width = max(len(a.name) for a in report.artifacts)
    output.line(
        f"  {'artifact':<{width}}  {'load ms':>9}  {'p50 ms':>9}  {'p90 ms':>9}  "
        f"{'p99 ms':>9}  {'peak MiB':>9}"
    )
    for a in report.artifacts:
        if a.latency is None or a.load_ms is None or a.peak_mib is None:
            output.line(f"  {a.name:<{width}}  {a.status.value}: {a.error}", fg="yellow")
            continue
        lat = a.latency
        output.line(
            f"  {a.name:<{width}}  {a.load_ms:>9.2f}  {lat.p50:>9.3f}  {lat.p90:>9.3f}  "
            f"{lat.p99:>9.3f}  {a.peak_mib:>9.1f}"
        )
    if d.runtimes:
        output.line("  runtimes: " + ", ".join(f"{k} {v}" for k, v in d.runtimes.items()))
    if out is not None:
        output.line(f"  report written to {out}")


@bench.command("report")
@click.argument("reports", nargs=-1, required=True, type=INPUT_FILE)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.html (tables and SVG plots, self-contained) or FILE.md (markdown).",
)
@json_option
def report_cmd(reports: tuple[Path, ...], out: Path, json_mode: bool) -> None:
    """Merge JSON reports from several devices into one comparison.

    \b
    Example:
      aoe-pack bench report pixel8.json iphone15.json ci-x86.json --out report.html
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.bench import write_comparison

        comparison = write_comparison(list(reports), out)
        for note in comparison.notes:
            output.warn(note)

    def text() -> None:
        output.line(
            f"wrote {out}: {len(comparison.artifacts)} artifact(s) on "
            f"{len(comparison.devices)} device(s)",
            fg="green",
            bold=True,
        )

    output.result({"out": str(out), **comparison.to_dict()}, text)
