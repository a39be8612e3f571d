"""Feedback to students: per question, the rubric points earned and missed, with their own words.

Built once as data (`StudentFeedback`), then rendered as Markdown, HTML or plain text (the text is
what the exports put in a CSV column). A student sees the point texts, the marks each point earned,
the words of theirs that earned it, the TA's comment and the mark that counts (and whether a TA set
it). A student never sees similarities, scores, the rubric's patterns, contradictions or
alternatives: the numbers and regexes that would teach the next class to game the marker.

Student and TA text is untrusted. HTML escapes all of it (and the page forbids scripts); Markdown
shows a student's words as code spans, which render nothing, and backslash-escapes other text.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from grader.errors import GraderError
from grader.exam.rubric import McqQuestion, Rubric, ShortQuestion
from grader.review.gradebook import Entry, Student
from grader.text import number

FORMATS = ("md", "html")


# ---------------------------------------------------------------- the gradebook, checked


def entries_by_student(
    rubric: Rubric, students: Sequence[Student], entries: Iterable[Entry]
) -> dict[str, dict[str, Entry]]:
    """Each listed student's entry per question, in rubric order.

    Refused (one line): a mark for a question the rubric lacks (graded with another rubric), two
    marks for one answer, or a student without a mark for some question: an export must never
    turn a missing mark into a silent zero. Entries of students not listed are ignored.
    """
    wanted = {s.student_id for s in students}
    known = set(rubric.question_ids)
    found: dict[str, dict[str, Entry]] = {s: {} for s in wanted}
    for entry in entries:
        if entry.student_id not in wanted:
            continue
        if entry.question_id not in known:
            raise GraderError(
                f"the gradebook has a mark for question '{entry.question_id}', which rubric '{rubric.exam}' does "
                "not have: use the rubric the gradebook was graded with"
            )
        marks = found[entry.student_id]
        if entry.question_id in marks:
            raise GraderError(
                f"the gradebook has two marks for student '{entry.student_id}', question '{entry.question_id}'"
            )
        marks[entry.question_id] = entry
    table = {}
    for student in students:
        marks = found[student.student_id]
        missing = [q for q in rubric.question_ids if q not in marks]
        if missing:
            raise GraderError(
                f"student '{student.student_id}' has no mark for question {', '.join(missing)}: "
                "grade every answer first"
            )
        table[student.student_id] = {q: marks[q] for q in rubric.question_ids}
    return table


# ---------------------------------------------------------------- feedback as data


@dataclass(frozen=True)
class PointFeedback:
    """One rubric point as the student sees it."""

    text: str
    marks: float
    earned: float
    """Marks x credit, to 2 decimals."""
    evidence: str | None = None
    """The student's words that earned it (earned or partly earned points)."""
    opposite: str | None = None
    """The student's words that said the opposite (a rubric contradiction, or a negation, matched)."""

    @property
    def status(self) -> str:
        """'earned', 'partly earned' or 'missed'."""
        if self.earned >= self.marks - 1e-9:
            return "earned"
        return "partly earned" if self.earned > 0 else "missed"


@dataclass(frozen=True)
class QuestionFeedback:
    question_id: str
    prompt: str
    mark: float
    """The mark that counts: the TA's when set, else the automatic one."""
    max_mark: float
    reviewed: str | None
    """None (automatic), 'set' (a TA set the mark) or 'checked' (a TA accepted the automatic mark)."""
    comment: str | None
    blank: bool
    mcq: bool
    choice: str | None = None
    """MCQ: the letter read, or None."""
    choice_text: str | None = None
    keys: tuple[str, ...] = ()
    key_texts: tuple[str, ...] = ()
    void: bool = False
    points: tuple[PointFeedback, ...] = ()
    notes: tuple[str, ...] = ()
    """Sentences of ours (never student text): why the points and the mark may differ."""

    @property
    def right(self) -> bool:
        return self.choice is not None and self.choice in self.keys

    @property
    def source(self) -> str:
        """'', 'set by a TA' or 'checked by a TA'."""
        return {"set": "set by a TA", "checked": "checked by a TA"}.get(self.reviewed or "", "")


@dataclass(frozen=True)
class StudentFeedback:
    title: str
    student_id: str
    name: str
    """The student's name from the kept columns, or ''."""
    total: float
    max_total: float
    questions: tuple[QuestionFeedback, ...]


