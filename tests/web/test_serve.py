"""`grader serve`: the real app on a real port, driven by headless Chromium (Debian's chromium and
chromium-driver through Selenium), plus its safety rules over plain HTTP.

The browser tests skip, saying why, where Chromium, its driver or Selenium is missing; `.ci/run`
installs them. Set GRADER_UPDATE_SCREENSHOT=1 to copy the queue view's screenshot to docs/.
"""

from __future__ import annotations

import http.client
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from grader.errors import GraderError, InputError
from grader.exam.submissions import Submissions
from grader.review.gradebook import Gradebook
from grader.scoring.triage import triage
from grader.web.server import start, stop
from tests import tiny_class
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 60
"""Seconds an explicit wait allows an element to appear (a ceiling, never a pause)."""
SCRIPT = "<script>document.title='pwned'</script>"
IMAGE = "<img src=x onerror=\"document.title='pwned'\">"


# -- gradebooks -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_book(tmp_path_factory, sample, rubric) -> Path:
    """The bundled sample graded once (conftest's `sample`), every flagged answer queued."""
    path = tmp_path_factory.mktemp("served") / "exam.db"
    with Gradebook.open(path) as gb:
        gb.record_run(rubric, sample.submissions, sample.grades, triaged=triage(sample.grades, rubric))
        gb._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one self-contained file to copy per test
    return path


@pytest.fixture
def exam_db(sample_book, tmp_path) -> Path:
    copy = tmp_path / "exam.db"
    shutil.copy(sample_book, copy)
    return copy


@pytest.fixture
def hostile_db(tmp_path) -> Path:
    """The tiny class, where two students wrote markup instead of an answer."""
    answers = {(g.student_id, g.question_id): f"answer of {g.student_id}" for g in tiny_class.grades().items}
    answers[("s1", "S1")] = SCRIPT
    answers[("s2", "S1")] = IMAGE
    subs = Submissions("tiny.csv", ("s1", "s2", "s3", "s4"), (), {}, answers, {})
    path = tmp_path / "tiny.db"
    with Gradebook.open(path) as gb:
        gb.record_run(tiny_class.RUBRIC, subs, tiny_class.grades())
    return path


# -- a running server -------------------------------------------------------------------------------


