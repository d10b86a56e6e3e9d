"""Pack the conformance vectors into the repository: ``tests/fixtures/conformance.tar.xz`` + ``SHA256SUMS``.

The vectors (``../shared/conformance``: golden tensors of the reference Cosmos networks, see its README.md) are
the proof of exactness, so a clone carries them. They are packed losslessly: the weights are random float32
whose mantissas do not compress (xz gets ~50 % of 23 MB, most of it from the bfloat16 codebooks and the 8-bit
inputs); a float16 or regenerated copy would no longer prove bit-exactness.

The archive is deterministic (sorted names, zero mtimes and owners), so packing the same folder twice gives
the same bytes. ``SHA256SUMS`` lists every file of the folder; the tests check the unpacked copy against it
(and against ``../shared/conformance`` when that is present).

Usage::

    python scripts/pack_conformance.py [--source ../shared/conformance] [--out tests/fixtures]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import os
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file())


def pack(source: Path, out: Path) -> tuple[Path, Path]:
    """Write ``out/conformance.tar.xz`` and ``out/SHA256SUMS`` from ``source`` (a ``conformance`` folder)."""
    out.mkdir(parents=True, exist_ok=True)
    files = _files(source)
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(source).as_posix()}\n"
                   for p in files)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(f"conformance/{path.relative_to(source).as_posix()}")
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with path.open("rb") as f:
                tar.addfile(info, f)
    packed = lzma.compress(raw.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    archive, manifest = out / "conformance.tar.xz", out / "SHA256SUMS"
    for target, data in ((archive, packed), (manifest, sums.encode())):
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, target)  # never leave a half archive under the real name
    return archive, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "conformance",
                        help="the conformance folder (default: ../shared/conformance)")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures", help="default: tests/fixtures")
    args = parser.parse_args(argv)
    if not (args.source / "index.json").is_file():
        print(f"error: {args.source} is not a conformance folder (no index.json)\n"
              "hint: pass --source /path/to/shared/conformance", file=sys.stderr)
        return 2
    archive, manifest = pack(args.source, args.out)
    print(f"wrote {archive} ({archive.stat().st_size / 1e6:.2f} MB) and {manifest} "
          f"({len(manifest.read_text().splitlines())} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