def student_feedback(rubric: Rubric, student: Student, entries: Iterable[Entry]) -> StudentFeedback:
    """The feedback for one student (`entries` may hold the whole class: only theirs are read)."""
    return build_feedback(rubric, student, entries_by_student(rubric, [student], entries)[student.student_id])


def build_feedback(rubric: Rubric, student: Student, marks: Mapping[str, Entry]) -> StudentFeedback:
    """The feedback from one student's entries by question id, as `entries_by_student` checked them."""
    questions = tuple(_question_feedback(q, marks[q.id]) for q in rubric.questions)
    return StudentFeedback(
        title=rubric.title or rubric.exam,
        student_id=student.student_id,
        name=student_name(student),
        total=sum(q.mark for q in questions),
        max_total=rubric.max_total,
        questions=questions,
    )


def _question_feedback(question: McqQuestion | ShortQuestion, entry: Entry) -> QuestionFeedback:
    reviewed = None if entry.ta_mark is None else ("checked" if entry.status == "accepted" else "set")
    comment = (entry.comment or "").strip() or None
    blank = not entry.answer.strip()
    common = dict(
        question_id=question.id,
        prompt=question.prompt,
        mark=entry.mark,
        max_mark=question.marks,
        reviewed=reviewed,
        comment=comment,
        blank=blank,
    )
    if isinstance(question, McqQuestion):
        choice = entry.choice.lower() if entry.choice else None
        return QuestionFeedback(
            **common,
            mcq=True,
            choice=choice,
            choice_text=question.options.get(choice) if choice else None,
            keys=question.keys,
            key_texts=tuple(question.options[k] for k in question.keys),
            void=question.void,
        )
    by_id = {p.point_id: p for p in entry.points}
    points = []
    for point in question.points:
        found = by_id.get(point.id)
        credit = found.credit if found is not None else 0.0
        earned = round(point.marks * credit, 2)
        evidence = found.evidence.strip() if found is not None and earned > 0 and found.evidence.strip() else None
        # What the student said against the point: a rubric contradiction, or the segment the negation
        # check masked (`opposite`, newer than the contract: read it only where it exists).
        said = (found.contradiction or getattr(found, "opposite", None)) if found is not None else None
        opposite = said.strip() if said and earned <= 0 else None
        points.append(PointFeedback(point.text, point.marks, earned, evidence, opposite))
    notes = []
    adds_up = sum(p.marks * (by_id[p.id].credit if p.id in by_id else 0.0) for p in question.points)
    if reviewed == "set" and abs(entry.mark - entry.auto_mark) > 1e-9:
        notes.append("A TA set this mark; the points above are the automatic marking's reading of your answer.")
    elif abs(adds_up - entry.mark) > 0.005:
        notes.append(
            f"The points add up to {number(round(adds_up, 2))}; "
            f"this question is marked in steps of {number(question.step)}."
        )
    return QuestionFeedback(**common, mcq=False, points=tuple(points), notes=tuple(notes))


_NAME = ("name", "fullname", "studentname", "student")
_FIRST = ("firstname", "givenname")
_LAST = ("lastname", "surname", "familyname")


def header_key(header: str) -> str:
    """A column name as people vary it, for comparing: 'Email Address', 'email_address' -> 'emailaddress'."""
    return re.sub(r"[\s_\-]+", "", header).casefold()


def student_name(student: Student) -> str:
    """The student's name from the kept columns (a name column, or first and last name), or ''."""
    by_key: dict[str, str] = {}
    for header, value in student.kept.items():
        by_key.setdefault(header_key(header), (value or "").strip())
    for key in _NAME:
        if by_key.get(key):
            return by_key[key]
    first = next((by_key[k] for k in _FIRST if by_key.get(k)), "")
    last = next((by_key[k] for k in _LAST if by_key.get(k)), "")
    return f"{first} {last}".strip()


# ---------------------------------------------------------------- wording shared by the renderers


def _mark_line(q: QuestionFeedback) -> str:
    source = f" ({q.source})" if q.source else ""
    return f"{q.question_id}: {number(q.mark)} / {number(q.max_mark)}{source}"


def _keys_phrase(q: QuestionFeedback, with_text: bool) -> str:
    keys = [f"{k} ({t})" if with_text else k for k, t in zip(q.keys, q.key_texts)]
    if len(keys) == 1:
        return f"The key: {keys[0]}."
    return f"Accepted answers: {', '.join(keys[:-1])} or {keys[-1]}."


