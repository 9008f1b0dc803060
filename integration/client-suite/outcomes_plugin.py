"""pytest plugin (loaded with -p outcomes_plugin): writes one outcome per test id to the JSON
file named by $CLIENT_SUITE_OUTCOMES, with the first lines of the error for failures.

Outcomes: passed, failed (a failing call, setup or teardown, or a failing subtest), skipped.
"""

from __future__ import annotations

import json
import os

_results: dict[str, dict[str, str]] = {}


def _message(report) -> str:
    text = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # The "E   ..." lines carry the exception; fall back to the last lines.
    errors = [ln.strip() for ln in lines if ln.lstrip().startswith("E ")]
    picked = errors[:6] if errors else [ln.strip() for ln in lines[-4:]]
    return "\n".join(picked)[:1500]


def pytest_runtest_logreport(report):
    entry = _results.setdefault(report.nodeid, {"outcome": "", "message": ""})
    if report.failed:
        if entry["outcome"] != "failed":
            entry["outcome"] = "failed"
            entry["message"] = f"[{report.when}] " + _message(report)
    elif report.skipped:
        if entry["outcome"] in ("", "passed"):
            entry["outcome"] = "skipped"
            if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
                entry["message"] = str(report.longrepr[2])
    elif report.passed and report.when == "call" and entry["outcome"] == "":
        entry["outcome"] = "passed"


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("CLIENT_SUITE_OUTCOMES")
    if not path:
        return
    for entry in _results.values():
        if not entry["outcome"]:
            entry["outcome"] = "failed"
            entry["message"] = entry["message"] or "no outcome recorded"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_results, f, indent=1, sort_keys=True)
