"""Unit tests for .ci/autobahn/check.py on synthetic report directories.

    python3 -m unittest discover -s .ci/autobahn/selftest -p 'test_*.py'

Needs nothing but Python 3; the reports are made here, in the shape wstest
writes them (index.json of agent -> case id -> summary, one JSON per case).

With AUTOBAHN_REAL_REPORT=DIR (a report written by a real run), the tests in
RealReportTest also check doctored copies of that report.
"""

import io
import json
import os
import shutil
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import check  # noqa: E402


def case_file(case_id):
    return "hybi_case_%s.json" % case_id.replace(".", "_")


def make_report(root, cases, agent="hybi"):
    """cases: {id: (behavior, behaviorClose)} -> a report dir under root."""
    os.makedirs(root, exist_ok=True)
    index = {agent: {}}
    for cid, (behavior, behavior_close) in cases.items():
        index[agent][cid] = {
            "behavior": behavior,
            "behaviorClose": behavior_close,
            "duration": 3,
            "remoteCloseCode": 1000,
            "reportfile": case_file(cid),
        }
        with open(os.path.join(root, case_file(cid)), "w") as f:
            json.dump({"id": cid, "agent": agent, "behavior": behavior,
                       "behaviorClose": behavior_close,
                       "description": "description of %s" % cid,
                       "expectation": "expectation of %s" % cid,
                       "result": "result of %s" % cid,
                       "resultClose": "resultClose of %s" % cid,
                       "remoteCloseCode": 1000, "localCloseCode": 1000,
                       "wasClean": True, "wasNotCleanReason": None}, f)
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)
    return root