def _mcq_sentences(q: QuestionFeedback, with_text: bool) -> str:
    """Our sentences about an MCQ answer (the letter is the parser's, never raw student text)."""
    if q.void:
        marks = f"{number(q.max_mark)} mark{'' if q.max_mark == 1 else 's'}"
        return f"This question was withdrawn: everyone scored its {marks}, whatever they chose."
    if q.blank:
        return f"No answer was given. {_keys_phrase(q, with_text)}"
    if q.choice is None:
        return f"Your answer could not be read as exactly one of the options. {_keys_phrase(q, with_text)}"
    chosen = f"{q.choice} ({q.choice_text})" if with_text and q.choice_text else q.choice
    if q.right:
        return f"Your answer: {chosen}, right."
    return f"Your answer: {chosen}, wrong. {_keys_phrase(q, with_text)}"


def _point_head(p: PointFeedback) -> str:
    if p.status == "earned":
        return f"Earned {number(p.earned)} of {number(p.marks)}"
    if p.status == "partly earned":
        return f"Partly earned, {number(p.earned)} of {number(p.marks)}"
    return f"Missed, 0 of {number(p.marks)}"


# ---------------------------------------------------------------- plain text (the CSV column)


def feedback_text(rubric: Rubric, student: Student, entries: Iterable[Entry]) -> str:
    """Plain text for one CSV cell: a line per question, a line per rubric point. Starts with the
    exam's title, never with student text."""
    return render_text(student_feedback(rubric, student, entries))


