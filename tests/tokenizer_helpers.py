"""Helpers shared by the inference / hub / NeMo / CLI tests (imported by their conftest.py files).

* :class:`FakeHub`: a Hugging Face Hub stand-in served over real HTTP on 127.0.0.1, enough of the protocol for
  ``hf_hub_download`` (HEAD/GET ``/{repo}/resolve/{rev}/{file}`` with ``X-Repo-Commit`` / ``ETag`` /
  ``Content-Length``, ``X-Error-Code`` on 404s) and ``/api/models/{repo}/tree|revision/{rev}``; it logs requests.
* :func:`write_hf_cache`: lay out a repository in an HF cache folder by hand (``refs/``, ``snapshots/``, ``blobs/``).
* :func:`export_case` / the ``jit_case_dir`` fixture: NVIDIA-layout ``.jit`` files (and a ``config.json`` describing the reduced architecture)
  made from a conformance-weight model, named like a released model.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"

#: Conformance case -> released name it is a reduced copy of (used as the fake repository name).
CASE_NAMES = {
    "CI8x8": "Cosmos-0.1-Tokenizer-CI8x8",
    "CI16x16": "Cosmos-0.1-Tokenizer-CI16x16",
    "DI8x8": "Cosmos-0.1-Tokenizer-DI8x8",
    "DI16x16": "Cosmos-0.1-Tokenizer-DI16x16",
    "CV4x8x8": "Cosmos-0.1-Tokenizer-CV4x8x8",
    "CV8x8x8": "Cosmos-0.1-Tokenizer-CV8x8x8",
    "CV8x16x16": "Cosmos-0.1-Tokenizer-CV8x16x16",
    "DV4x8x8": "Cosmos-0.1-Tokenizer-DV4x8x8",
    "DV8x8x8": "Cosmos-0.1-Tokenizer-DV8x8x8",
    "DV8x16x16": "Cosmos-1.0-Tokenizer-DV8x16x16",
}


def case_kwargs(conformance_dir: Path, case: str) -> dict:
    """The reference constructor kwargs of a conformance case (its reduced architecture)."""
    return json.loads((Path(conformance_dir) / case / "config.json").read_text())["kwargs"]


def export_case(load_conformance_model, conformance_dir: Path, case: str, directory: Path, dtype=None) -> Path:
    """Write ``encoder.jit``, ``decoder.jit``, ``autoencoder.jit`` and ``config.json`` of a conformance case.

    ``config.json`` holds the reduced architecture as NVIDIA's reference kwargs (plus the ``architectures`` key
    NVIDIA's own files carry), so ``from_pretrained`` builds the reduced network for the released name.
    """
    import torch

    from nemo_cosmos_tokenizer.hub.jit_export import export_jit

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = load_conformance_model(case)
    export_jit(model, directory, dtype=torch.float32 if dtype is None else dtype)
    config = {"architectures": ["CosmosTokenizer"], "kwargs": case_kwargs(conformance_dir, case)}
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    return directory


def write_hf_cache(cache_dir: Path, repo_id: str, files: dict[str, Path], commit: str = COMMIT,
                   revision: str = "main") -> Path:
    """Lay out ``files`` (name -> source path) as repository ``repo_id`` in an HF cache folder, as hf_hub_download
    does: ``blobs/<etag>``, ``snapshots/<commit>/<name>`` (symlinks to the blobs), ``refs/<revision>``."""
    repo_dir = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        data = Path(source).read_bytes()
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(blob, snapshot), link)
    (repo_dir / "refs" / revision).write_text(commit)
    return repo_dir


class FakeHub:
    """An HTTP server on 127.0.0.1 that serves repositories ``{repo_id: {filename: path}}`` like the Hub.

    Use as a context manager; ``url`` is the endpoint, ``requests`` the ``(method, path)`` log.
    """

    def __init__(self, repos: dict[str, dict[str, Path]], commit: str = COMMIT, revisions: tuple[str, ...] = ("main",)):
        self.repos = {repo: {name: Path(p) for name, p in files.items()} for repo, files in repos.items()}
        self.commit = commit
        self.revisions = set(revisions) | {commit}
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_HEAD(self):
                hub._handle(self, body=False)

            def do_GET(self):
                hub._handle(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def downloads(self) -> list[str]:
        """File names fetched with GET (not HEAD) from ``resolve`` URLs."""
        return [p.rsplit("/", 1)[-1] for m, p in self.requests if m == "GET" and "/resolve/" in p]

    # ------------------------------------------------------------------------------------------------ handler
    def _send(self, handler, status: int, headers: dict[str, str], body: bytes | None) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(body)

    def _error(self, handler, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json",
                   "Content-Length": str(len(body))}
        if code == "EntryNotFound":
            headers["X-Repo-Commit"] = self.commit
        self._send(handler, 404, headers, body if handler.command == "GET" else None)

    def _handle(self, handler, body: bool) -> None:
        path = unquote(handler.path.split("?", 1)[0])
        self.requests.append((handler.command, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 5 and parts[4] in ("tree", "revision"):
            return self._api(handler, "/".join(parts[2:4]), parts[4], parts[5] if len(parts) > 5 else "main")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            files = self.repos.get(repo)
            if files is None:
                return self._error(handler, "RepoNotFound", "Repository not found")
            if revision not in self.revisions:
                return self._error(handler, "RevisionNotFound", "Invalid rev id")
            if filename not in files:
                return self._error(handler, "EntryNotFound", "Entry not found")
            data = files[filename].read_bytes()
            headers = {
                "X-Repo-Commit": self.commit,
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                "Content-Length": str(len(data)),
                "Content-Type": "application/octet-stream",
            }
            return self._send(handler, 200, headers, data if body else None)
        self._error(handler, "RepoNotFound", "Not found")

    def _api(self, handler, repo: str, kind: str, revision: str) -> None:
        files = self.repos.get(repo)
        if files is None:
            return self._error(handler, "RepoNotFound", "Repository not found")
        if revision not in self.revisions:
            return self._error(handler, "RevisionNotFound", "Invalid rev id")
        entries = [{"type": "file", "path": n, "size": p.stat().st_size, "oid": hashlib.sha1(p.read_bytes()).hexdigest()}
                   for n, p in sorted(files.items())]
        if kind == "tree":
            payload = entries
        else:
            payload = {"id": repo, "sha": self.commit, "siblings": [{"rfilename": e["path"]} for e in entries]}
        data = json.dumps(payload).encode()
        self._send(handler, 200, {"Content-Type": "application/json", "Content-Length": str(len(data))},
                   data if handler.command == "GET" else None)


def use_endpoint(monkeypatch, url: str, cache_dir: Path) -> None:
    """Point huggingface_hub at ``url`` (as ``HF_ENDPOINT`` would, but that is read at import) and at an empty
    default cache, online."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def go_offline(monkeypatch, cache_dir: Path) -> None:
    """``HF_HUB_OFFLINE=1`` for code already imported (huggingface_hub reads the variable at import)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    # Any request would fail loudly: there is no server here.
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")


@pytest.fixture(scope="session")
def jit_case_dir(tmp_path_factory, conformance_dir, load_conformance_model):
    """``jit_case_dir(case)`` -> a directory with float32 ``encoder/decoder/autoencoder.jit`` + ``config.json`` of a
    conformance case, exported once per test run (shared by the xdist workers of the run; tests must not write
    into it)."""
    import shutil

    from filelock import FileLock  # a dependency of torch and huggingface_hub

    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's basetemp is <run dir>/popen-gwN: share the run dir, never a previous run's.
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "nct-jit-cases"
    root.mkdir(parents=True, exist_ok=True)

    def get(case: str) -> Path:
        target = root / case
        with FileLock(str(root / f"{case}.lock")):
            if not (target / "config.json").is_file():
                partial = root / f"{case}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                export_case(load_conformance_model, conformance_dir, case, partial)
                partial.rename(target)
        return target

    return get
