"""The committed rules, dashboards and docs are exactly what the generators produce."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools import gen_dashboards, gen_docs, gen_rules  # noqa: E402

CASES = [
    (gen_rules, gen_rules.RULES_DIR),
    (gen_dashboards, gen_dashboards.DASHBOARDS_DIR),
    (gen_docs, gen_docs.DOCS),
]


@pytest.mark.parametrize("module, directory", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_committed_files_are_up_to_date(module, directory):
    for fname, text in module.render().items():
        path = directory / fname
        assert path.is_file(), f"{path} is missing: run python tools/{module.__name__.split('.')[-1]}.py"
        assert path.read_text() == text, (
            f"{path.relative_to(REPO)} is out of date: run python tools/"
            f"{module.__name__.split('.')[-1]}.py")


@pytest.mark.parametrize("module", [gen_rules, gen_dashboards, gen_docs],
                         ids=lambda m: m.__name__)
def test_check_mode_reports_a_stale_file(module, monkeypatch, capsys):
    # Point the generator at an empty directory: --check must fail and name the files.
    attr = {gen_rules: "RULES_DIR", gen_dashboards: "DASHBOARDS_DIR", gen_docs: "DOCS"}[module]
    target = REPO / "build-check-probe"
    monkeypatch.setattr(module, attr, target)
    assert not target.exists()
    assert module.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err


def test_rules_dir_holds_only_generated_rule_files():
    shipped = {p.name for p in gen_rules.RULES_DIR.glob("*.yml")}
    assert shipped == set(gen_rules.render())