def render_text(fb: StudentFeedback) -> str:
    lines = [f"{fb.title}: {number(fb.total)} / {number(fb.max_total)}"]
    for q in fb.questions:
        if q.mcq:
            lines.append(f"{_mark_line(q)}. {_mcq_sentences(q, with_text=False)}")
        else:
            lines.append(f"{_mark_line(q)}." + (" No answer was given." if q.blank else ""))
            for p in q.points:
                line = f"- {_point_head(p)}: {_one_line(p.text)}"
                if p.evidence:
                    line += f" Your words: “{_one_line(p.evidence)}”"
                if p.opposite:
                    line += f" Your answer says the opposite: “{_one_line(p.opposite)}”"
                lines.append(line)
            lines.extend(q.notes)
        if q.comment:
            lines.append(f"TA's comment: {q.comment}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- Markdown


def feedback_markdown(rubric: Rubric, student: Student, entries: Iterable[Entry]) -> str:
    """One student's feedback as Markdown: a section per question."""
    return render_markdown(student_feedback(rubric, student, entries))


def render_markdown(fb: StudentFeedback) -> str:
    who = f"{_md(fb.name)} ({_md(fb.student_id)})" if fb.name else _md(fb.student_id)
    out = [f"# {_md(fb.title)}", "", f"Feedback for {who}. Total: **{number(fb.total)} / {number(fb.max_total)}**.", ""]
    for q in fb.questions:
        out += [f"## {_md(_mark_line(q))}", ""]
        if q.prompt:
            out += [f"*{_md(_one_line(q.prompt))}*", ""]
        if q.mcq:
            out += [_md(_mcq_sentences(q, with_text=True)), ""]
        else:
            if q.blank:
                out += ["No answer was given.", ""]
            for p in q.points:
                out.append(f"- {_point_head(p)}: {_md(_one_line(p.text))}")
                if p.evidence:
                    out.append(f"  - Your words: {_code(p.evidence)}")
                if p.opposite:
                    out.append(f"  - Your answer says the opposite: {_code(p.opposite)}")
            out.append("")
            out += [n for note in q.notes for n in (note, "")]
        if q.comment:
            out += ["**TA's comment:**", ""]
            out += [f"> {_md(line)}" if line.strip() else ">" for line in q.comment.splitlines()]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&!|#])")


def _md(text: str) -> str:
    """Backslash-escape what could become markup: tags, links, images, emphasis, code, entities."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code(text: str) -> str:
    """A student's words as an inline code span: rendered verbatim, never as HTML or links."""
    text = _one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# ---------------------------------------------------------------- HTML


_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.1rem; margin: 1.75rem 0 .25rem; border-bottom: 1px solid #ddd; }
.mark { font-weight: normal; }
.by { font-size: .85rem; color: #555; font-weight: normal; }
.prompt { font-style: italic; color: #444; }
ul { padding-left: 1.2rem; }
li { margin: .35rem 0; }
li.earned::marker { content: "✓ "; color: #1a7f37; }
li.partly::marker { content: "◐ "; color: #9a6700; }
li.missed::marker { content: "✗ "; color: #cf222e; }
q, .words { font-family: ui-monospace, monospace; background: #f4f4f4; padding: 0 .2rem; }
.comment { white-space: pre-wrap; border-left: 3px solid #888; padding-left: .75rem; }
.note { color: #555; font-size: .9rem; }
""".strip()


def feedback_html(rubric: Rubric, student: Student, entries: Iterable[Entry]) -> str:
    """One student's feedback as a self-contained HTML page (no scripts, links or external files)."""
    return render_html(student_feedback(rubric, student, entries))


def render_html(fb: StudentFeedback) -> str:
    e = _h
    who = f"{e(fb.name)} ({e(fb.student_id)})" if fb.name else e(fb.student_id)
    body = [
        f"<h1>{e(fb.title)}</h1>",
        f"<p>Feedback for {who}. Total: <strong>{number(fb.total)} / {number(fb.max_total)}</strong>.</p>",
    ]
    for q in fb.questions:
        by = f' <span class="by">{e(q.source)}</span>' if q.source else ""
        mark = f'<span class="mark">{number(q.mark)} / {number(q.max_mark)}</span>'
        body.append(f"<section><h2>{e(q.question_id)} {mark}{by}</h2>")
        if q.prompt:
            body.append(f'<p class="prompt">{e(q.prompt)}</p>')
        if q.mcq:
            body.append(f"<p>{e(_mcq_sentences(q, with_text=True))}</p>")
        else:
            if q.blank:
                body.append("<p>No answer was given.</p>")
            items = []
            for p in q.points:
                css = {"earned": "earned", "partly earned": "partly", "missed": "missed"}[p.status]
                item = f'<li class="{css}"><strong>{e(_point_head(p))}</strong>: {e(p.text)}'
                if p.evidence:
                    item += f"<br>Your words: <q>{e(p.evidence)}</q>"
                if p.opposite:
                    item += f"<br>Your answer says the opposite: <q>{e(p.opposite)}</q>"
                items.append(item + "</li>")
            body.append("<ul>" + "".join(items) + "</ul>")
            body += [f'<p class="note">{e(note)}</p>' for note in q.notes]
        if q.comment:
            body.append(f'<p><strong>TA\'s comment:</strong></p><p class="comment">{e(q.comment)}</p>')
        body.append("</section>")
    title = f"{fb.title}: feedback for {fb.student_id}"
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        # Nothing on this page may run or load: student text is untrusted even after escaping.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _h(text: str) -> str:
    return html.escape(text, quote=True)


# ---------------------------------------------------------------- one file per student


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_file_stem(student_id: str) -> str:
    """A file name stem from a student id that cannot leave the folder or hide: ASCII letters,
    digits, '.', '_' and '-' only, no leading dot, not a Windows device name. When that changed the
    id, a short hash of the id is appended, so 'a/b' and 'a_b' stay two files."""
    stem = _UNSAFE.sub("_", unicodedata.normalize("NFKC", student_id)).strip("._-")[:80]
    if stem.casefold() in _RESERVED:
        stem = f"student_{stem}"
    if stem != student_id:
        stem = f"{stem or 'student'}-{_digest(student_id)}"
    return stem


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def feedback_files(
    rubric: Rubric, students: Sequence[Student], entries: Iterable[Entry], fmt: str = "md"
) -> dict[str, str]:
    """{file name: text} with one feedback file per student, in `students` order.

    Names come from `safe_file_stem`; no two differ only by case (for macOS and Windows folders).
    """
    if fmt not in FORMATS:
        raise GraderError(f"feedback format must be {' or '.join(FORMATS)}, not '{fmt}'")
    render = render_markdown if fmt == "md" else render_html
    table = entries_by_student(rubric, students, entries)
    files: dict[str, str] = {}
    used: set[str] = set()
    for student in students:
        stem = safe_file_stem(student.student_id)
        if stem.casefold() in used:
            stem = f"{stem}-{_digest(student.student_id)}"
        base, n = stem, 2
        while stem.casefold() in used:
            stem, n = f"{base}-{n}", n + 1
        used.add(stem.casefold())
        files[f"{stem}.{fmt}"] = render(build_feedback(rubric, student, table[student.student_id]))
    return files
