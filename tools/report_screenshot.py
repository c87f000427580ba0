#!/usr/bin/env python3
"""Make the README's screenshot of the HTML report (``docs/images/report.png``).

The new-hospital case of ``tests/hospital_scenario.py`` (scikit-learn's diabetes data; hospital
C shifts ``bmi`` and ``bp``) goes through ``otel-ml report --html`` with predictions, labels and
segments; headless Chromium (``tests/browser.py``) shoots the top of the page. With Pillow
installed the PNG is reduced to a 64-colour palette (a few times smaller).

    .venv/bin/python tools/report_screenshot.py [-o docs/images/report.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "images" / "report.png")
    parser.add_argument("--height", type=int, default=1250, help="CSS pixels of the page shown")
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd

    import hospital_scenario
    from browser import Browser
    from otel_ml.cli import main as cli

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        h = hospital_scenario.load()
        h.reference().save(tmp / "reference.json")
        frame, y = h.batch(np.random.default_rng(7), 6000)
        frame["prediction"] = h.predict(frame)
        frame["label"] = y
        pd.DataFrame(frame).to_csv(tmp / "today.csv", index=False)
        html = tmp / "report.html"
        code = cli(["report", str(tmp / "reference.json"), str(tmp / "today.csv"),
                    "--predictions", "prediction", "--labels", "label", "--segment-by",
                    "hospital", "--html", str(html)])
        if code not in (0, 1):
            return code
        with Browser.start(tmp) as browser:
            visit = browser.open(html.resolve().as_uri())
            if visit.console_errors or visit.requests:
                print(f"errors {visit.console_errors} requests {visit.requests}", file=sys.stderr)
                return 1
            shot = visit.screenshot(tmp / "shot.png", width=1280, height=args.height)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        try:
            from PIL import Image
        except ImportError:
            args.output.write_bytes(shot.read_bytes())
        else:
            image = Image.open(shot).convert("RGB")
            image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(args.output,
                                                                           optimize=True)
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
