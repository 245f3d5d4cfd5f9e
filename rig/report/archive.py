"""One procedure as one archive: its events, its media and its report, with checksums.

`export` writes a tar file holding
- `events.jsonl`: the procedure's events, one per line, byte for byte as the journal holds them;
- `media/...`: every snapshot and video segment (and sidecar) the events name that exists;
- `report/report.html` and `report/report.pdf`;
- `manifest.json`: each member's size and SHA-256, and the procedure's id.
`verify` reads an archive without unpacking it and checks that its members are exactly those
the manifest lists, each with its size and SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rig.events.models import SnapshotTaken, VideoSegment, parse_event
from rig.report.model import build_report
from rig.report.query import ProcedureSpan, procedure_rows
from rig.report.render import write_report

MANIFEST = "manifest.json"
FORMAT = "ductoscopy-procedure-archive/1"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Verification:
    ok: bool
    members: int
    problems: list[str]


def export(journal: Path, span: ProcedureSpan, out: Path) -> Path:
    """Write the archive of `span` to `out` (a .tar file); media are looked for beside the
    journal (the record directory)."""
    rows = procedure_rows(journal, span)
    record_dir = journal.parent
    events = [parse_event(body) for _, body in rows]
    files: dict[str, bytes | Path] = {
        "events.jsonl": "".join(f"{body}\n" for _, body in rows).encode()
    }
    for event in events:
        if isinstance(event, SnapshotTaken | VideoSegment):
            for path in _media_files(record_dir, event.path):
                files[f"media/{path.relative_to(record_dir.resolve()).as_posix()}"] = path
    with tempfile.TemporaryDirectory() as scratch:
        html_path, pdf_path = write_report(build_report(events), record_dir, Path(scratch))
        files["report/report.html"] = html_path.read_bytes()
        files["report/report.pdf"] = pdf_path.read_bytes()
    manifest = {
        "format": FORMAT,
        "procedure": span.procedure,
        "files": {name: _digest(content) for name, content in sorted(files.items())},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        for name, content in sorted(files.items()):
            _add(tar, name, content)
        _add(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    partial.replace(out)  # a crash mid-export never leaves a file that looks complete
    return out


def verify(archive: Path) -> Verification:
    problems: list[str] = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers()}
            manifest_member = members.pop(MANIFEST, None)
            if manifest_member is None:
                return Verification(False, len(members), [f"no {MANIFEST} in {archive}"])
            manifest = json.loads(_read(tar, manifest_member))
            if manifest.get("format") != FORMAT:
                problems.append(f"format {manifest.get('format')!r}, expected {FORMAT!r}")
            listed: dict[str, dict[str, object]] = manifest.get("files", {})
            for name in sorted(set(members) - set(listed)):
                problems.append(f"{name}: in the archive but not in the manifest")
            for name, expected in sorted(listed.items()):
                member = members.get(name)
                if member is None:
                    problems.append(f"{name}: in the manifest but missing")
                    continue
                if not member.isfile():
                    problems.append(f"{name}: not a regular file")
                    continue
                got = _digest_stream(tar, member)
                if got != expected:
                    problems.append(
                        f"{name}: sha256 {got['sha256']} ({got['bytes']} bytes), manifest says "
                        f"{expected.get('sha256')} ({expected.get('bytes')} bytes)"
                    )
    except (OSError, tarfile.TarError, ValueError) as exc:
        return Verification(False, 0, [f"{archive}: cannot be read as an archive: {exc}"])
    return Verification(not problems, len(members), problems)


def _media_files(record_dir: Path, relative: str) -> list[Path]:
    """The file an event names, and its sidecars (same stem), if inside the record directory."""
    root = record_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return []
    return sorted(p for p in path.parent.glob(f"{path.stem}.*") if p.is_file())


def _digest(content: bytes | Path) -> dict[str, object]:
    sha = hashlib.sha256()
    size = 0
    if isinstance(content, Path):
        with content.open("rb") as file:
            while chunk := file.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
    else:
        sha.update(content)
        size = len(content)
    return {"sha256": sha.hexdigest(), "bytes": size}


def _digest_stream(tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, object]:
    """A member's digest, read in chunks (a video segment need not fit in memory)."""
    extracted = tar.extractfile(member)
    if extracted is None:
        raise ValueError(f"{member.name} cannot be read")
    sha, size = hashlib.sha256(), 0
    while chunk := extracted.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
    return {"sha256": sha.hexdigest(), "bytes": size}


def _add(tar: tarfile.TarFile, name: str, content: bytes | Path) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    if isinstance(content, Path):
        info.size = content.stat().st_size
        with content.open("rb") as file:
            tar.addfile(info, file)
        return
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(member)
    if extracted is None:
        raise ValueError(f"{member.name} cannot be read")
    return extracted.read()
