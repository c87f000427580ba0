"""Cost and size of the HTML report (issue 21), and the renderers it was chosen against.

1. ``otel-ml report REF DATA`` on a 100,000-row CSV of 20 features (4 categorical) and 5
   segments, with predictions and labels: the table report (the baseline, what ``report``
   takes today) vs the same command with ``--html``, medians of ``--repeats`` runs in this
   process; the difference is the HTML report's cost (target: <= 2 s).
2. The page's size at 20 x 5 and 50 x 10 (target: < 2 MB at 50 x 10).
3. The same 50 bar charts drawn by each renderer considered (docs/report.md): inline SVG from
   our template, matplotlib's SVG backend, Vega-Lite rendered to static SVG by vl-convert, and
   Plotly (the JavaScript library a self-contained page must embed); a renderer that is not
   installed is reported as such (``pip install matplotlib plotly vl-convert-python``).

Run: ``.venv/bin/python benchmarks/report_html.py [--repeats 3]`` (prints Markdown tables).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = 100_000
N_NUMERIC = 16
N_CATEGORICAL = 4
SEGMENTS = 5


def make_files(out: Path, *, rows: int, numeric: int, categorical: int, segments: int,
               seed: int = 21) -> tuple[Path, Path]:
    """A reference (from ``rows`` training rows) and a data file whose segment 0 is shifted."""
    import pandas as pd

    from otel_ml import Reference

    rng = np.random.default_rng(seed)

    def frame(shift: bool) -> pd.DataFrame:
        cols = {f"num_{i:02d}": rng.normal(i, 1.0 + i % 3, rows) for i in range(numeric)}
        cats = np.array([f"c{j}" for j in range(12)])
        cols.update({f"cat_{i}": rng.choice(cats, rows) for i in range(categorical)})
        df = pd.DataFrame(cols)
        df["pred"] = rng.integers(0, 3, rows)
        df["y"] = np.where(rng.random(rows) < 0.8, df["pred"], rng.integers(0, 3, rows))
        if shift:
            df["segment"] = rng.choice([f"segment-{k}" for k in range(segments)], rows)
            moved = df["segment"] == "segment-0"
            df.loc[moved, "num_00"] += 1.5
        return df

    train = frame(False)
    ref = out / "ref.json"
    Reference.from_data(train.drop(columns=["pred", "y"]), predictions=train["pred"]).save(ref)
    data = out / "data.csv"
    frame(True).to_csv(data, index=False)
    return ref, data


def run_cli(argv: list[str]) -> float:
    from otel_ml.cli import main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    elapsed = time.perf_counter() - start
    assert code == 0, code
    return elapsed


def cost_table(tmp: Path, repeats: int) -> None:
    ref, data = make_files(tmp, rows=ROWS, numeric=N_NUMERIC, categorical=N_CATEGORICAL,
                           segments=SEGMENTS)
    base = ["report", str(ref), str(data), "--predictions", "pred", "--labels", "y",
            "--segment-by", "segment"]
    html = tmp / "report.html"
    run_cli(base)  # warm-up (imports, file cache)
    plain, with_html = [], []
    for _ in range(repeats):
        plain.append(run_cli(base))
        with_html.append(run_cli(base + ["--html", str(html)]))
    p, h = statistics.median(plain), statistics.median(with_html)
    print(f"### otel-ml report, {ROWS:,} rows x {N_NUMERIC + N_CATEGORICAL} features x "
          f"{SEGMENTS} segments (median of {repeats})\n")
    print("| command | seconds | ratio |")
    print("|---|---:|---:|")
    print(f"| `report` (baseline: the table report) | {p:.2f} | 1.00x |")
    print(f"| `report --html` | {h:.2f} | {h / p:.2f}x |")
    print(f"| HTML report's own cost (difference; target <= 2 s) | {h - p:.2f} | "
          f"{'PASS' if h - p <= 2.0 else 'FAIL'} |")
    print(f"\npage: {html.stat().st_size / 1e3:.0f} kB\n")


def size_table(tmp: Path) -> list[dict]:
    """Page size at 50 features x 10 segments, and the distributions the renderers draw."""
    import pandas as pd

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from otel_ml import ModelMonitor, Reference

    rng = np.random.default_rng(5)
    n = 20_000
    cols = {f"num_{i:02d}": rng.normal(i, 1 + i % 3, n) for i in range(40)}
    cols.update({f"cat_{i}": rng.choice([f"category-{j}" for j in range(30)], n)
                 for i in range(10)})
    reference = Reference.from_data(pd.DataFrame(cols), predictions=rng.normal(0, 1, n))
    live = pd.DataFrame(cols)
    live["segment"] = rng.choice([f"segment-{k}" for k in range(10)], n)
    monitor = ModelMonitor("bench", reference=reference, segment_by="segment",
                           drift_window_s=1e9, slot_s=1e9, meter_provider=MeterProvider(),
                           tracer_provider=TracerProvider())
    monitor.observe(live, predictions=rng.normal(0.1, 1, n))
    start = time.perf_counter()
    page = monitor.report_html(tmp / "big.html")
    took = time.perf_counter() - start
    size = page.stat().st_size
    print("### Page size, 50 features x 10 segments, 20,000 rows\n")
    print("| page | bytes | of the 2 MB limit | render s |")
    print("|---|---:|---:|---:|")
    print(f"| inline SVG (this report) | {size:,} | {size / 2e6:.1%} | {took:.2f} |\n")
    out = []
    for name, p in reference.features.items():
        labels = [str(j) for j in range(len(p.shares))]
        out.append({"name": name, "labels": labels, "ref": list(map(float, p.shares)),
                    "cur": list(map(float, rng.dirichlet(np.ones(len(p.shares)))))})
    return out


def renderer_table(charts: list[dict]) -> None:
    """The same 50 paired bar charts through each renderer: bytes and seconds."""
    rows = []
    from otel_ml._internal.report.charts import bar_chart

    start = time.perf_counter()
    import jinja2

    template = jinja2.Environment(autoescape=True).from_string(
        '{% for c in charts %}<svg viewBox="0 0 {{ c.width }} {{ c.height }}">'
        '{% for g in c.groups %}{% for b in g.bars %}<rect x="{{ b.x }}" y="{{ b.y }}" '
        'width="{{ b.w }}" height="{{ b.h }}"/>{% endfor %}<text x="{{ g.x }}">{{ g.short }}'
        '</text>{% endfor %}</svg>{% endfor %}')
    svg = template.render(charts=[bar_chart(c["labels"], [c["ref"], c["cur"]]) for c in charts])
    rows.append(("inline SVG (Jinja2 template, geometry in Python)", len(svg.encode()),
                 time.perf_counter() - start, "none"))
    try:
        import matplotlib

        matplotlib.use("svg")
        import matplotlib.pyplot as plt

        start = time.perf_counter()
        total = 0
        for c in charts:
            fig, ax = plt.subplots(figsize=(4.6, 2.2))
            x = np.arange(len(c["labels"]))
            ax.bar(x - 0.2, c["ref"], 0.4)
            ax.bar(x + 0.2, c["cur"], 0.4)
            ax.set_xticks(x, c["labels"], rotation=55)
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
            plt.close(fig)
            total += len(buf.getvalue().encode())
        rows.append(("matplotlib SVG backend", total, time.perf_counter() - start,
                     "none (text as paths or font)"))
    except ImportError:
        rows.append(("matplotlib SVG backend", None, None, "not installed"))
    try:
        import plotly
        import plotly.graph_objects as go
        from plotly.offline import get_plotlyjs

        start = time.perf_counter()
        divs = []
        for c in charts:
            fig = go.Figure([go.Bar(x=c["labels"], y=c["ref"]), go.Bar(x=c["labels"], y=c["cur"])])
            divs.append(fig.to_html(full_html=False, include_plotlyjs=False))
        js = len(get_plotlyjs().encode())
        total = sum(len(d.encode()) for d in divs) + js
        rows.append((f"Plotly {plotly.__version__} (embedded plotly.js)", total,
                     time.perf_counter() - start, f"plotly.js alone {js:,} bytes"))
    except ImportError:
        rows.append(("Plotly (embedded plotly.js)", None, None, "not installed"))
    try:
        import vl_convert as vlc

        start = time.perf_counter()
        total = 0
        for c in charts:
            values = [{"bin": lab, "series": s, "share": v} for s in ("ref", "cur")
                      for lab, v in zip(c["labels"], c[s])]
            spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                    "data": {"values": values}, "mark": "bar", "width": 400, "height": 130,
                    "encoding": {"x": {"field": "bin", "type": "ordinal"},
                                 "xOffset": {"field": "series"},
                                 "y": {"field": "share", "type": "quantitative"},
                                 "color": {"field": "series"}}}
            total += len(vlc.vegalite_to_svg(spec).encode())
        rows.append(("Vega-Lite via vl-convert (static SVG)", total, time.perf_counter() - start,
                     "none (rendered by an embedded JS engine)"))
    except ImportError:
        rows.append(("Vega-Lite via vl-convert (static SVG)", None, None, "not installed"))
    print("### The same 50 paired bar charts, by renderer\n")
    print("| renderer | bytes | seconds | script needed |")
    print("|---|---:|---:|---|")
    for name, size, secs, note in rows:
        if size is None:
            print(f"| {name} | - | - | {note} |")
        else:
            print(f"| {name} | {size:,} | {secs:.2f} | {note} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cost_table(tmp, args.repeats)
        charts = size_table(tmp)
        renderer_table(charts)


if __name__ == "__main__":
    main()