def run_check(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = check.main(list(argv))
        except SystemExit as e:  # argparse errors
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


GOOD = {
    "1.1.1": ("OK", "OK"),
    "2.10": ("OK", "OK"),
    "5.20": ("INFORMATIONAL", "OK"),
    "7.1.6": ("INFORMATIONAL", "INFORMATIONAL"),
    "9.1.1": ("OK", "OK"),
    "10.1.1": ("OK", "OK"),
}


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="autobahn-check-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def report(self, changes=None, **kw):
        cases = dict(GOOD)
        cases.update(changes or {})
        return make_report(os.path.join(self.tmp, "r"), cases, **kw)

    def test_all_ok_passes(self):
        rc, out, _ = run_check(self.report())
        self.assertEqual(rc, 0, out)
        self.assertIn("check: PASS (6 cases)", out)
        self.assertIn("total case duration", out)

    def test_failed_behavior_fails_and_is_described(self):
        rc, out, _ = run_check(self.report({"2.10": ("FAILED", "OK")}))
        self.assertEqual(rc, 1)
        self.assertIn("case 2.10: behavior=FAILED", out)
        self.assertIn("description of 2.10", out)
        self.assertIn("result of 2.10", out)
        self.assertNotIn("case 1.1.1:", out)

    def test_non_strict_fails_in_either_field(self):
        for pair in [("NON-STRICT", "OK"), ("OK", "NON-STRICT")]:
            rc, out, _ = run_check(self.report({"1.1.1": pair}))
            self.assertEqual(rc, 1, pair)
            self.assertIn("case 1.1.1:", out)

    def test_failed_close_fails(self):
        rc, out, _ = run_check(self.report({"9.1.1": ("OK", "FAILED")}))
        self.assertEqual(rc, 1)
        self.assertIn("behaviorClose=FAILED", out)

    def test_unimplemented_fails_in_every_chapter(self):
        rc, _, _ = run_check(self.report({"10.1.1": ("UNIMPLEMENTED", "UNIMPLEMENTED")}))
        self.assertEqual(rc, 1)
        # permessage-deflate (12.*, 13.*) is implemented: unimplemented there fails too.
        rc, out, _ = run_check(self.report({"12.1.1": ("UNIMPLEMENTED", "UNIMPLEMENTED")}))
        self.assertEqual(rc, 1, out)

    def test_close_behaviors_fail_unless_allowed(self):
        for value in ["WRONG CODE", "UNCLEAN", "FAILED BY CLIENT"]:
            path = self.report({"7.1.6": ("OK", value)})
            self.assertEqual(run_check(path)[0], 1, value)
            rc, out, _ = run_check("--allow", value, path)
            self.assertEqual(rc, 0, out)

    def test_failed_and_non_strict_cannot_be_allowed(self):
        for value in ["FAILED", "NON-STRICT", "UNIMPLEMENTED", "OK"]:
            rc, _, err = run_check("--allow", value, self.report())
            self.assertEqual(rc, 2, value)
            self.assertIn("--allow takes only", err)

    def test_unknown_behavior_fails(self):
        rc, out, _ = run_check(self.report({"1.1.1": ("SOMETHING NEW", "OK")}))
        self.assertEqual(rc, 1)
        self.assertIn("SOMETHING NEW", out)

    def test_missing_agent_is_no_verdict(self):
        rc, out, _ = run_check(self.report(agent="someone-else"))
        self.assertEqual(rc, 2)
        self.assertIn("agent 'hybi' not in", out)
        self.assertIn("someone-else", out)

    def test_agent_with_no_cases_is_no_verdict(self):
        path = os.path.join(self.tmp, "empty")
        os.makedirs(path)
        with open(os.path.join(path, "index.json"), "w") as f:
            json.dump({"hybi": {}}, f)
        rc, out, _ = run_check(path)
        self.assertEqual(rc, 2)
        self.assertIn("ran no case", out)

    def test_missing_or_broken_index_is_no_verdict(self):
        path = os.path.join(self.tmp, "nothing")
        os.makedirs(path)
        self.assertEqual(run_check(path)[0], 2)
        with open(os.path.join(path, "index.json"), "w") as f:
            f.write("{not json")
        rc, out, _ = run_check(path)
        self.assertEqual(rc, 2)
        self.assertIn("not valid JSON", out)

    def test_expected_case_missing_fails(self):
        expect = os.path.join(self.tmp, "expected.txt")
        with open(expect, "w") as f:
            f.write("\n".join(list(GOOD) + ["9.2.1"]) + "\n")
        rc, out, _ = run_check("--expect-cases", expect, self.report())
        self.assertEqual(rc, 1)
        self.assertIn("MISSING CASES (1), not in the report: 9.2.1", out)
        with open(expect, "w") as f:
            f.write("\n".join(GOOD) + "\n")
        self.assertEqual(run_check("--expect-cases", expect, self.report())[0], 0)

    def test_unreadable_case_json_still_reported(self):
        path = self.report({"2.10": ("FAILED", "FAILED")})
        os.remove(os.path.join(path, case_file("2.10")))
        rc, out, _ = run_check(path)
        self.assertEqual(rc, 1)
        self.assertIn("cannot read hybi_case_2_10.json", out)

    def test_markdown_table_on_stdout_details_on_stderr(self):
        rc, out, err = run_check("--markdown", self.report({"2.10": ("NON-STRICT", "OK")}))
        self.assertEqual(rc, 1)
        self.assertTrue(out.startswith("| result | behavior | behaviorClose |\n|---|---:|---:|\n"), out)
        self.assertIn("| OK | 3 | 5 |", out)
        self.assertIn("| NON-STRICT | 1 | 0 |", out)
        self.assertIn("| INFORMATIONAL | 2 | 1 |", out)
        self.assertIn("| **cases** | 6 | 6 |", out)
        self.assertIn("case 2.10", err)
        self.assertNotIn("case 2.10", out)

    def test_counts(self):
        rc, out, _ = run_check(self.report({"2.10": ("FAILED", "UNCLEAN")}))
        lines = {line.split("  ")[0].strip(): line.split()[-2:] for line in out.splitlines()
                 if line[:1].isalpha() and len(line.split()) >= 3 and line.split()[-1].isdigit()}
        self.assertEqual(lines["OK"], ["3", "4"])
        self.assertEqual(lines["FAILED"], ["1", "0"])
        self.assertEqual(lines["UNCLEAN"], ["0", "1"])


@unittest.skipUnless(os.environ.get("AUTOBAHN_REAL_REPORT"), "AUTOBAHN_REAL_REPORT not set")
class RealReportTest(unittest.TestCase):
    """Doctored copies of a report written by a real wstest run."""

    def setUp(self):
        self.src = os.environ["AUTOBAHN_REAL_REPORT"]
        self.tmp = tempfile.mkdtemp(prefix="autobahn-real-")
        self.dir = os.path.join(self.tmp, "r")
        shutil.copytree(self.src, self.dir)
        with open(os.path.join(self.dir, "index.json")) as f:
            self.index = json.load(f)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self):
        with open(os.path.join(self.dir, "index.json"), "w") as f:
            json.dump(self.index, f)

    def set_all_ok(self):
        for entry in self.index["hybi"].values():
            entry["behavior"] = entry["behaviorClose"] = "OK"

    def test_real_report_parses(self):
        rc, out, _ = run_check(self.src)
        self.assertIn(rc, (0, 1), out)
        self.assertIn("agent hybi: %d cases" % len(self.index["hybi"]), out)

    def test_all_ok_copy_passes(self):
        self.set_all_ok()
        self.write()
        rc, out, _ = run_check(self.dir)
        self.assertEqual(rc, 0, out)

    def test_one_case_edited_to_failed_fails(self):
        self.set_all_ok()
        self.index["hybi"]["1.1.1"]["behavior"] = "FAILED"
        self.write()
        rc, out, _ = run_check(self.dir)
        self.assertEqual(rc, 1, out)
        self.assertIn("case 1.1.1: behavior=FAILED", out)
        self.assertIn("Send text message with payload 0.", out)  # from the real per-case JSON

    def test_one_case_edited_to_non_strict_close_fails(self):
        self.set_all_ok()
        self.index["hybi"]["5.1"]["behaviorClose"] = "NON-STRICT"
        self.write()
        rc, out, _ = run_check(self.dir)
        self.assertEqual(rc, 1, out)
        self.assertIn("case 5.1: behaviorClose=NON-STRICT", out)

    def test_dropped_case_fails_with_expected_list(self):
        self.set_all_ok()
        expect = os.path.join(self.tmp, "expected.txt")
        with open(expect, "w") as f:
            f.write("\n".join(self.index["hybi"]) + "\n")
        del self.index["hybi"]["9.8.6"]
        self.write()
        rc, out, _ = run_check("--expect-cases", expect, self.dir)
        self.assertEqual(rc, 1, out)
        self.assertIn("not in the report: 9.8.6", out)


if __name__ == "__main__":
    unittest.main()
