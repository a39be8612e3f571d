"""The entry points: a paper file or text to its `Draft`."""

from __future__ import annotations

from pathlib import Path

from grader.authoring.draft.answer_key import _answer_key_start
from grader.authoring.draft.builder import _Builder
from grader.authoring.draft.record import Draft
from grader.authoring.draft.structure import _read_structure
from grader.errors import InputError


def read_paper(path: str | Path, exam: str | None = None) -> Draft:
    """Read an exam paper (UTF-8 with or without BOM, UTF-16 with BOM, or cp1252) and draft its rubric."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such paper file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read the paper: {exc.strerror or exc}") from None
    return draft_rubric(_decode(raw, path), str(path), exam or path.stem)


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(path, f"cannot decode the paper as UTF-16: {exc.reason}") from None
    for encoding in ("utf-8-sig", "cp1252"):  # cp1252: Word and old editors on Windows
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(path, "cannot decode the paper: it is neither UTF-8 nor cp1252 text")


def draft_rubric(text: str, source: str, exam: str | None = None) -> Draft:
    """The rubric a paper implies, and notes on what to check; `source` names the paper in errors.

    Raises `InputError` (naming `source`) when the paper is empty or has no numbered questions.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InputError(source, "the paper is empty")
    lines = text.split("\n")
    start = _answer_key_start(lines)
    paper = _read_structure(lines[:start], source)
    builder = _Builder(paper, source, list(enumerate(lines[start:], start=start + 1)))
    return builder.build(exam or Path(source).stem or "exam")
