"""LLM suggestions for `grader rubric draft`, against a real HTTP server on 127.0.0.1 whose "model" is a script
(tests/llm_server.py)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from grader.authoring.draft import Draft, draft_rubric, draft_yaml, read_paper
from grader.authoring.suggest import MAX_CHARS, Suggestions, build_messages, check_suggestions, suggest
from grader.errors import InputError
from grader.exam.rubric import Rubric, ShortQuestion, load_rubric, parse_rubric
from grader.llm import LlmClient, LlmConfig, Spend
from tests.cli.test_app import assert_one_line_error, grader
from tests.llm_server import ScriptedLlm

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "tests" / "data" / "dl-midsem-paper.txt"
FAST = {"timeout": 2.0, "retries": 1, "backoff": 0.001, "max_wait": 0.01}
SHORT = ("I3", "I4", "I5", "A1a", "A1b", "A1c", "A1d")
_LABEL = re.compile(r"^(\s*)# (.*  # suggested \(LLM, model test-model\).*)$")


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("GRADER_LLM_API_KEY", raising=False)


@pytest.fixture(scope="module")
def draft() -> Draft:
    return read_paper(PAPER, exam="dl-midsem")


@pytest.fixture
def llm():
    with ScriptedLlm() as server:
        yield server


def ask(llm: ScriptedLlm, draft: Draft, behaviour: str = "good", **settings) -> tuple[Suggestions, Spend]:
    llm.behaviour = behaviour
    with LlmClient(LlmConfig(llm.url, "test-model", **{**FAST, **settings}), sleep=lambda seconds: None) as client:
        return suggest(client, draft), client.spent


def written(draft: Draft, suggestions: Suggestions | None, tmp_path: Path, text: str | None = None) -> Rubric:
    """Write the YAML (or `text`) and load it the way `grader validate` does."""
    path = tmp_path / "draft.yaml"
    path.write_text(text if text is not None else draft_yaml(draft, suggestions), encoding="utf-8")
    return load_rubric(path)


def accept(text: str, phrasings: bool = True, points: bool = True) -> str:
    """Uncomment suggestions as a person would: the labelled line and the deeper `#   ` lines under it."""
    out, block = [], None
    for line in text.splitlines():
        label = _LABEL.match(line)
        if label:
            wanted = points if label[2].startswith("- id:") else phrasings
            block = label[1] if wanted else None
            out.append(label[1] + label[2] if wanted else line)
        elif block is not None and line.startswith(block + "#   "):
            out.append(block + line[len(block) + 2 :])
        else:
            block = None
            out.append(line)
    return "\n".join(out) + "\n"


def header(text: str) -> str:
    """The comments at the top of the YAML, as one line."""
    return " ".join(line.removeprefix("# ") for line in text.split("\nexam:")[0].splitlines())


def raise_marks(text: str, question_id: str, by: float) -> str:
    """Do what an extra point's comment says: raise its question's marks by one step."""
    lines = text.splitlines()
    at = lines.index(f"  - id: {question_id}")
    marks = next(i for i in range(at, len(lines)) if lines[i].startswith("    marks: "))
    lines[marks] = f"    marks: {float(lines[marks].split(': ')[1]) + by:g}"
    return "\n".join(lines) + "\n"


def without_alternatives(rubric: Rubric) -> Rubric:
    data = rubric.model_dump()
    for question in data["questions"]:
        for point in question.get("points", []):
            point["alternatives"] = ()
    return parse_rubric(data, "test")


# ---- good replies: commented out, inert, and valid once uncommented ------------------------------


def test_suggestions_are_commented_out_under_their_point_and_change_nothing(llm, draft, tmp_path):
    suggestions, spent = ask(llm, draft)
    assert len(llm.requests) == len(SHORT) == spent.calls  # one call per short question, none for MCQs
    assert [q.question_id for q in suggestions.questions] == list(SHORT)
    assert all(q.status == "ok" and q.made for q in suggestions.questions)
    text = draft_yaml(draft, suggestions)
    assert written(draft, suggestions, tmp_path) == draft.rubric  # inert until a person uncomments them
    assert "16 other phrasings and 7 extra points, 0 discarded" in header(text)
    lines = text.splitlines()
    # under I4's p2, after its marks: the label, then one phrasing a line
    at = lines.index("      - id: p2", lines.index("  - id: I4"))
    assert lines[at + 3].startswith("        # alternatives:  # suggested (LLM, model test-model)")
    assert lines[at + 4] == "        #   - In other words, DNN has a better approximation rate, given a"
    assert lines[at + 5].startswith("      # - id: s1  # suggested (LLM, model test-model)")
    assert lines[at + 6] == "      #   text: A full answer also uses the term 'discontinuities'."
    assert lines[at + 7].startswith("      #   marks: 0.5  # adds 0.5 to I4: raise its marks by 0.5")
    assert not any("suggested" in line for line in lines[lines.index("questions:") : lines.index("  - id: I3")])  # MCQs


def test_uncommented_phrasings_load_as_the_points_alternatives(llm, draft, tmp_path):
    suggestions, _ = ask(llm, draft)
    loaded = written(draft, suggestions, tmp_path, accept(draft_yaml(draft, suggestions), points=False))
    assert without_alternatives(loaded) == draft.rubric  # marks, points and texts as drafted
    for question in loaded.questions:
        if isinstance(question, ShortQuestion):
            for point in question.points:
                assert point.alternatives == suggestions.phrasings(question.id, point.id) != ()
    # I3's point ends in a pattern that wraps onto a second line: the block goes after it
    assert loaded.question("I3").points[0].alternatives == (
        "In other words, U(-sqrt(6/(n_in + n_out)), sqrt(6/(n_in + n_out)))",
    )


def test_an_extra_point_is_accepted_with_the_marks_its_comment_asks_for(llm, draft, tmp_path):
    suggestions, _ = ask(llm, draft)
    uncommented = accept(draft_yaml(draft, suggestions), phrasings=False)
    # uncommenting alone adds a point's marks to the question: validation refuses it, loudly
    with pytest.raises(InputError, match=r"question I3: point marks add up to 1.5, but the question is worth 1"):
        written(draft, suggestions, tmp_path, uncommented)
    for question_id in SHORT:
        uncommented = raise_marks(uncommented, question_id, draft.rubric.question(question_id).step)
    loaded = written(draft, suggestions, tmp_path, uncommented)
    i4 = loaded.question("I4")
    assert [p.id for p in i4.points] == ["p1", "p2", "s1"]
    assert (
        i4.points[-1].text == "A full answer also uses the term 'discontinuities'." == suggestions.extra_points("I4")[0]
    )
    assert i4.points[-1].marks == 0.5 and i4.marks == 1.5
    assert loaded.max_total == draft.rubric.max_total + sum(draft.rubric.question(q).step for q in SHORT)


def test_a_point_with_alternatives_gets_suggestions_in_its_own_list(llm, tmp_path):
    rubric = parse_rubric(
        {
            "exam": "alt",
            "questions": [
                {
                    "id": "X1",
                    "type": "short",
                    "marks": 1,
                    "prompt": "Why Xavier?",
                    "model_answer": "It keeps the variance constant across layers.",
                    "points": [
                        {
                            "id": "purpose",
                            "text": "It keeps the variance constant across layers.",
                            "marks": 1,
                            "alternatives": ["Signals neither vanish nor explode."],
                            "patterns": ["varian"],
                        }
                    ],
                }
            ],
        },
        "test",
    )
    draft = Draft(rubric, (), "alt.txt")
    suggestions, _ = ask(llm, draft)
    text = draft_yaml(draft, suggestions)
    assert (
        "          # - In other words, It keeps the variance constant across layers."
        "  # suggested (LLM, model test-model)" in text
    )
    loaded = written(draft, suggestions, tmp_path, accept(text, points=False))
    assert loaded.question("X1").points[0].alternatives == (
        "Signals neither vanish nor explode.",
        "In other words, It keeps the variance constant across layers.",
    )
    assert loaded.question("X1").points[0].patterns == ("varian",)


def test_the_request_holds_the_papers_question_and_nothing_else(llm, draft):
    ask(llm, draft)
    i3 = draft.rubric.question("I3")
    first = llm.requests[0]
    assert first.user_message == (
        f"Question:\n{i3.prompt}\n\nModel answer:\n{i3.model_answer}\n\n"
        "Draft rubric points (JSON, one object per point):\n"
        '[{"id": "formula", "text": "U(-sqrt(6/(n_in + n_out)), sqrt(6/(n_in + n_out)))", "marks": 1.0}]'
    )
    schema = first.body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["phrasings"]["items"]["properties"]["point_id"]["enum"] == ["formula"]
    assert first.body["temperature"] == 0
    assert build_messages(i3)[1]["content"] == first.user_message


def test_questions_without_a_model_answer_are_not_asked(llm):
    paper = (
        "1. What does ReLU do? (1 mark)\n\n"
        "2. Why use dropout? (1 mark)\nAnswer: It reduces overfitting by dropping units at random.\n"
    )
    draft = draft_rubric(paper, "paper.txt")
    suggestions, spent = ask(llm, draft)
    assert [q.question_id for q in suggestions.questions] == ["Q2"] and spent.calls == 1
    assert "Why use dropout?" in llm.requests[0].user_message and "ReLU" not in llm.requests[0].user_message


# ---- bad replies are discarded and counted; the draft is never lost ------------------------------


def test_broken_json_is_discarded_whole_and_the_draft_is_written(llm, draft, tmp_path):
    suggestions, spent = ask(llm, draft, "broken")
    assert {q.status for q in suggestions.questions} == {"invalid"} and spent.invalid_replies == len(SHORT)
    assert suggestions.made == 0 and suggestions.discarded == 0
    text = draft_yaml(draft, suggestions)
    assert written(draft, suggestions, tmp_path) == draft.rubric
    assert "# suggested" not in text and "7 replies not readable" in header(text)


def test_a_fenced_reply_with_prose_around_it_is_read(llm, draft):
    suggestions, _ = ask(llm, draft, "fenced")
    assert suggestions.made == 23 and suggestions.discarded == 0


def test_invented_point_ids_are_discarded_and_the_rest_kept(llm, draft):
    suggestions, spent = ask(llm, draft, "unknown")
    assert spent.discarded == suggestions.discarded == len(SHORT)
    assert suggestions.for_question("I3").discarded == (
        "phrasing 2 names point 'bonus', which the question does not have",
    )
    assert suggestions.made == 23  # what the good reply holds


def test_empty_repeated_overlong_and_surplus_suggestions_are_discarded_one_by_one(llm, draft):
    suggestions, spent = ask(llm, draft, "messy")
    i4 = suggestions.for_question("I4")
    assert i4.discarded == (
        "phrasing 3 is empty",
        "phrasing 4 repeats a point, an alternative or another suggestion",  # p1's own text
        "phrasing 5 repeats a point, an alternative or another suggestion",  # the first phrasing again
        f"phrasing 6 is longer than {MAX_CHARS} characters",
        "phrasing 7 does not fit the schema: text: Input should be a valid string",
        "phrasing 10 is more than the 3 asked for point 'p1'",
        "missing point 2 is empty",
        "missing point 3 repeats a point, an alternative or another suggestion",
        "missing point 6 is more than the 3 asked for",
    )
    assert i4.phrasings["p1"] == (
        "In other words, Non-linear DNN can approximate any function due to",
        "Put another way, one.",
        "Put another way, two.",
    )
    assert i4.extra_points == ("A full answer also uses the term 'discontinuities'.", "Extra one.", "Extra two.")
    assert spent.discarded == suggestions.discarded == 9 * len(SHORT)


def test_replies_of_the_wrong_shape():
    question = parse_rubric(
        {
            "exam": "x",
            "questions": [
                {
                    "id": "Q",
                    "type": "short",
                    "marks": 1,
                    "model_answer": "A.",
                    "points": [{"id": "p1", "text": "A.", "marks": 1}],
                }
            ],
        },
        "x",
    ).question("Q")
    assert check_suggestions(question, "[1, 2]").error == "the reply has no 'phrasings' or 'missing_points' list"
    assert check_suggestions(question, "I cannot help with that.").status == "invalid"
    lenient = check_suggestions(
        question,
        json.dumps({"missing_points": ["B follows.", {"text": "C  too.\n"}], "phrasings": [{"text": "no id"}]}),
    )
    assert lenient.extra_points == ("B follows.", "C too.") and lenient.discarded == ("phrasing 1 names no point",)


def test_server_errors_fail_then_skip_and_the_draft_is_written(llm, draft, tmp_path):
    suggestions, spent = ask(llm, draft, "500")
    assert [q.status for q in suggestions.questions] == ["failed"] * 3 + ["skipped"] * 4  # down after 3 in a row
    assert spent.failures == 3 and spent.skipped == 4 and spent.retries == 3
    assert suggestions.summary().endswith("3 failed and 4 skipped (3 answers in a row failed)")
    assert written(draft, suggestions, tmp_path) == draft.rubric


def test_a_timeout_fails_that_question_only(llm, draft):
    llm.script, llm.delay = ["slow"], 1.0
    suggestions, spent = ask(llm, draft, timeout=0.2, retries=0)
    assert (
        suggestions.for_question("I3").status == "failed"
        and "no reply within 0.2 s" in suggestions.for_question("I3").error
    )
    assert all(q.status == "ok" for q in suggestions.questions[1:]) and spent.failures == 1


def test_an_unreachable_server_skips_every_question_and_says_why(draft, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LlmClient(LlmConfig(f"http://127.0.0.1:{port}/v1", "test-model", **FAST)) as client:
        suggestions = suggest(client, draft)
        assert client.spent.calls == 1 and client.spent.skipped == len(SHORT)
    assert {q.status for q in suggestions.questions} == {"skipped"}
    assert "cannot reach the LLM server" in suggestions.stopped and "7 skipped (cannot reach" in suggestions.summary()
    assert written(draft, suggestions, tmp_path) == draft.rubric


def test_the_call_budget_skips_the_rest_and_a_cached_rerun_costs_nothing(llm, draft, tmp_path):
    cache = tmp_path / "llm-cache.sqlite"
    suggestions, spent = ask(llm, draft, max_calls=2, cache_path=cache)
    assert [q.status for q in suggestions.questions].count("ok") == 2 and spent.skipped == 5
    assert suggestions.stopped == "the budget of 2 calls is spent"
    ask(llm, draft, cache_path=cache)
    again, spent = ask(llm, draft, max_calls=0, cache_path=cache)
    assert spent.calls == 0 and spent.cache_hits == len(SHORT) and again.made == 23


# ---- without an LLM, and the command line ---------------------------------------------------------


def test_without_suggestions_the_yaml_is_what_it_was(draft):
    assert draft_yaml(draft, None) == draft_yaml(draft)
    assert "suggested" not in draft_yaml(draft) and "LLM" not in draft_yaml(draft)


def test_cli_without_llm_url_writes_the_plain_draft(tmp_path):
    out = tmp_path / "draft.yaml"
    result = grader("rubric", "draft", PAPER, "-o", out, "--exam", "dl-midsem")
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == draft_yaml(read_paper(PAPER, exam="dl-midsem"))
    assert "LLM" not in result.stdout


def test_cli_with_llm_writes_suggestions_and_the_spend(llm, tmp_path):
    out = tmp_path / "draft.yaml"
    result = grader("rubric", "draft", PAPER, "-o", out, "--llm-url", llm.url, "--llm-model", "test-model")
    assert result.returncode == 0, result.stderr
    assert (
        "LLM suggestions (test-model) for 7 short questions: 16 other phrasings and 7 extra points, 0 discarded."
        in result.stdout
    )
    assert (
        "LLM spend: test-model" in result.stdout and "failed questions" in result.stdout and "7 of 200" in result.stdout
    )
    assert "  # suggested (LLM, model test-model)" in out.read_text(encoding="utf-8")
    validated = grader("validate", out)
    assert validated.returncode == 0 and "19 questions, 20 marks" in validated.stdout
    uncommented = tmp_path / "accepted.yaml"
    uncommented.write_text(accept(out.read_text(encoding="utf-8"), points=False), encoding="utf-8")
    assert grader("validate", uncommented).returncode == 0


def test_cli_with_no_calls_left_still_writes_the_draft(llm, tmp_path):
    out = tmp_path / "draft.yaml"
    result = grader(
        "rubric", "draft", PAPER, "-o", out, "--llm-url", llm.url, "--llm-model", "test-model", "--max-calls", "0"
    )
    assert result.returncode == 0, result.stderr
    assert "7 skipped (the budget of 0 calls is spent)" in result.stdout
    assert "The draft was written all the same" in result.stdout and not llm.requests
    assert load_rubric(out) == read_paper(PAPER).rubric


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["--llm-model", "m"], "--llm-model needs --llm-url"),
        (["--llm-url", "http://127.0.0.1:9/v1"], "an LLM model name is needed"),
        (["--llm-url", "ftp://x", "--llm-model", "m"], "is not an http:// or https:// URL"),
    ],
)
def test_cli_llm_options_that_cannot_work_are_one_line_errors(tmp_path, options, fragment):
    out = tmp_path / "draft.yaml"
    assert_one_line_error(grader("rubric", "draft", PAPER, "-o", out, *options), fragment)
    assert not out.exists()
