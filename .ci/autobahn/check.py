#!/usr/bin/env python3
"""Judge an Autobahn|Testsuite report directory for one agent.

    check.py [--agent hybi] [--expect-cases FILE] [--allow BEHAVIOR]... [--markdown] REPORT_DIR

Reads REPORT_DIR/index.json (written by wstest's fuzzingclient or
fuzzingserver mode), prints how many cases got each `behavior` and each
`behaviorClose`, the summed case durations, and every failing case with the
description / expectation / result from its per-case JSON.

A case fails when its behavior or behaviorClose is
  FAILED, NON-STRICT, WRONG CODE, UNCLEAN, FAILED BY CLIENT, NO_CLOSE,
  UNIMPLEMENTED (hybi implements every chapter, permessage-deflate's 12 and 13
  included), or any value this script
  does not know.
OK and INFORMATIONAL pass.
--allow relaxes one of WRONG CODE, UNCLEAN, FAILED BY CLIENT (repeatable);
FAILED, NON-STRICT and UNIMPLEMENTED cannot be relaxed.
With --expect-cases FILE (case ids, one a line), a case id missing from the
report fails too (e.g. a server that died between two cases).

--markdown prints a markdown table of the counts on stdout (for
docs/CONFORMANCE.md); everything else then goes to stderr.

Exit status: 0 all passed; 1 some case failed or is missing;
2 no verdict possible (no/invalid index.json, agent missing, no case ran,
bad arguments).
"""

import argparse
import json
import os
import sys
from collections import Counter

PASSING = {"OK", "INFORMATIONAL"}
ALWAYS_FAILING = {"FAILED", "NON-STRICT", "NO_CLOSE"}
RELAXABLE = {"WRONG CODE", "UNCLEAN", "FAILED BY CLIENT"}
# Display order for the counts; unknown values are appended.
ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "WRONG CODE",
         "UNCLEAN", "FAILED BY CLIENT", "FAILED", "NO_CLOSE"]


def case_key(case_id):
    """'9.10.2' -> (9, 10, 2), for numeric ordering."""
    try:
        return tuple(int(p) for p in case_id.split("."))
    except ValueError:
        return (10**9, case_id)


def chapter(case_id):
    return case_key(case_id)[0]


def verdict(value, case_id, allowed):
    """None if `value` passes for `case_id`, else the reason it fails."""
    if value in PASSING:
        return None
    if value == "UNIMPLEMENTED":
        return "UNIMPLEMENTED"
    if value in RELAXABLE:
        return None if value in allowed else value
    if value in ALWAYS_FAILING:
        return value
    return "unknown behavior %r" % (value,)


def ordered(counter):
    keys = [k for k in ORDER if k in counter] + sorted(k for k in counter if k not in ORDER)
    return [(k, counter[k]) for k in keys]


def load_case_report(report_dir, entry):
    name = entry.get("reportfile")
    if not name:
        return {}
    try:
        with open(os.path.join(report_dir, name), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"_error": "cannot read %s: %s" % (name, e)}


def fmt_ms(ms):
    return "%d ms" % ms if ms < 10000 else "%.1f s" % (ms / 1000.0)