class Served:
    def __init__(self, db: Path, encoder) -> None:
        self.db = db
        self.server, self.link = start(db, "127.0.0.1", 0, lambda: encoder)
        self.token = self.link.split("token=")[1]
        self.port = self.server.effective_port
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        stop(self.server)
        self.thread.join(WAIT)

    def request(self, method: str, path: str, body: str | None = None, cookies: str = "") -> http.client.HTTPResponse:
        """A raw request: the path goes out exactly as written (no client-side normalising)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        headers = {"Cookie": cookies} if cookies else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.text = response.read().decode("utf-8", "replace")
        connection.close()
        return response


@pytest.fixture
def serve(encoder):
    running = []

    def _serve(db: Path) -> Served:
        running.append(Served(db, encoder))
        return running[-1]

    yield _serve
    for s in running:
        s.close()


def login(served: Served, ta: str = "alice") -> tuple[str, str]:
    """Cookies and CSRF token of a browser-like session that followed the link and typed a name."""
    first = served.request("GET", urlsplit(served.link).path + "?" + urlsplit(served.link).query)
    assert first.status == 302
    jar = {c.split("=", 1)[0]: c.split(";")[0] for c in first.headers.get_all("Set-Cookie")}
    page = served.request("GET", "/name", cookies="; ".join(jar.values()))
    jar.update({c.split("=", 1)[0]: c.split(";")[0] for c in page.headers.get_all("Set-Cookie") or []})
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    done = served.request("POST", "/name", f"csrf={csrf}&ta={ta}&next=/queue", cookies="; ".join(jar.values()))
    assert done.status == 302
    jar.update({c.split("=", 1)[0]: c.split(";")[0] for c in done.headers.get_all("Set-Cookie") or []})
    return "; ".join(jar.values()), csrf


# -- safety -----------------------------------------------------------------------------------------


def test_every_request_needs_the_token(hostile_db, serve):
    served = serve(hostile_db)
    for path in ("/", "/queue", "/overview", "/student/s1", "/static/app.css", "/name"):
        assert served.request("GET", path).status == 403
        assert served.request("GET", path + "?token=wrong" if "?" not in path else path).status == 403
    wrong = served.request("GET", "/queue", cookies="grader_token=not-it")
    assert wrong.status == 403 and "s1" not in wrong.text
    cookies, _ = login(served)
    assert served.request("GET", "/queue", cookies=cookies).status == 200


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(hostile_db, serve):
    served = serve(hostile_db)
    cookies, csrf = login(served)
    form = "student=s2&question=S1&version=0&action=set&mark=1"
    for body in (form, form + "&csrf=", form + "&csrf=" + csrf[::-1]):
        answer = served.request("POST", "/decide", body, cookies=cookies)
        assert answer.status == 403 and "CSRF" in answer.text
    assert served.request("POST", "/undo", "", cookies=cookies).status == 403
    with Gradebook.open(hostile_db) as gb:
        assert gb.audit("s2", "S1") == [] and gb.entry("s2", "S1").source == "auto"
    assert served.request("POST", "/decide", form + "&csrf=" + csrf, cookies=cookies).status == 302
    with Gradebook.open(hostile_db) as gb:
        assert gb.entry("s2", "S1").ta_mark == 1.0 and gb.audit("s2", "S1")[0].ta == "alice"


def test_student_markup_is_shown_as_text_everywhere(hostile_db, serve):
    served = serve(hostile_db)
    cookies, _ = login(served)
    for path in ("/queue?student=s1&question=S1", "/queue?student=s2&question=S1", "/student/s1", "/student/s2"):
        page = served.request("GET", path, cookies=cookies)
        assert page.status == 200
        assert "<script>document" not in page.text and "<img src=x" not in page.text
    assert (
        "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"
        in served.request("GET", "/student/s1", cookies=cookies).text
    )
    policy = served.request("GET", "/queue", cookies=cookies).headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy  # and no 'unsafe-inline': markup that slipped through still could not run


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/../../gradebook.py",
        "/static/..%2f..%2fgradebook.py",
        "/static/%2e%2e/%2e%2e/cli.py",
        "/static//etc/passwd",
        "/static/..\\..\\cli.py",
        "/../../../../etc/passwd",
        "/tiny.db",
        "/static/tiny.db",
    ],
)
def test_no_file_outside_the_app_is_served(hostile_db, serve, path):
    served = serve(hostile_db)
    cookies, _ = login(served)
    answer = served.request("GET", path, cookies=cookies)
    if answer.status == 308:  # a doubled slash is merged first: follow it, on this server only
        assert answer.headers["Location"] == served.url("/static/etc/passwd")
        answer = served.request("GET", "/static/etc/passwd", cookies=cookies)
    assert answer.status in (400, 404)
    assert "import" not in answer.text and "root:" not in answer.text and "SQLite" not in answer.text


def test_the_name_page_never_sends_the_browser_elsewhere(hostile_db, serve):
    served = serve(hostile_db)
    cookies, csrf = login(served)
    answer = served.request("POST", "/name", f"csrf={csrf}&ta=bob&next=//evil.example/x", cookies=cookies)
    assert answer.status == 302 and answer.headers["Location"] == "/"


def test_grader_serve_refuses_what_is_not_a_current_gradebook_and_serves_the_sample(tmp_path, exam_db):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADER_CACHE": "off"}
    grader = (
        [sys.executable, "-m", "grader.cli"]
        if not (ROOT / ".venv/bin/grader").exists()
        else [str(ROOT / ".venv/bin/grader")]
    )
    notes = tmp_path / "notes.db"
    notes.write_text("not a database at all" * 100)
    newer = tmp_path / "newer.db"
    shutil.copy(exam_db, newer)
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    for path, why in (
        (notes, "not a gradebook"),
        (newer, "newer than this grader"),
        (tmp_path / "missing.db", "no such gradebook"),
    ):
        done = subprocess.run(
            [*grader, "serve", str(path), "--port", "0"], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == 2 and why in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    process = subprocess.Popen(
        [*grader, "serve", str(exam_db), "--port", "0"], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        line = process.stdout.readline()
        assert line.startswith(f"Serving {exam_db} at http://127.0.0.1:") and "?token=" in line and "Ctrl-C" in line
        link = urlsplit(line.split(" at ")[1].split()[0])
        connection = http.client.HTTPConnection(link.hostname, link.port, timeout=WAIT)
        connection.request("GET", f"{link.path}?{link.query}")
        assert connection.getresponse().status == 302  # to the page, with the token now in a cookie
    finally:
        process.terminate()
        process.wait()


def test_listening_beyond_loopback_says_what_it_exposes():
    from grader.web.server import EXPOSED

    text = EXPOSED.format(host="0.0.0.0", port=8765)
    assert "anyone who can reach port 8765" in text and "not encrypted" in text


def test_a_port_in_use_is_one_line_not_a_traceback(hostile_db, serve, encoder):
    served = serve(hostile_db)
    with pytest.raises(GraderError, match=f"cannot listen on 127.0.0.1:{served.port}"):
        start(hostile_db, "127.0.0.1", served.port, lambda: encoder)


def test_a_file_that_is_not_a_gradebook_is_refused_before_serving(tmp_path, encoder):
    (tmp_path / "notes.db").write_text("plain text" * 200)
    with pytest.raises(InputError, match="not a gradebook"):
        start(tmp_path / "notes.db", "127.0.0.1", 0, lambda: encoder)


# -- in the browser -----------------------------------------------------------------------------------


def chromium(tmp_path: Path, name: str):
    """A headless Chromium from Debian's packages, driven by its chromium-driver; skip where missing."""
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("no Chromium: apt-get install chromium chromium-driver (.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="no Selenium: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1100",
        f"--user-data-dir={tmp_path / ('profile-' + name)}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture
def browsers(tmp_path):
    opened = []

    def _open(name: str = "a"):
        opened.append(chromium(tmp_path, name))
        return opened[-1]

    yield _open
    for driver in opened:
        driver.quit()


REPLACED = "does not belong to the document"
"""Chromium's word for an element read while its page was being replaced (a form posted, a key pressed):
like a stale element, it means "not yet", though Selenium's waits do not know it as such."""


def wait_for(driver, css: str, text: str = ""):
    """The element `css` once it is shown (and holds `text`), within WAIT seconds."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(driver):
        try:
            element = driver.find_element(By.CSS_SELECTOR, css)
            return element if element.is_displayed() and text in element.text else False
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        except WebDriverException as exc:
            if REPLACED in str(exc):
                return False
            raise

    return WebDriverWait(driver, WAIT).until(shown, f"{css} holding {text!r}")


def press(driver, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


def sign_in(driver, served: Served, ta: str) -> None:
    driver.get(served.link)
    wait_for(driver, "#ta-name").send_keys(ta + "\n")
    wait_for(driver, "#progress")


def test_review_three_answers_by_keyboard_mark_a_group_and_undo_it(exam_db, serve, browsers, tmp_path):
    from selenium.webdriver.common.by import By

    served = serve(exam_db)
    with Gradebook.open(exam_db) as gb:
        queue = [(e.student_id, e.question_id, e.auto_mark, e.max_mark) for e in gb.queue()]
    driver = browsers()
    sign_in(driver, served, "alice")
    assert driver.find_element(By.ID, "progress").text == f"1 of {len(queue)}"
    driver.save_screenshot(str(tmp_path / "serve-queue.png"))
    if os.environ.get("GRADER_UPDATE_SCREENSHOT"):
        shutil.copy(tmp_path / "serve-queue.png", ROOT / "docs" / "serve-queue.png")

    first, second, third = queue[:3]
    press(driver, "a")  # accept the first
    wait_for(driver, ".flash.ok", f"saved: {first[0]} {first[1]} accepted")
    assert driver.find_element(By.ID, "progress").text == f"2 of {len(queue)}"
    press(driver, "m")  # the mark field; an off-step mark is refused and nothing is saved
    press(driver, "0.3\n")
    wait_for(driver, ".flash.error", "off")
    press(driver, "m")
    mark = second[3]
    press(driver, f"{mark:g}\n")
    wait_for(driver, ".flash.ok", f"saved: {second[0]} {second[1]} set {mark:g}")
    press(driver, "a")
    wait_for(driver, ".flash.ok", f"saved: {third[0]} {third[1]} accepted")

    driver.get(served.url("/groups?question=A1c"))
    group = wait_for(driver, "section.group")
    members = [box.get_attribute("value") for box in group.find_elements(By.CSS_SELECTOR, "input[name=member]")]
    assert len(members) >= 2
    field = group.find_element(By.CSS_SELECTOR, ".group-mark")
    field.clear()
    field.send_keys("1")
    group.find_element(By.CSS_SELECTOR, ".mark-group").click()
    wait_for(driver, ".flash.ok", f"saved: 1 for {len(members)} answer(s) to A1c")
    with Gradebook.open(exam_db) as gb:
        assert all(gb.entry(s, "A1c").ta_mark == 1.0 for s in members)

    driver.get(served.url("/queue"))
    wait_for(driver, "#progress")
    press(driver, "u")
    wait_for(driver, ".flash.ok", f"undone: your group mark of {len(members)} answers")

    with Gradebook.open(exam_db) as gb:
        assert gb.entry(first[0], first[1]).status == "accepted" and gb.entry(first[0], first[1]).reviewed_by == "alice"
        assert gb.entry(second[0], second[1]).ta_mark == mark and gb.entry(third[0], third[1]).status == "accepted"
        assert all(
            gb.entry(s, "A1c").reviewed is False
            for s in members
            if (s, "A1c") not in {first[:2], second[:2], third[:2]}
        )
        log = [a for a in gb.audit() if a.action != "grade"]
        assert [a.action for a in log] == ["accept", "set", "accept"] + ["set"] * len(members) + ["undo"] * len(members)
        grouped = [a for a in log if a.batch is not None]
        assert {a.student_id for a in grouped} == set(members) and len({a.batch for a in grouped}) == 1
        assert all(a.reason.startswith("group mark") and a.ta == "alice" for a in grouped)


def test_two_tas_race_on_one_answer_one_wins_the_other_is_told_nothing_is_lost(exam_db, serve, browsers):
    from selenium.webdriver.common.by import By

    served = serve(exam_db)
    with Gradebook.open(exam_db) as gb:
        student, question = gb.queue()[0].student_id, gb.queue()[0].question_id
        max_mark = gb.queue()[0].max_mark
    alice, bob = browsers("alice"), browsers("bob")
    sign_in(alice, served, "alice")
    sign_in(bob, served, "bob")
    for driver in (alice, bob):  # both look at the same answer
        driver.get(served.url(f"/queue?student={student}&question={question}"))
        wait_for(driver, "#mark")
    alice.find_element(By.ID, "mark").send_keys(f"{max_mark:g}\n")
    wait_for(alice, ".flash.ok", "saved")
    bob.find_element(By.ID, "mark").send_keys("0\n")
    refused = wait_for(bob, ".flash.error", "not saved")
    assert f"changed by alice since you saw it (now alice set {max_mark:g})" in refused.text
    assert f"alice set {max_mark:g}" in wait_for(bob, "#state").text  # bob now sees alice's mark
    with Gradebook.open(exam_db) as gb:
        assert gb.entry(student, question).ta_mark == max_mark and [a.ta for a in gb.audit(student, question)] == [
            "alice"
        ]
    bob.find_element(By.ID, "mark").send_keys("0\n")  # on the fresh view, bob's decision goes through
    wait_for(bob, ".flash.ok", "saved")
    with Gradebook.open(exam_db) as gb:
        log = gb.audit(student, question)
        assert gb.entry(student, question).ta_mark == 0 and [(a.ta, a.new["mark"]) for a in log] == [
            ("alice", max_mark),
            ("bob", 0.0),
        ]


def test_script_in_an_answer_does_not_run_in_the_browser(hostile_db, serve, browsers):
    served = serve(hostile_db)
    driver = browsers()
    sign_in(driver, served, "alice")
    for student, text in (("s1", SCRIPT), ("s2", IMAGE)):
        driver.get(served.url(f"/queue?student={student}&question=S1"))
        assert wait_for(driver, "#answer").text == text
        assert driver.title != "pwned"
