"""`grader serve`: the review queue, answer groups and class pages in a browser, over the Gradebook API.

Every request needs the server's random token (the printed link carries it; it then lives in an
HttpOnly cookie), every change needs the page's CSRF token, and every change names the version (last
audit id) of each answer it was decided on: a change made on a stale view is refused with the other
TA's mark (`StaleChange`), never applied over it. Each request opens the gradebook afresh, so two
browsers, `grader review` and a sheet import share it through SQLite's transactions. Templates
autoescape all student text; only this package's static folder is served.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from flask import Flask, Response, abort, flash, g, redirect, render_template, request, session, url_for

from grader.embedding.encoder import TextEncoder
from grader.errors import GraderError
from grader.exam.rubric import ShortQuestion
from grader.outputs.report import SECTIONS, class_overview
from grader.review.gradebook import Change, Entry, Gradebook, StaleChange, describe_review
from grader.review.grouping import GROUP_COSINE, AnswerGroup, group_answers, most_like, word_differences
from grader.review.screen import _parse_mark
from grader.scoring.grade import Grades, QuestionGrade
from grader.scoring.match import DEFAULT_CURVE
from grader.web.evidence import answer_view

TOKEN_COOKIE = "grader_token"
HISTORY = 50
"""Answers a browser session remembers for `back`."""
LIKE_THIS = 10
"""How many of the most alike answers "answers like this" shows."""
HEADERS = {
    # Nothing from elsewhere, no inline script; the report's figures are data: images.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the token must not leave in a Referer header
    "Cache-Control": "no-store",
}


def check_gradebook(path: Path) -> None:
    """Refuse a file that is not a gradebook, is of a newer schema or has no run, before serving it."""
    with Gradebook.open(path, create=False) as gb:
        gb.rubric()


class Vectors:
    """Whole-answer embeddings for grouping, one model load per server (on the first groups page)."""

    def __init__(self, load: Callable[[], TextEncoder]) -> None:
        self._load, self._encoder, self._lock = load, None, threading.Lock()
        self._rows: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            todo = [t for t in dict.fromkeys(texts) if t not in self._rows and t.strip()]
            if todo:
                if self._encoder is None:
                    self._encoder = self._load()
                self._rows.update(zip(todo, self._encoder.encode(todo)))
            dimension = len(next(iter(self._rows.values()))) if self._rows else 1
            blank = np.zeros(dimension, dtype=np.float32)
            return np.stack([self._rows.get(t, blank) for t in texts]) if texts else np.zeros((0, dimension))


def create_app(db: Path, token: str, encoder: Callable[[], TextEncoder]) -> Flask:
    """The web app over gradebook `db`; `encoder` loads the embedding model when groups are first asked for."""
    check_gradebook(db)
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.secret_key = secrets.token_bytes(32)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", MAX_CONTENT_LENGTH=1 << 20)
    vectors = Vectors(encoder)

    def book() -> Gradebook:
        if "gb" not in g:
            g.gb = Gradebook.open(db, create=False)
        return g.gb

    @app.teardown_appcontext
    def _close(_: BaseException | None) -> None:
        gb = g.pop("gb", None)
        if gb is not None:
            gb.close()

    @app.before_request
    def _guard() -> Response | None:
        given = request.args.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return Response(
                "Forbidden: open the link `grader serve` printed (it carries the access token).\n",
                403,
                mimetype="text/plain",
            )
        if "token" in request.args:  # keep the token out of the address bar and history: a cookie from now on
            rest = {k: v for k, v in request.args.items(multi=True) if k != "token"}
            response = redirect(request.path + ("?" + urlencode(rest) if rest else ""))
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Lax")
            return response
        session.setdefault("csrf", secrets.token_urlsafe(24))
        if request.method == "POST" and not hmac.compare_digest(
            request.form.get("csrf", "").encode(), session["csrf"].encode()
        ):
            return Response(
                "Forbidden: the form's CSRF token is missing or stale: reload the page.\n", 403, mimetype="text/plain"
            )
        if "ta" not in session and request.endpoint not in ("name", "static"):
            return redirect(url_for("name", next=request.full_path))
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.update(HEADERS)
        return response

    @app.errorhandler(GraderError)
    def _grader_error(exc: GraderError):
        return render_template("error.html", message=str(exc)), 400

    @app.context_processor
    def _everywhere() -> dict:
        return {"csrf": session.get("csrf", ""), "ta": session.get("ta"), "exam": book().rubric().exam}

    # -- who is at the keyboard ----------------------------------------------------------------

    @app.route("/name", methods=["GET", "POST"])
    def name():
        after = request.values.get("next", "/")
        if not after.startswith("/") or after.startswith("//"):
            after = "/"  # never send the browser off this server
        if request.method == "POST":
            typed = request.form.get("ta", "").strip()
            if typed:
                session["ta"] = typed[:60]
                return redirect(after)
            flash("type your name: it goes in the audit log beside every change", "error")
        return render_template("name.html", after=after)

    @app.route("/")
    def home():
        return redirect(url_for("queue"))

    # -- the queue ------------------------------------------------------------------------------

    @app.route("/queue")
    def queue():
        gb, rubric = book(), book().rubric()
        fq, ff = request.args.get("fq", ""), request.args.get("ff", "")
        everything = [
            e
            for e in gb.queue(include_reviewed=True)
            if (not fq or e.question_id == fq) and (not ff or ff in _codes(e))
        ]
        pending = [_key(e) for e in everything if not e.reviewed]
        asked = (request.args.get("student"), request.args.get("question"))
        key = asked if all(asked) else (pending[0] if pending else None)
        if key is None:
            return render_template("done.html", total=len(everything), **_filters(gb, fq, ff))
        entry = gb.entry(*key)
        question = rubric.question(entry.question_id)
        position = len(everything) - len(pending) + 1 + pending.index(key) if key in pending else None
        history = session.get("history", [])
        back = next((k for k in reversed(history) if tuple(k) != key), None)
        return render_template(
            "queue.html",
            entry=entry,
            question=question,
            view=answer_view(entry, question),
            position=position,
            total=len(everything),
            version=gb.last_audit_id(*key),
            state=describe_review(entry),
            back=back,
            step=question.step if isinstance(question, ShortQuestion) else question.marks,
            **_filters(gb, fq, ff),
        )

    @app.post("/decide")
    def decide():
        gb, ta = book(), session["ta"]
        key = (request.form["student"], request.form["question"])
        action = request.form.get("action", "")
        back_here = _queue_url(request.form, *key)
        entry = gb.entry(*key)
        version = _version(request.form.get("version"))
        if action == "skip":
            if not entry.reviewed:
                gb.skip(*key, ta)
            _remember(key)
            flash(f"skipped {key[0]} {key[1]}: it comes back at the end", "info")
            return redirect(_queue_url(request.form))
        if action == "set":
            mark, problem = _parse_mark(request.form.get("mark", ""), entry.max_mark, book().rubric().question(key[1]))
            if problem:
                flash(problem, "error")
                return redirect(back_here)
            change = Change(*key, "set", mark=mark, expected_audit_id=version)
        elif action == "accept":
            change = Change(*key, "accept", expected_audit_id=version)
        elif action == "comment":
            change = Change(*key, "comment", comment=request.form.get("comment", "").strip(), expected_audit_id=version)
        else:
            abort(400)
        try:
            after = gb.apply([change], ta, reason="grader serve")[0]
        except StaleChange as exc:
            flash(f"not saved: {exc}", "error")
            return redirect(back_here)
        if action == "comment":
            flash("comment saved" if after.comment else "comment removed", "ok")
            return redirect(back_here)
        _remember(key)
        was = "" if action == "accept" else f" (proposed {entry.auto_mark:g})"
        flash(f"saved: {key[0]} {key[1]} {after.status} {after.ta_mark:g}{was}", "ok")
        return redirect(_queue_url(request.form))

    @app.post("/undo")
    def undo():
        gb = book()
        try:
            target = gb.undo(session["ta"])
        except StaleChange as exc:
            flash(f"not undone: {exc}", "error")
            return redirect(_queue_url(request.form))
        if target is None:
            flash("nothing of yours to undo", "info")
            return redirect(_queue_url(request.form))
        now = gb.entry(target.student_id, target.question_id)
        together = sum(1 for a in gb.audit() if a.batch is not None and a.batch == target.batch) if target.batch else 1
        what = (
            f"your group mark of {together} answers"
            if together > 1
            else f"your {target.action} of {target.student_id} {target.question_id}"
        )
        flash(f"undone: {what}; {target.student_id} {target.question_id} is now {describe_review(now)}", "ok")
        return redirect(_queue_url(request.form, target.student_id, target.question_id))

    # -- answer groups --------------------------------------------------------------------------

    @app.route("/groups")
    def groups():
        gb, rubric = book(), book().rubric()
        shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
        qid = request.args.get("question") or (shorts[0].id if shorts else "")
        if not shorts:
            return render_template("error.html", message="this exam has no short-answer questions to group"), 404
        question = rubric.question(qid)
        entries = gb.entries(question_id=qid)
        texts = [e.answer for e in entries]
        rows = vectors(texts)
        split = set(request.args.getlist("split"))
        found = _split(group_answers(texts, rows), entries, rows, split)
        shown = [_group_view(gb, entries, grp) for grp in found if len(grp.members) > 1]
        return render_template(
            "groups.html",
            question=question,
            shorts=shorts,
            groups=shown,
            lone=sum(len(grp.members) == 1 for grp in found),
            split=sorted(split),
            answers=len(entries),
            threshold=GROUP_COSINE,
        )

    @app.route("/like")
    def like():
        gb = book()
        key = (request.args["student"], request.args["question"])
        entries = gb.entries(question_id=key[1])
        index = next((i for i, e in enumerate(entries) if _key(e) == key), None)
        if index is None:
            abort(404)
        rows = vectors([e.answer for e in entries])
        near = most_like(rows, index, [i for i, e in enumerate(entries) if e.answer.strip()], LIKE_THIS)
        members = [(entries[i], cosine, gb.last_audit_id(*_key(entries[i]))) for i, cosine in near]
        return render_template(
            "like.html",
            entry=entries[index],
            members=members,
            question=gb.rubric().question(key[1]),
            pieces={_key(e): word_differences(entries[index].answer, e.answer) for e, _, _ in members},
        )

    @app.post("/groups/mark")
    def mark_group():
        gb, ta = book(), session["ta"]
        qid = request.form["question"]
        question = gb.rubric().question(qid)
        chosen = request.form.getlist("member")
        back = request.form.get("back", "")
        back = back if back.startswith("/") and not back.startswith("//") else url_for("groups", question=qid)
        if not chosen:
            flash("no answer ticked: nothing marked", "error")
            return redirect(back)
        mark, problem = _parse_mark(request.form.get("mark", ""), question.marks, question)
        if problem:
            flash(problem, "error")
            return redirect(back)
        changes = [
            Change(s, qid, "set", mark=mark, expected_audit_id=_version(request.form.get(f"v-{s}"))) for s in chosen
        ]
        like = request.form.get("like", chosen[0])
        try:
            gb.apply(changes, ta, reason=f"group mark: {len(changes)} answers to {qid} like {like}'s", together=True)
        except StaleChange as exc:
            flash(f"not saved (none of the {len(changes)}): {exc}", "error")
            return redirect(back)
        flash(
            f"saved: {mark:g} for {len(changes)} answer(s) to {qid} ({', '.join(chosen)}); u undoes them together", "ok"
        )
        return redirect(back)

    # -- pages beside the queue -----------------------------------------------------------------

    @app.route("/overview")
    def overview():
        gb, rubric = book(), book().rubric()
        entries = gb.entries()
        items = tuple(
            QuestionGrade(e.student_id, e.question_id, e.mark, e.max_mark, e.raw_mark, e.flags, e.choice, e.points)
            for e in entries
        )
        students = tuple(dict.fromkeys(e.student_id for e in entries))
        grades = Grades(rubric.exam, rubric.fingerprint, "", DEFAULT_CURVE, students, items)
        progress = []
        for q in rubric.questions:
            mine = [e for e in entries if e.question_id == q.id]
            progress.append(
                (
                    q.id,
                    sum(e.queued for e in mine),
                    sum(e.queued and e.reviewed for e in mine),
                    sum(e.source == "ta" for e in mine),
                )
            )
        return render_template(
            "overview.html",
            sections=class_overview(grades, rubric),
            titles=SECTIONS,
            progress=progress,
            students=students,
        )

    @app.route("/student/<student_id>")
    def student(student_id: str):
        gb = book()
        entries = gb.entries(student_id=student_id)
        if not entries:
            abort(404)
        return render_template(
            "student.html",
            student_id=student_id,
            entries=entries,
            rubric=gb.rubric(),
            total=sum(e.mark for e in entries),
            max_total=sum(e.max_mark for e in entries),
        )

    @app.route("/audit")
    def audit():
        gb = book()
        key = (request.args["student"], request.args["question"])
        entry = gb.entry(*key)
        return render_template("audit.html", entry=entry, log=gb.audit(*key), state=describe_review(entry))

    return app


# -- helpers -------------------------------------------------------------------------------------


def _key(e: Entry) -> tuple[str, str]:
    return (e.student_id, e.question_id)


def _codes(e: Entry) -> set[str]:
    return {f.code for f in e.flags}


def _version(text: str | None) -> int:
    """The answer's last audit id the page was drawn with: a change from a form without it is refused."""
    try:
        return int(text or "")
    except ValueError:
        raise GraderError("the form did not say which version of the answer it showed: reload the page") from None


