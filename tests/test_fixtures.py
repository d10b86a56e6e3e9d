"""The in-repo conformance vectors are the shared ones, byte for byte, and unpack safely."""

from __future__ import annotations

import json
import os

import pytest
from conformance_helpers import (
    CONFORMANCE_ARCHIVE,
    CONFORMANCE_CASES,
    CONFORMANCE_SUMS,
    find_shared_dir,
    read_sums,
    skip_missing,
    tree_sums,
    unpack_conformance,
)


def test_in_repo_copy_unpacks_to_its_manifest(tmp_path):
    root = unpack_conformance(cache=tmp_path)
    assert tree_sums(root) == read_sums()
    # The 10 cases with their five files each, the units and the 18 real configs: the copy is the whole set.
    assert set(json.loads((root / "index.json").read_text())) == set(CONFORMANCE_CASES)
    for case in CONFORMANCE_CASES:
        assert {p.name for p in (root / case).iterdir()} == {
            "config.json", "encoder.safetensors", "decoder.safetensors", "input.safetensors", "output.safetensors"}
    assert len(list((root / "real_configs").glob("*.json"))) == 18
    # A second call finds the finished copy instead of unpacking again.
    mtime = (root / "index.json").stat().st_mtime_ns
    assert unpack_conformance(cache=tmp_path) == root and (root / "index.json").stat().st_mtime_ns == mtime


def test_in_repo_copy_equals_the_shared_folder():
    shared = find_shared_dir()
    if shared is None or not (shared / "conformance").is_dir():
        skip_missing("shared_dir", "no ../shared/conformance to compare the in-repo copy with")
    # Every file of the shared folder, with its checksum: rerun scripts/pack_conformance.py when this fails.
    assert tree_sums(shared / "conformance") == read_sums(CONFORMANCE_SUMS)


def test_a_changed_archive_is_refused(tmp_path):
    """A manifest that does not match what the archive holds stops the unpacking, and leaves no copy behind."""
    sums = read_sums()
    name = sorted(sums)[0]
    bad = tmp_path / "SHA256SUMS"
    bad.write_text("".join(f"{'0' * 64 if n == name else d}  {n}\n" for n, d in sums.items()))
    with pytest.raises(RuntimeError, match="does not unpack"):
        unpack_conformance(CONFORMANCE_ARCHIVE, bad, cache=tmp_path / "cache")
    assert os.listdir(tmp_path / "cache" / "nct-test-fixtures") == []


def test_the_packer_is_deterministic_and_round_trips(tmp_path):
    """scripts/pack_conformance.py on a small folder: the same bytes twice, and the unpacker gets the folder back."""
    import importlib.util

    from conformance_helpers import REPO_DIR

    spec = importlib.util.spec_from_file_location("pack_conformance", REPO_DIR / "scripts" / "pack_conformance.py")
    packer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(packer)
    source = tmp_path / "conformance"
    (source / "units").mkdir(parents=True)
    (source / "index.json").write_text('{"X": {}}\n')
    (source / "units" / "data.bin").write_bytes(bytes(range(256)) * 3)
    first = packer.pack(source, tmp_path / "a")
    second = packer.pack(source, tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    root = unpack_conformance(*first, cache=tmp_path / "cache")
    assert tree_sums(root) == tree_sums(source) == read_sums(first[1])
