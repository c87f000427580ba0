"""An XGBoost classifier served with no otel_ml code: opentelemetry-instrument observes it.

The same as ``zero_code_sklearn.py`` (read it for the three steps) with the ``xgboost``
instrumentor (``pip install 'otel-ml[auto,xgboost]'``): ``XGBClassifier.predict`` and
``predict_proba`` calls are predict calls (the ``Booster`` call inside them is not another);
``Booster.predict``/``inplace_predict`` called directly are too. No otel_ml import here.
"""

from __future__ import annotations

import argparse
import time

import xgboost
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split


def train():
    """The model, its training frame and the frame it serves (breast cancer, bundled)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_serve, y_train, _ = train_test_split(X, y, test_size=0.4, random_state=0)
    model = xgboost.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1).fit(X_train, y_train)
    return model, X_train, X_serve


def serve(model, X, calls: int, rows: int, shift: str | None = None, pause: float = 0.0) -> int:
    """``calls`` predict calls of ``rows`` rows each (cycling over ``X``), ``pause`` seconds
    apart; the rows predicted."""
    X = X.copy()
    if shift:
        feature, factor = shift.rsplit(":", 1)
        X[feature] = X[feature] * float(factor)
    served = 0
    for i in range(calls):
        start = (i * rows) % max(len(X) - rows, 1)
        served += len(model.predict(X.iloc[start:start + rows]))
        time.sleep(pause)
    model.predict_proba(X.iloc[:rows])
    return served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--shift", help="FEATURE:FACTOR, e.g. 'mean radius:1.6'")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between calls")
    parser.add_argument("--save-training", metavar="CSV",
                        help="write the training rows and the model's predictions, and exit")
    args = parser.parse_args()
    model, X_train, X_serve = train()
    if args.save_training:
        X_train.assign(prediction=model.predict(X_train)).to_csv(args.save_training, index=False)
        print(f"wrote {len(X_train)} training rows to {args.save_training}")
        return
    served = serve(model, X_serve, args.calls, args.rows, args.shift, args.pause)
    print(f"served {served} rows in {args.calls} predict calls")


if __name__ == "__main__":
    main()
