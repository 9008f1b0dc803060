#!/usr/bin/env python3
"""Compare the client library's own test suite run directly and through rwproxy.

    compare.py DIRECT.json PROXY.json KNOWN.txt

DIRECT.json / PROXY.json are written by outcomes_plugin.py ({test id: {outcome, message}}).
KNOWN.txt lists the tests that fail when run directly against the server, one per line:
`<test id> <one-line reason>` (# starts a comment).

A test counts as passed when its outcome through rwproxy equals its direct outcome (passed,
failed or skipped), failed otherwise (a test missing from one run is a difference too).
Prints every difference with the error seen through rwproxy and ends with the plain line
`N passed, M failed`; exits 1 when M > 0.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def load_outcomes(path: Path) -> dict[str, dict[str, str]] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}")
        return None


def load_known(path: Path) -> dict[str, str]:
    known: dict[str, str] = {}
    if not path.exists():
        return known
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        test_id, _, reason = line.partition(" ")
        known[test_id] = reason.strip()
    return known


def counts(outcomes: dict[str, dict[str, str]]) -> str:
    c = Counter(v["outcome"] for v in outcomes.values())
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def indent(text: str) -> str:
    return "\n".join("      " + ln for ln in (text or "(no message)").splitlines())


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    direct = load_outcomes(Path(sys.argv[1]))
    proxy = load_outcomes(Path(sys.argv[2]))
    known = load_known(Path(sys.argv[3]))
    if direct is None or not direct:
        print("the direct run recorded no test: nothing to compare")
        print("0 passed, 1 failed")
        return 1
    proxy = proxy or {}

    print(f"directly:       {counts(direct)}")
    print(f"through rwproxy: {counts(proxy)}")

    missing = {"outcome": "missing", "message": "the test did not run (or its run crashed)"}
    same = 0
    differences = []
    for test_id in sorted(set(direct) | set(proxy)):
        d = direct.get(test_id, missing)
        p = proxy.get(test_id, missing)
        if d["outcome"] == p["outcome"]:
            same += 1
        else:
            differences.append((test_id, d, p))

    direct_failures = sorted(t for t, v in direct.items() if v["outcome"] == "failed")
    listed = [t for t in direct_failures if t in known]
    unlisted = [t for t in direct_failures if t not in known]
    stale = sorted(t for t in known if direct.get(t, {}).get("outcome") != "failed")
    if listed:
        print(f"\nknown direct failures ({len(listed)}), listed in {sys.argv[3]}:")
        for t in listed:
            print(f"  {t}: through rwproxy {proxy.get(t, missing)['outcome']} ({known[t]})")
    if unlisted:
        print(f"\nwarning: {len(unlisted)} test(s) failed directly but are not listed in {sys.argv[3]}"
              " (the environment lacks something the suite needs, or the test is flaky):")
        for t in unlisted:
            print(f"  {t}\n{indent(direct[t]['message'])}")
    if stale:
        print(f"\nnote: listed as known direct failures but did not fail directly this time: {', '.join(stale)}")

    if differences:
        print(f"\nDIFFERENCES ({len(differences)}): outcome through rwproxy != outcome directly")
        for test_id, d, p in differences:
            print(f"  {test_id}: directly {d['outcome']}, through rwproxy {p['outcome']}")
            if p["outcome"] != "passed":
                print("    through rwproxy:\n" + indent(p["message"]))
            if d["outcome"] != "passed":
                print("    directly:\n" + indent(d["message"]))
    else:
        print("\nno differences: every test has the same outcome directly and through rwproxy")

    print(f"\n{same} passed, {len(differences)} failed")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