def _filters(gb: Gradebook, fq: str, ff: str) -> dict:
    queued = gb.queue(include_reviewed=True)
    return {
        "fq": fq,
        "ff": ff,
        "questions": list(
            dict.fromkeys(q for q in gb.rubric().question_ids if any(e.question_id == q for e in queued))
        ),
        "flag_codes": sorted({c for e in queued for c in _codes(e)}),
    }


def _queue_url(form, student: str | None = None, question: str | None = None) -> str:
    """The queue with the page's filters, at one answer (or the next one when none is named)."""
    args = {k: form.get(k) for k in ("fq", "ff") if form.get(k)}
    if student and question:
        args.update(student=student, question=question)
    return url_for("queue", **args)


def _remember(key: tuple[str, str]) -> None:
    history = [k for k in session.get("history", []) if tuple(k) != key] + [list(key)]
    session["history"] = history[-HISTORY:]


def _split(found: list[AnswerGroup], entries: list[Entry], rows: np.ndarray, split: set[str]) -> list[AnswerGroup]:
    """Regroup, tighter, each group whose first answer's student the TA asked to split (again, for a
    part that is split further), tightening halfway from its least alike pair to identical."""
    for _ in range(8):
        again = []
        for grp in found:
            if entries[grp.members[0]].student_id in split and len(grp.members) > 1:
                tighter = (grp.cohesion + 1.0) / 2 + 1e-6
                parts = group_answers([entries[i].answer for i in grp.members], rows[list(grp.members)], tighter)
                again += [AnswerGroup(tuple(grp.members[j] for j in p.members), p.cohesion) for p in parts]
                split = split - {entries[grp.members[0]].student_id}
            else:
                again.append(grp)
        if again == found:
            break
        found = again
    return sorted(found, key=lambda grp: (-len(grp.members), min(grp.members)))


def _group_view(gb: Gradebook, entries: list[Entry], grp: AnswerGroup) -> dict:
    first = entries[grp.members[0]]
    members = []
    for i in grp.members:
        e = entries[i]
        members.append(
            {"entry": e, "version": gb.last_audit_id(*_key(e)), "pieces": word_differences(first.answer, e.answer)}
        )
    return {"first": first, "cohesion": grp.cohesion, "members": members}