def one_line(value, limit=300):
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report_dir", help="directory holding index.json")
    ap.add_argument("--agent", default="hybi", help="agent name in index.json (default: hybi)")
    ap.add_argument("--expect-cases", metavar="FILE",
                    help="file of case ids (one a line) that must all be in the report")
    ap.add_argument("--allow", action="append", default=[], metavar="BEHAVIOR",
                    help="let this behavior pass: one of %s" % ", ".join(sorted(RELAXABLE)))
    ap.add_argument("--markdown", action="store_true",
                    help="print a markdown table of the counts on stdout")
    args = ap.parse_args(argv)

    bad = [a for a in args.allow if a not in RELAXABLE]
    if bad:
        ap.error("--allow takes only %s, not %s" % (", ".join(sorted(RELAXABLE)), ", ".join(bad)))
    allowed = set(args.allow)

    out = sys.stderr if args.markdown else sys.stdout

    def say(*a):
        print(*a, file=out)

    index_path = os.path.join(args.report_dir, "index.json")
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    except OSError as e:
        say("check: no report: cannot read %s (%s)" % (index_path, e.strerror))
        return 2
    except ValueError as e:
        say("check: %s is not valid JSON: %s" % (index_path, e))
        return 2
    if not isinstance(index, dict):
        say("check: %s is not an object of agents" % index_path)
        return 2

    if args.agent not in index:
        say("check: agent %r not in %s; agents there: %s"
            % (args.agent, index_path, ", ".join(sorted(index)) or "none"))
        return 2
    cases = index[args.agent]
    if not isinstance(cases, dict) or not cases:
        say("check: agent %r ran no case (%s)" % (args.agent, index_path))
        return 2

    behavior = Counter(c.get("behavior", "<missing>") for c in cases.values())
    behavior_close = Counter(c.get("behaviorClose", "<missing>") for c in cases.values())
    durations = [(c.get("duration"), cid) for cid, c in cases.items()
                 if isinstance(c.get("duration"), (int, float))]

    failing = []
    for cid in sorted(cases, key=case_key):
        entry = cases[cid]
        reasons = []
        for field in ("behavior", "behaviorClose"):
            why = verdict(entry.get(field, "<missing>"), cid, allowed)
            if why:
                reasons.append("%s=%s" % (field, entry.get(field, "<missing>")))
        if reasons:
            failing.append((cid, entry, reasons))

    missing = []
    if args.expect_cases:
        try:
            with open(args.expect_cases, encoding="utf-8") as f:
                expected = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        except OSError as e:
            say("check: cannot read --expect-cases file: %s" % e)
            return 2
        missing = sorted(set(expected) - set(cases), key=case_key)

    # ---- summary ----------------------------------------------------------------
    say("Autobahn report %s, agent %s: %d cases" % (args.report_dir, args.agent, len(cases)))
    if args.expect_cases:
        say("expected %d cases, %d missing" % (len(expected), len(missing)))
    say("")
    width = max(len(k) for k in list(behavior) + list(behavior_close) + ["behavior"])
    say("%-*s  %8s  %13s" % (width, "", "behavior", "behaviorClose"))
    for key in [k for k, _ in ordered(behavior + behavior_close)]:
        say("%-*s  %8d  %13d" % (width, key, behavior.get(key, 0), behavior_close.get(key, 0)))
    if durations:
        total_ms = sum(d for d, _ in durations)
        slowest = sorted(durations, reverse=True)[:5]
        say("")
        say("total case duration: %.1f s (sum of %d case durations)" % (total_ms / 1000.0, len(durations)))
        say("slowest: " + ", ".join("%s %s" % (cid, fmt_ms(d)) for d, cid in slowest))

    if args.markdown:
        print("| result | behavior | behaviorClose |")
        print("|---|---:|---:|")
        for key, _ in ordered(behavior + behavior_close):
            print("| %s | %d | %d |" % (key, behavior.get(key, 0), behavior_close.get(key, 0)))
        print("| **cases** | %d | %d |" % (len(cases), len(cases)))
        if missing:
            print("| MISSING (not run) | %d | |" % len(missing))

    # ---- verdict ------------------------------------------------------------
    if failing:
        say("")
        say("FAILING CASES (%d):" % len(failing))
        for cid, entry, reasons in failing:
            detail = load_case_report(args.report_dir, entry)
            say("")
            say("  case %s: %s" % (cid, ", ".join(reasons)))
            if "_error" in detail:
                say("    (%s)" % detail["_error"])
            for field in ("description", "expectation", "result", "resultClose"):
                if detail.get(field):
                    say("    %-12s %s" % (field + ":", one_line(detail[field])))
            extra = []
            for field in ("remoteCloseCode", "localCloseCode", "wasClean", "wasNotCleanReason"):
                if field in detail or field in entry:
                    extra.append("%s=%s" % (field, detail.get(field, entry.get(field))))
            if extra:
                say("    " + ", ".join(extra))
            if entry.get("reportfile"):
                say("    report:      %s" % os.path.join(args.report_dir, entry["reportfile"]))
    if missing:
        say("")
        shown = missing if len(missing) <= 40 else missing[:40] + ["... (%d more)" % (len(missing) - 40)]
        say("MISSING CASES (%d), not in the report: %s" % (len(missing), " ".join(shown)))

    say("")
    if failing or missing:
        say("check: FAIL (%d failing, %d missing of %d%s)"
            % (len(failing), len(missing), len(cases) + len(missing),
               "; allowed: " + ", ".join(sorted(allowed)) if allowed else ""))
        return 1
    say("check: PASS (%d cases%s)"
        % (len(cases), "; allowed: " + ", ".join(sorted(allowed)) if allowed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
