"""The rubric a paper implies: ids, the end answer key filled in, marks settled, model answers as points.

Every guess on the way is a `Note`, written as a `# check:` comment.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

from grader.authoring.draft.answer_key import _excerpt, _key_fit, _key_targets, _KeyEntry, _part_answers, _read_key
from grader.authoring.draft.lines import _keys_in
from grader.authoring.draft.markup import _clean, _flat
from grader.authoring.draft.points import _answer_pieces, _fit
from grader.authoring.draft.questions import _NO_KEY, _Item, _paragraphs, _Question, _question
from grader.authoring.draft.record import Draft, Note, Section, _count
from grader.authoring.draft.structure import _Paper
from grader.exam.rubric import parse_rubric

DEFAULT_MARKS = 1.0
"""Marks of a question when neither it, its section nor the exam says."""


class _Builder:
    def __init__(self, paper: _Paper, source: str, key_lines: list[tuple[int, str]] | None = None) -> None:
        self.paper = paper
        self.source = source
        self.notes: list[Note] = []
        self.questions = [_question(block) for block in paper.blocks]
        self.key_lines = key_lines or []
        """The answer key at the end of the paper, from its heading: (line number, line)."""
        self.key_entries = 0
        self.unmatched: list[str] = []
        self.from_key: set[str] = set()
        """Items an answer-key entry was given to: a second entry for one is noted."""

    def build(self, exam: str) -> Draft:
        self._assign_ids()
        if self.key_lines:
            self._apply_key()
        self._settle_marks()
        data: dict[str, Any] = {"exam": exam, "version": 1, "questions": []}
        if self.paper.title:
            data["title"] = self.paper.title
        stems: dict[str, str] = {}
        for question in self.questions:
            if question.stem:
                letters = ", ".join(i.suffix[len(question.id) :] for i in question.items)
                stems[question.items[0].suffix] = f"{question.id} ({letters}): {question.stem}"
            for item in question.items:
                data["questions"].append(self._question_data(item))
        total = sum(q["marks"] for q in data["questions"])
        if self.paper.total is not None and not math.isclose(total, self.paper.total, abs_tol=1e-6):
            said = f"the paper says {self.paper.total:g} marks, the questions add up to {total:g}"
            self.notes.insert(0, Note(None, None, said))
        rubric = parse_rubric(data, self.source)
        sections = tuple(
            Section(s.name, s.marks, tuple(i.suffix for q in self.questions if q.section == k for i in q.items))
            for k, s in enumerate(self.paper.sections)
        )
        sections = tuple(s for s in sections if s.question_ids)
        return Draft(rubric, tuple(self.notes), self.source, sections, stems, self.key_entries, tuple(self.unmatched))

    def _assign_ids(self) -> None:
        numbers = [q.number for q in self.questions]
        restart = len(set(numbers)) < len(numbers)
        prefixes = self._prefixes() if restart else {}
        seen: set[str] = set()
        for question in self.questions:
            prefix = prefixes.get(question.section, "Q") if restart else "Q"
            qid = f"{prefix}{question.number}"
            while qid in seen:  # numbering that repeats inside one section
                qid += "'"
            seen.add(qid)
            question.id = qid
            for item in question.items:
                item.suffix = f"{qid}{item.suffix}"

    def _prefixes(self) -> dict[int | None, str]:
        prefixes: dict[int | None, str] = {None: "Q"}
        for k, section in enumerate(self.paper.sections):
            m = re.match(r"(?:section|part)\s+([A-Za-z]+|\d+)\b", section.name, re.I)
            if m:
                candidate = m[1].upper() if m[1].isalpha() else f"S{m[1]}."
            else:
                letter = re.search(r"[A-Za-z]", section.name)
                candidate = letter[0].upper() if letter else f"S{k + 1}."
            if candidate in prefixes.values():
                candidate = f"S{k + 1}."
            prefixes[k] = candidate
        return prefixes

    # ---- the answer key at the end: which question each entry names, and what it fills ----

    def _apply_key(self) -> None:
        """Fill what the paper left without a key or answer from the answer key at its end; note the rest."""
        entries = _read_key(self.key_lines, lambda name: self._section_named(name) is not None)
        self.key_entries = len(entries)
        placed: dict[int, _Question | None] = {}
        loose = []
        for entry in entries:
            section = self._section_named(entry.section) if entry.section else None
            if section is None:
                loose.append(entry)  # a sub-heading the paper does not have ("MCQs") names no section
            else:
                placed[id(entry)] = self._in_section(section, entry.number)
        placed.update(self._place_loose(loose))
        for entry in entries:
            if id(entry) not in placed:
                continue  # numbers the paper could be read more than one way: noted, not used
            question = placed[id(entry)]
            if _key_fit(entry, question) == "missing":
                self.unmatched.append(entry.label)
            else:
                self._fill(entry, question)
        if self.unmatched:
            said = f"the answer key at the end names {', '.join(self.unmatched)}, which the paper has no question for"
            self._note(None, f"{said}: not used")

    def _section_named(self, name: str) -> int | None:
        """The paper's section (with questions) a key names: by its heading's words, its letter or its id prefix."""
        wanted = _section_words(name)
        if not wanted:
            return None
        prefixes = self._prefixes()
        found = set()
        for k, section in enumerate(self.paper.sections):
            if not any(q.section == k for q in self.questions):
                continue
            words = _section_words(section.name)
            if words[: len(wanted)] == wanted or wanted[: len(words)] == words:
                found.add(k)
            elif len(wanted) == 1 or (len(wanted) == 2 and wanted[0] in ("section", "part")):
                letter = re.match(r"(?:section|part)\s+(\w+)", section.name, re.I)
                if wanted[-1] in (prefixes[k].casefold().rstrip("."), letter[1].casefold() if letter else None):
                    found.add(k)
        return found.pop() if len(found) == 1 else None

    def _in_section(self, section: int, number: int) -> _Question | None:
        """Question `number` of a section: by its number where the section counts from 1, else by position."""
        members = [q for q in self.questions if q.section == section]
        if members and members[0].number == 1:
            return next((q for q in members if q.number == number), None)
        return members[number - 1] if 0 < number <= len(members) else None

    def _place_loose(self, entries: list[_KeyEntry]) -> dict[int, _Question | None]:
        """Entries naming no section: read every way the paper allows, and the reading that fits best taken."""
        if not entries:
            return {}
        runs = [[entries[0]]]
        for previous, entry in itertools.pairwise(entries):
            parts = entry.part and previous.part and entry.part > previous.part
            restarts = entry.number < previous.number or (entry.number == previous.number and not parts)
            if restarts:
                runs.append([entry])
            else:
                runs[-1].append(entry)
        first, last = entries[0].label, entries[-1].label
        said = f"entries {first} to {last} name" if len(entries) > 1 else f"entry {first} names"
        said = f"the answer key's {said} no section"
        readings = self._readings(runs)
        if not readings:
            self._note(None, f"{said} and number afresh {len(runs)} times: name the section above each group")
            return {}
        scored = []
        for reading, targets in readings:
            fits = [_key_fit(entry, question) for entry, question in zip(entries, targets)]
            misfits = sum(fit in ("missing", "conflict") for fit in fits)
            scored.append(((misfits, fits.count("disagree"), -fits.count("fill")), reading, targets))
        scored.sort(key=lambda r: r[0])
        (score, reading, targets), *others = scored
        ids = [q.id if q else None for q in targets]
        rivals = [r for r in others if r[0][0] == score[0] and [q.id if q else None for q in r[2]] != ids]
        if any(r[0] == score for r in rivals):
            ways = "; ".join(name for fit, name, _ in scored if fit == score)
            self._note(None, f"{said} and could be read more than one way ({ways}): not used; head them with a section")
            return {}
        if rivals:
            said = f"{said}: read {reading}, which contradicts fewer of the paper's keys and fills more of its gaps"
            self._note(None, f"{said}, though {rivals[0][1]} fits as well: check")
        return {id(entry): question for entry, question in zip(entries, targets)}

    def _readings(self, runs: list[list[_KeyEntry]]) -> list[tuple[str, list[_Question | None]]]:
        """Each way unnamed numbers can be read, with the question each entry then names (None: no such one)."""
        entries = [entry for run in runs for entry in run]
        numbers = [q.number for q in self.questions]
        sections = [k for k in range(len(self.paper.sections)) if any(q.section == k for q in self.questions)]
        if len(set(numbers)) == len(numbers) and (len(runs) == 1 or not sections):
            by_number = {q.number: q for q in self.questions}  # the paper numbers through: a number is a number
            return [("by number", [by_number.get(entry.number) for entry in entries])]
        readings = []
        if len(runs) == 1:
            order = self.questions
            through = [order[e.number - 1] if 0 < e.number <= len(order) else None for e in entries]
            readings.append(("numbered through the paper", through))
        for chosen in itertools.combinations(sections, len(runs)):
            names = ", ".join(repr(self.paper.sections[k].name) for k in chosen)
            targets = [self._in_section(k, entry.number) for run, k in zip(runs, chosen) for entry in run]
            readings.append((f"as section{'s' if len(chosen) > 1 else ''} {names}", targets))
        return readings

    def _fill(self, entry: _KeyEntry, question: _Question) -> None:
        items = _key_targets(entry, question)
        if any(item.suffix in self.from_key for item in items):
            items[0].notes.append(f"the answer key at the end gives {entry.label} more than once: the first was used")
            return
        self.from_key.update(item.suffix for item in items)
        first = items[0]
        if first.kind == "mcq":
            keys = _keys_in(entry.text, first.options)
            if not keys or not set(keys) <= set(first.options):
                said = f"the answer key at the end gives '{_excerpt(entry.text)}' for this MCQ"
                first.notes.append(f"{said}, not one of its options ({', '.join(first.options)}): set the key")
            elif not first.keys:
                first.keys = keys
                first.notes = [note for note in first.notes if note != _NO_KEY]
            elif set(keys) != set(first.keys):
                ours, theirs = ", ".join(first.keys), ", ".join(keys)
                said = f"the key under the question is {ours}, the answer key at the end says {theirs}"
                first.notes.append(f"{said}: {ours} was kept")
            return
        if entry.letters or not entry.text:
            said = f"the answer key at the end gives '{_excerpt(entry.text)}' for this question"
            first.notes.append(f"{said}, which has no options: is it an MCQ? (not used)")
            return
        answers = [_paragraphs(entry.lines)] if len(items) == 1 else _part_answers(entry, items, question.id)
        for item, paragraphs in zip(items, answers):
            if paragraphs and not item.answer:
                item.answer = paragraphs
            elif paragraphs and _flat(_clean(" ".join(item.answer))) != _flat(_clean(" ".join(paragraphs))):
                said = "the model answer under the question differs from the answer key's at the end"
                item.notes.append(f"{said}: the one under the question was kept (the key: '{_excerpt(paragraphs[0])}')")

    def _settle_marks(self) -> None:
        paper = self.paper
        for question in self.questions:  # a question without marks whose parts all have theirs
            if question.marks is None and all(i.marks is not None for i in question.items):
                question.marks = sum(i.marks for i in question.items)
            each = paper.sections[question.section].each if question.section is not None else None
            if question.marks is None and (each or paper.each):
                question.marks = each or paper.each
        for k, section in enumerate(paper.sections):
            members = [q for q in self.questions if q.section == k]
            if section.marks is not None and members:
                self._share_total(members, section.marks, f"section {section.name!r}")
        unmarked = [q for q in self.questions if q.marks is None]
        if unmarked and paper.total is not None:
            known = sum(q.marks for q in self.questions if q.marks is not None)
            if paper.total - known > 0:
                self._share_total(unmarked, paper.total, "the paper", left=paper.total - known)
        for question in self.questions:
            if question.marks is None:
                question.marks = DEFAULT_MARKS
                self._note(question.items[0].suffix, f"no marks given for {question.id}: {DEFAULT_MARKS:g} assumed")
            parts = [i for i in question.items if i.marks is None]
            known = sum(i.marks for i in question.items if i.marks is not None)
            if not parts:
                if not math.isclose(known, question.marks, abs_tol=1e-6):
                    said = f"{question.id} says {question.marks:g} marks, its parts add up to {known:g}"
                    self._note(question.items[0].suffix, said)
                continue
            left = question.marks - known
            if left <= 0:
                shares = [DEFAULT_MARKS / 2] * len(parts)
                said = f"{question.id}'s marked parts already carry its {question.marks:g} marks"
                self._note(parts[0].suffix, f"{said}: {shares[0]:g} assumed for each of the others")
            else:
                shares = _share(left, len(parts))
                if len(question.items) > 1:
                    said = f"{question.id}'s {left:g} marks shared out among its {len(parts)} parts ({_said(shares)})"
                    self._note(parts[0].suffix, f"{said}: they carry no marks of their own")
            for item, share in zip(parts, shares):
                item.marks = share

    def _share_total(self, members: list[_Question], total: float, where: str, left: float | None = None) -> None:
        """Share `total` (or what is `left` of it after the other questions) among the members without marks."""
        rest = left is not None
        known = sum(q.marks for q in members if q.marks is not None)
        unknown = [q for q in members if q.marks is None]
        if not unknown:
            if not math.isclose(known, total, abs_tol=1e-6):
                said = f"{where} says {total:g} marks, its questions add up to {known:g}"
                self._note(members[0].items[0].suffix, said)
            return
        left = left if rest else total - known
        if left <= 0:
            said = f"{where} says {total:g} marks, but its marked questions already add up to {known:g}"
            self._note(unknown[0].items[0].suffix, said)
            return
        shares = _share(left, len(unknown))
        for question, share in zip(unknown, shares):
            question.marks = share
        if rest:
            text = (
                f"{where} says {total:g} marks; the {left:g} its questions' own marks leave are shared out "
                f"among the {len(unknown)} without ({_said(shares)})"
            )
        elif len(unknown) == 1:
            text = f"{where}: its {left:g} marks go to {unknown[0].id}, which carries no marks of its own"
        else:
            text = f"{where}: {left:g} marks shared out among its {len(unknown)} questions without marks"
            text += f" ({_said(shares)})"
        self._note(unknown[0].items[0].suffix, text)

    def _note(self, question_id: str | None, text: str, point_id: str | None = None) -> None:
        self.notes.append(Note(question_id, point_id, text))

    def _question_data(self, item: _Item) -> dict[str, Any]:
        for text in item.notes:
            self._note(item.suffix, text)
        if item.kind == "mcq":
            data: dict[str, Any] = {"id": item.suffix, "type": "mcq", "marks": item.marks, "prompt": item.prompt}
            data["options"] = item.options
            if item.keys:
                data["key"] = item.keys[0] if len(item.keys) == 1 else list(item.keys)
            else:
                data["void"] = True
            return data
        model_answer, pieces, notes = _answer_pieces(item.answer, item.prompt, item.marks)
        for text in notes:
            self._note(item.suffix, text)
        step, marks, merged = _fit(pieces, item.marks)
        if merged:
            said = f"merged the answer's {merged} claims into {len(pieces)} points to fit {_count(item.marks, 'mark')}"
            self._note(item.suffix, f"{said}: check the grouping")
        if len(set(marks)) > 1:
            self._note(
                item.suffix,
                f"marks shared in steps of {step:g} as evenly as they go ({'/'.join(f'{m:g}' for m in marks)}): "
                "move marks to the points that matter most",
            )
        points = []
        formulas = 0
        for k, (piece, mark) in enumerate(zip(pieces, marks)):
            if piece.formula:
                formulas += 1
                point_id = "formula" if formulas == 1 else f"formula{formulas}"
            elif piece.verdict:
                point_id = "verdict"
            else:
                point_id = f"p{k + 1}"
            point: dict[str, Any] = {"id": point_id, "text": piece.text, "marks": mark}
            if piece.patterns:
                point["patterns"] = list(piece.patterns)
            if piece.contradictions:
                point["contradictions"] = list(piece.contradictions)
            points.append(point)
            for text in piece.notes:
                self._note(item.suffix, text, point_id)
        return {
            "id": item.suffix,
            "type": "short",
            "marks": item.marks,
            "prompt": item.prompt,
            "model_answer": model_answer,
            "step": step,
            "points": points,
        }


def _section_words(name: str) -> list[str]:
    """A section's name as words, without what a key adds to it ("Section B answers", "Beginner (MCQ key)")."""
    name = re.sub(r"[(\[][^()\[\]]*[)\]]", " ", name.casefold())
    words = re.findall(r"\w+", name)
    while words and words[-1] in ("answers", "answer", "key", "keys", "solutions", "memo"):
        words.pop()
    return words


def _said(shares: Sequence[float]) -> str:
    return f"{shares[0]:g} each" if len(set(shares)) == 1 else "/".join(f"{s:g}" for s in shares)


def _share(total: float, parts: int) -> list[float]:
    """`total` in `parts` shares on the coarsest grid (0.5, 0.25, ...) giving each one; earlier ones take the rest."""
    for grid in (0.5, 0.25, 0.1, 0.05, 0.01):
        units = round(total / grid)
        if math.isclose(units * grid, total, abs_tol=1e-9) and units >= parts:
            base, extra = divmod(units, parts)
            return [round((base + (1 if k < extra else 0)) * grid, 4) for k in range(parts)]
    return [round(total / parts, 4)] * (parts - 1) + [round(total - round(total / parts, 4) * (parts - 1), 4)]
