"""``build``: configs in, one signed (and encrypted) bundle out."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoe_pack.cli import _streams
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    INPUT_FILE,
    json_option,
    key_password_option,
    load_signing_keys,
    verbosity_options,
)
from aoe_pack.cli._output import Output, human_size
from aoe_pack.cli._targets import show_targets

if TYPE_CHECKING:
    from aoe_pack.assemble import ModelBuild
    from aoe_pack.bundle import Progress
    from aoe_pack.config.model import ModelConfig


class _Shown:
    """A build's warnings, notes, targets tables and progress bar, as the terminal shows them."""

    def __init__(self, output: Output) -> None:
        self.output = output

    def warning(self, message: str) -> None:
        self.output.warn(message)

    def note(self, message: str) -> None:
        self.output.info(message)

    def model_started(self, key: str, config: ModelConfig) -> None:
        if key:
            self.output.line(f"model {key} ({config.model_name})", bold=True)

    def model_prepared(self, build: ModelBuild) -> None:
        if build.conversion is not None:
            show_targets(self.output, build.conversion)

    def converting(self) -> AbstractContextManager[object]:
        return _streams.frameworks()

    def writing(self, out: Path, total: int) -> AbstractContextManager[Progress | None]:
        return self.output.progress(f"building {out.name}", total)


@click.command()
@click.argument("configs", metavar="CONFIG...", nargs=-1, required=True, type=INPUT_FILE)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the bundle (OUT.aoe). Written atomically; an existing file is "
    "refused unless --force is given.",
)
@click.option(
    "--sign-key",
    "sign_keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="Signing private key (ed25519/p256): a path, env://VAR, or a key held in a token "
    "(pkcs11:token=...;object=...) or a KMS (awskms:///alias/...): docs/keys.md. "
    "Repeat for several.",
)
@key_password_option("--sign-key")
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="PUB",
    help="Encrypt for this public key (x25519, p256-kem or mlkem768-x25519). Repeatable.",
)
@click.option(
    "--encryption-key-file",
    "kek_files",
    multiple=True,
    metavar="FILE",
    help="Also wrap the data key with this symmetric key (aoe-pack keygen --type aes256): "
    "the AoE-style key embedded in the app. Repeatable.",
)
@click.option("--no-encrypt", is_flag=True, help="Store the model unencrypted (signed only).")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="RUNTIME[:VARIANT]",
    help='Convert for this target instead of the config\'s "targets" (repeatable), e.g. '
    "tflite:fp16, onnx:basic, ort, mnn:fp16, ncnn. Needs aoe-pack[convert].",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option(
    "--skip-failed-targets",
    is_flag=True,
    help="Write the bundle with the targets that passed; the failed ones are recorded, with "
    "their reasons, in its signed provenance. Default: any failed target means no bundle.",
)
@json_option
@verbosity_options
def build(
    configs: tuple[Path, ...],
    out: Path,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    recipients: tuple[str, ...],
    kek_files: tuple[str, ...],
    no_encrypt: bool,
    targets: tuple[str, ...],
    force: bool,
    skip_failed_targets: bool,
    json_mode: bool,
) -> None:
    """Validate CONFIG and pack its model into a signed, encrypted .aoe bundle.

    \b
    Example:
      aoe-pack keygen --out keys/signer
      aoe-pack keygen --type x25519 --out keys/phone
      aoe-pack build sample_models/mnist/config.json --out mnist.aoe \\
          --sign-key keys/signer.key --recipient keys/phone.pub

    Encryption is on unless the config says "encrypt": false or --no-encrypt is
    given; it then needs at least one --recipient or --encryption-key-file.
    Set SOURCE_DATE_EPOCH for reproducible timestamps: an unencrypted build of
    the same inputs is byte-identical.

    With "targets" in the config (or --target), the model is a source: it is
    converted for each target, and each artifact runs in a process of its own
    on the same inputs as the source (a runtime's crash fails only its target).
    Every target is tried and shown in one table (status, relative error, SNR,
    top-1 agreement, time, and the reason for a failure). Any failed target
    means no bundle (exit 1) unless --skip-failed-targets is given.

    \b
    Several CONFIGs sharing a tag and version make one feature bundle, each
    model in the folder of its files' name, released and updated as a unit:
      aoe-pack build sample_models/bankcard/detector/config.json \\
          sample_models/bankcard/recognizer/config.json --out bankcard.aoe ...
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        built = api.build(
            configs=configs,
            out=out,
            sign_keys=load_signing_keys(sign_keys, key_passwords),
            recipients=recipients,
            encryption_keys=kek_files,
            encrypt=False if no_encrypt else None,
            targets=targets,
            skip_failed_targets=skip_failed_targets,
            events=_Shown(output),
            overwrite=force,
        )
    result = built.result

    def text() -> None:
        m = result.manifest
        output.line(f"built {result.path} ({human_size(result.size)})", fg="green", bold=True)
        output.line(f"  model     {m.model.tag} {m.model.version} ({m.model.runtime})")
        for f in m.files:
            output.line(f"  file      {f.path}  {human_size(f.size)}  sha256:{f.sha256[:16]}…")
        enc = m.encryption
        recipients = f"AES-256-GCM for {len(enc.recipients)} recipient(s)" if enc else "no"
        output.line(f"  encrypted {recipients}")
        for k in result.signers:
            output.line(f"  signed by {k}")

    output.result(built.to_dict(), text)
