"""The HTML report: ``otel-ml report --html`` and ``monitor.report_html``, checked in a real browser.

The browser tests open the page in Debian's headless Chromium (``tests/browser.py``, over the
DevTools protocol) and fail on any console error or network request; each saves a PNG
screenshot in its pytest ``tmp_path`` (printed, and kept under pytest's base temp directory).
Without Chromium they skip, or fail when ``OTEL_ML_REQUIRE_STACK=1`` (CI: ``make test``
installs it through ``tools/stack.py``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

pytest.importorskip("jinja2")
pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

import hospital_scenario  # noqa: E402
from browser import Browser, find_chromium  # noqa: E402

import otel_ml  # noqa: E402
from otel_ml.cli import EXIT_INPUT, EXIT_OK, main  # noqa: E402

HOSTILE = ['<script>window.__pwned = 1</script>',
           '"><img src=x onerror="window.__pwned = 2">',
           "ünïcødé 漢字 'single' \"double\" \u202e&amp;"]


def _chromium() -> str:
    found = find_chromium()
    if found is None:
        reason = "chromium is not installed (make test installs it: python tools/stack.py install)"
        if os.environ.get("OTEL_ML_REQUIRE_STACK", "").strip() == "1":
            pytest.fail(f"{reason} (OTEL_ML_REQUIRE_STACK=1 turns a missing component into a "
                        "failure)", pytrace=False)
        pytest.skip(reason)
    return found


def _keep(shot: Path, name: str) -> Path:
    """A screenshot, also copied as ``name`` into ``$OTEL_ML_TEST_ARTIFACTS`` when set (CI
    keeps that folder; pytest's ``tmp_path`` holds only the last three runs)."""
    folder = os.environ.get("OTEL_ML_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(folder) / name)
    print(f"screenshot: {shot}")
    return shot


def _monitor(reference, **kwargs) -> otel_ml.ModelMonitor:
    return otel_ml.ModelMonitor(kwargs.pop("name", "diabetes"), "1.0", reference=reference,
                                drift_window_s=1e9, slot_s=1e9, meter_provider=MeterProvider(),
                                tracer_provider=TracerProvider(), **kwargs)


# ---------------------------------------------------------------------------- the known case
@pytest.fixture(scope="module")
def hospital_files(tmp_path_factory) -> dict[str, Path]:
    """The new-hospital case (scikit-learn's diabetes data; C shifts bmi and bp) as files."""
    d = tmp_path_factory.mktemp("report_html")
    h = hospital_scenario.load()
    h.reference().save(d / "ref.json")
    frame, y = h.batch(np.random.default_rng(7), 6000)
    frame["pred"] = h.predict(frame)
    frame["y"] = y
    data = pd.DataFrame(frame)
    data.to_csv(d / "data.csv", index=False)
    data.to_parquet(d / "data.parquet")
    return {"dir": d, "ref": d / "ref.json", "csv": d / "data.csv", "parquet": d / "data.parquet"}


def _report(files, data: str, html: Path, *extra: str) -> dict:
    """``otel-ml report ... --json --html``: its JSON output (the HTML is written to ``html``)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["report", str(files["ref"]), str(files[data]), "--predictions", "pred",
                     "--segment-by", "hospital", "--labels", "y", "--json", "--html", str(html),
                     *extra])
    assert code == EXIT_OK
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def hospital_report(hospital_files) -> tuple[Path, dict]:
    html = hospital_files["dir"] / "report.html"
    return html, _report(hospital_files, "csv", html)


def test_the_report_opens_offline_in_chromium_without_errors_or_requests(hospital_report,
                                                                          tmp_path):
    _chromium()
    html, _ = hospital_report
    with Browser.start(tmp_path) as browser:
        visit = browser.open(html.resolve().as_uri())
        assert visit.console_errors == []
        assert visit.requests == []
        # It rendered: the summary, the heat map, one card per feature with its chart.
        assert visit.evaluate("document.querySelectorAll('#summary-table tr').length") == 12
        assert visit.evaluate("document.querySelectorAll('.heat td.cell').length") == 33
        assert visit.evaluate("document.querySelectorAll('#features section.card svg').length") == 10
        assert visit.evaluate("document.scripts.length") == 0
        pdf = visit.session.call("Page.printToPDF", printBackground=True)  # it prints
        assert pdf["data"].startswith("JVBERi0")  # base64 of "%PDF-"
        shot = _keep(visit.screenshot(tmp_path / "report.png"), "report-html-page.png")
        _keep(visit.screenshot(tmp_path / "report-top.png", height=1200), "report-html-top.png")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == 1280 and height > 2000  # the whole page, not the first screen


def test_the_checker_fails_on_a_console_error_and_on_a_network_request(tmp_path):
    """The browser checks above can fail: a page with a script error and a remote image."""
    _chromium()
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom"); '
                    'undefined_function();</script><img src="http://127.0.0.1:9/x.png">'
                    "</body></html>")
    with Browser.start(tmp_path) as browser:
        visit = browser.open(page.resolve().as_uri())
    assert any("boom" in e for e in visit.console_errors)
    assert any("undefined_function" in e for e in visit.console_errors)
    assert visit.requests == ["http://127.0.0.1:9/x.png"]


def test_the_shifted_feature_leads_the_summary_and_the_heat_map_marks_segment_c(
        hospital_report, tmp_path):
    _chromium()
    html, result = hospital_report
    with Browser.start(tmp_path) as browser:
        visit = browser.open(html.resolve().as_uri())
        order = visit.evaluate("[...document.querySelectorAll('#summary-table tr[data-feature]')]"
                               ".map(r => [r.dataset.feature, r.classList.contains('drifted')])")
        cells = visit.evaluate("[...document.querySelectorAll('.heat td.cell')].map(c => "
                               "[c.dataset.feature, c.dataset.segment, Number(c.dataset.score),"
                               " c.classList.contains('drifted'), "
                               "getComputedStyle(c).backgroundColor])")
        confusion = visit.evaluate("[...document.querySelectorAll('#confusion td')]"
                                   ".map(c => Number(c.textContent.replace(/,/g, '')))")
        _keep(visit.screenshot(tmp_path / "content.png", height=1400), "report-html-content.png")
    # The summary: the two shifted features first, flagged; nothing else drifted.
    assert {order[0][0], order[1][0]} == set(hospital_scenario.SHIFTED)
    assert [f for f, drifted in order if drifted] == [order[0][0], order[1][0]]
    assert sorted(result["drifted_features"]) == sorted(hospital_scenario.SHIFTED)
    # The heat map: the largest cells are the shifted features in hospital C, outlined there
    # and nowhere else, and the darkest colour.
    predictions = [c for c in cells if c[0] == "__prediction__"]
    assert len(predictions) == 3
    cells = [c for c in cells if c[0] != "__prediction__"]
    ranked = sorted(cells, key=lambda c: -c[2])
    assert {(f, s) for f, s, *_ in ranked[:2]} == {(f, "C") for f in hospital_scenario.SHIFTED}
    assert {(f, s) for f, s, _, drifted, _ in cells if drifted} == \
        {(f, "C") for f in hospital_scenario.SHIFTED}
    alpha = {(f, s): float(re.findall(r"[\d.]+", bg)[3]) if bg.startswith("rgba") else 1.0
             for f, s, _, _, bg in cells}
    assert max(alpha, key=alpha.get)[1] == "C"
    # The page's numbers are the CLI's: the heat map score of (bmi, C) is the JSON's.
    js = result["drift"]["segments"]["C"]["features"]["bmi"]["scores"]["jensen_shannon"]
    assert next(c[2] for c in cells if c[:2] == ["bmi", "C"]) == pytest.approx(js, abs=1e-12)
    # The confusion matrix holds every labelled row.
    assert sum(confusion) == 6000


def test_the_page_numbers_are_the_reports_numbers(hospital_report):
    html, result = hospital_report
    text = html.read_text()
    for name, f in result["drift"]["features"].items():
        psi = f"{f['scores']['psi']:.3f}"
        row = re.search(rf'<tr class="[^"]*" data-feature="{name}">(.*?)</tr>', text, re.S)
        assert row and psi in row.group(1), name
    assert "6,000 rows" in text
    assert hashlib_of(Path(result["reference"])) in text  # provenance: the reference file hash


def hashlib_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_parquet_gives_the_same_report(hospital_files, hospital_report, tmp_path):
    pytest.importorskip("pyarrow")
    html = tmp_path / "p.html"
    result = _report(hospital_files, "parquet", html)
    assert result["drift"]["features"] == hospital_report[1]["drift"]["features"]
    assert html.stat().st_size > 10_000


def test_labels_need_predictions(hospital_files, tmp_path, capsys):
    code = main(["report", str(hospital_files["ref"]), str(hospital_files["csv"]), "--labels",
                 "y", "--html", str(tmp_path / "x.html")])
    assert code == EXIT_INPUT
    assert "--labels needs --predictions" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


# ---------------------------------------------------------------------------- hostile names
def test_hostile_names_are_text_and_run_no_script(tmp_path):
    _chromium()
    rng = np.random.default_rng(3)
    n = 3000
    train = pd.DataFrame({HOSTILE[0]: rng.normal(0, 1, n), HOSTILE[1]: rng.normal(0, 1, n),
                          HOSTILE[2]: rng.choice(HOSTILE, n)})
    reference = otel_ml.Reference.from_data(train, predictions=rng.choice(HOSTILE, n))
    live = train.copy()
    live[HOSTILE[0]] += rng.choice([0.0, 3.0], n)
    monitor = _monitor(reference, name=HOSTILE[1], segment_by="segment")
    live["segment"] = rng.choice(HOSTILE, n)
    monitor.observe(live, predictions=rng.choice(HOSTILE, n))
    monitor.record_outcomes(rng.choice(HOSTILE, n), rng.choice(HOSTILE, n))
    page = monitor.report_html(tmp_path / "hostile.html", title=HOSTILE[0],
                               provenance=[(HOSTILE[1], HOSTILE[0])])
    text = page.read_text()
    for name in HOSTILE[:2]:
        assert name not in text  # only escaped
    with Browser.start(tmp_path) as browser:
        visit = browser.open(page.resolve().as_uri())
        assert visit.console_errors == [] and visit.requests == []
        assert visit.evaluate("window.__pwned === undefined")
        assert visit.evaluate("document.scripts.length + document.images.length") == 0
        assert visit.evaluate("document.title") == HOSTILE[0]
        body = visit.evaluate("document.body.textContent")
        # Every name in running text is bidi-isolated: the right-to-left override in one name
        # does not reverse the text after it.
        loose = visit.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => [...e.childNodes].some("
            "n => n.nodeType === 3 && n.textContent.includes('\u202e')))"
            ".map(e => e.tagName).filter(t => !['BDI', 'TD', 'TH', 'H1', 'text', 'title']"
            ".includes(t))")
        assert loose == []
        _keep(visit.screenshot(tmp_path / "hostile.png", height=1200), "report-html-hostile.png")
    for name in HOSTILE:
        assert name in body  # shown as the text it is


# ---------------------------------------------------------------------------- size, API, extra
def test_fifty_features_by_ten_segments_stay_under_two_megabytes(tmp_path):
    rng = np.random.default_rng(5)
    n = 20_000
    cats = [f"category-{i}" for i in range(30)]
    columns = {f"num_{i:02d}": rng.normal(i, 1 + i % 3, n) for i in range(40)}
    columns.update({f"cat_{i}": rng.choice(cats, n) for i in range(10)})
    train = pd.DataFrame(columns)
    reference = otel_ml.Reference.from_data(train, predictions=rng.normal(0, 1, n))
    live = pd.DataFrame(columns).sample(frac=1.0, random_state=1).reset_index(drop=True)
    live["segment"] = rng.choice([f"segment-{i}" for i in range(10)], n)
    monitor = _monitor(reference, segment_by="segment")
    monitor.observe(live, predictions=rng.normal(0.2, 1, n))
    monitor.record_outcomes(rng.normal(0, 1, n), rng.normal(0, 1, n))
    page = monitor.report_html(tmp_path / "big.html")
    size = page.stat().st_size
    print(f"50 features x 10 segments: {size / 1e6:.2f} MB")
    assert size < 2_000_000
    text = page.read_text()
    assert text.count('class="cell') == 51 * 10  # 50 features and the predictions
    assert text.count("<svg") == 52  # 50 features, the predictions and the error distribution
    assert not re.search(r"""(src|href)\s*=|url\(|@import""", text)  # nothing to fetch


def test_current_shares_are_the_window_counts_over_the_reference_bins(tmp_path):
    """The bars are the counts the drift metrics use: checked against numpy on the raw data."""
    from sklearn.datasets import load_diabetes

    x = load_diabetes(scaled=False).data
    reference = otel_ml.Reference.from_data({"bmi": x[:, 2], "bp": x[:, 3]})
    monitor = _monitor(reference)
    live = {"bmi": x[:, 2] * 1.1, "bp": x[:, 3]}
    monitor.observe(live)
    text = monitor.report_html(tmp_path / "bins.html").read_text()
    card = re.search(r'<section class="card[^"]*" data-feature="bmi">(.*?)</section>', text, re.S)
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', card.group(1))]
    edges = reference.features["bmi"].edges
    expected = np.bincount(np.searchsorted(edges, live["bmi"], side="right"),
                           minlength=len(edges) + 1) / len(x)
    assert values[1::2] == pytest.approx(expected.tolist())  # current
    assert values[0::2] == pytest.approx(list(reference.features["bmi"].shares))
    first = re.search(r'<tr class="([^"]*)" data-feature="([^"]+)">', text)
    assert first.groups() == ("drifted", "bmi")
    assert monitor.drift_report().drifted_features == ["bmi"]


def test_regression_window_shows_errors(tmp_path):
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    x, y = data.data, data.target
    reference = otel_ml.Reference.from_data({"bmi": x[:, 2]}, predictions=y)
    monitor = _monitor(reference, task="regression")
    monitor.observe({"bmi": x[:, 2]}, predictions=y * 0.9)
    monitor.record_outcomes(y, y * 0.9)
    page = monitor.report_html(tmp_path / "reg.html").read_text()
    assert ">mae<" in page and ">rmse<" in page and 'id="confusion"' not in page


def test_importing_otel_ml_does_not_import_jinja2():
    code = ("import sys, otel_ml; m = otel_ml.ModelMonitor('m'); "
            "print('jinja2' in sys.modules, 'otel_ml._internal.report.html' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_without_jinja2_the_cli_says_what_to_install(hospital_files, tmp_path):
    code = ("import sys; sys.modules['jinja2'] = None\n"
            "from otel_ml.cli import main\n"
            f"sys.exit(main(['report', {str(hospital_files['ref'])!r}, "
            f"{str(hospital_files['csv'])!r}, '--html', {str(tmp_path / 'x.html')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 2, out.stderr
    assert "pip install 'otel-ml[report]'" in out.stderr


def test_a_monitor_that_saw_nothing_or_has_no_reference_still_writes_a_page(tmp_path):
    reference = otel_ml.Reference.from_data({"a": np.arange(100.0)})
    empty = _monitor(reference).report_html(tmp_path / "empty.html").read_text()
    assert 'class="verdict">No rows in this window<' in empty
    blind = _monitor(None)
    blind.observe({"a": np.array([1.0, np.nan, 3.0])})
    text = blind.report_html(tmp_path / "blind.html").read_text()
    assert 'class="verdict">Drift not evaluated<' in text
    assert "no reference profile: drift needs one" in text
    assert re.search(r"<td>a</td><td>missing</td><td class=\"n\">1</td>", text)


def test_a_categorical_feature_is_shown_by_category_with_its_unseen_share(tmp_path):
    rng = np.random.default_rng(11)
    n = 4000
    cities = np.array(["Lyon", "Oslo", "Porto", "Turku"])
    reference = otel_ml.Reference.from_data({"city": rng.choice(cities, n)})
    monitor = _monitor(reference)
    live = rng.choice(cities, n)
    live[: n // 10] = "Kyiv"  # 10% never seen in the reference
    monitor.observe({"city": live})
    text = monitor.report_html(tmp_path / "cat.html").read_text()
    card = re.search(r'<section class="card[^"]*" data-feature="city">(.*?)</section>', text, re.S)
    labels = re.findall(r'<text x=[^>]*text-anchor="middle">([^<]+)</text>', card.group(1))
    profile = reference.features["city"]
    assert labels == list(profile.categories) + ["(other)"]  # most frequent first
    assert sorted(labels[:-1]) == sorted(cities)
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', card.group(1))]
    assert values[0::2] == pytest.approx(list(profile.shares))
    assert values[-1] == pytest.approx(0.1)  # current share of "(other)": the unseen city
    assert re.search(r"<td>unseen_category</td><td class=\"n\">400</td><td class=\"n\">10.0%</td>",
                     card.group(1))
    assert re.search(r"<tr class=drifted><td>city</td><td>unseen_category</td>", text)


def test_regression_labels_joined_by_id_show_the_error_per_reference_bin(tmp_path):
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    x, y = data.data, data.target
    reference = otel_ml.Reference.from_data({"bmi": x[:, 2]}, predictions=y)
    monitor = _monitor(reference, task="regression")

    @monitor
    def predict(rows, prediction_id=None):
        return rows["bmi"] * 5.0

    for i in range(len(y)):
        predict({"bmi": x[i:i + 1, 2]}, prediction_id=f"p{i}")
        monitor.record_outcome(f"p{i}", y[i])
    expected = monitor.performance_report().error_by_bin["bmi"]
    text = monitor.report_html(tmp_path / "bins.html").read_text()
    section = text.split("<h3>Error by reference bin</h3>", 1)[1]
    card = re.search(r'<section class="card"><h3>bmi</h3>(.*?)</section>', section, re.S)
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', card.group(1))]
    assert values == pytest.approx([b["error"] for b in expected.values()])


def test_estimated_performance_is_shown_with_its_band(tmp_path):
    """A reference fitted with labels: the page shows the estimate (before any label) with the
    numbers of ``performance_report().estimated``."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    x, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=5000).fit(x[:200], y[:200])
    reference = otel_ml.Reference.from_data(x[200:400], predictions=model.predict_proba(x[200:400]),
                                            labels=y[200:400])
    monitor = _monitor(reference, name="cancer")
    monitor.observe(x[400:], model.predict_proba(x[400:]))
    estimated = monitor.performance_report().estimated
    text = monitor.report_html(tmp_path / "estimated.html").read_text()
    row = re.search(r'<tr data-metric="accuracy"><td>accuracy</td><td class="n">([^<]+)</td>'
                    r'<td class="n">([^<]+) &ndash; ([^<]+)</td><td class="n">-</td>', text)
    assert row is not None
    acc = estimated["accuracy"]
    assert [float(v) for v in row.groups()] == pytest.approx(
        [acc["value"], acc["lower"], acc["upper"]], abs=5e-4)
    assert 'data-metric="roc_auc"' in text
    blind = _monitor(otel_ml.Reference.from_data(x[200:400]), name="blind")
    blind.observe(x[400:])
    assert "needs a reference fitted with labels" in blind.report_html(
        tmp_path / "blind.html").read_text()


def test_regression_error_distribution_counts_the_absolute_errors(tmp_path):
    """The page's error distribution: the window's absolute errors per bucket of the
    ``ml.model.error.absolute`` histogram, counted as numpy counts them."""
    from sklearn.datasets import load_diabetes

    from otel_ml.contract import ERROR_BUCKETS

    data = load_diabetes(scaled=False)
    x, y = data.data, data.target
    reference = otel_ml.Reference.from_data({"bmi": x[:, 2]}, predictions=y)
    monitor = _monitor(reference, task="regression")
    predicted = y * 0.9 + 3.0
    monitor.observe({"bmi": x[:, 2]}, predictions=predicted)
    monitor.record_outcomes(y, predicted)
    errors = monitor.performance_report().errors
    expected = np.bincount(np.searchsorted(ERROR_BUCKETS, np.abs(predicted - y), side="left"),
                           minlength=len(ERROR_BUCKETS) + 1)
    assert list(errors.values()) == expected.tolist() and sum(errors.values()) == len(y)
    page = monitor.report_html(tmp_path / "errors.html").read_text()
    assert 'id="error-distribution"' in page
    shown = {html.unescape(k): v for k, v in re.findall(
        r'<tr data-bucket="([^"]+)"><td>[^<]+</td><td class="n">([^<]+)</td>', page)}
    assert {k: int(v.replace(",", "")) for k, v in shown.items()} == {
        k: n for k, n in errors.items() if n}
