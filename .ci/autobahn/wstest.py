# -*- coding: utf-8 -*-
"""Launcher for Autobahn|Testsuite's `wstest` (Python 2.7 only).

install.sh puts the suite and its pinned dependencies into
.ci/cache/autobahn/site with `pip install --target`. A --target folder is not
a site directory by itself: the `zope` namespace package (zope.interface) only
resolves once the folder's .pth files are processed, which is what
site.addsitedir does. Its entries are then moved to the front of sys.path so
that nothing installed in the interpreter's own site-packages can shadow the
pinned versions.

Usage:
    python2.7 .ci/autobahn/wstest.py [wstest options]     e.g. -m fuzzingclient -s SPEC
    python2.7 .ci/autobahn/wstest.py --list-cases SPEC     case ids a spec selects, one a line

Environment: AUTOBAHN_SITE overrides the folder.
"""
import os
import site
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SITE = os.environ.get("AUTOBAHN_SITE") or os.path.join(ROOT, ".ci", "cache", "autobahn", "site")


def fail(msg):
    sys.stderr.write("wstest.py: %s\n" % msg)
    sys.exit(2)


if sys.version_info[:2] != (2, 7):
    fail("Autobahn|Testsuite needs Python 2.7, this is %s" % sys.version.split()[0])
if not os.path.isdir(SITE):
    fail("%s does not exist: run .ci/autobahn/install.sh first" % SITE)

_before = list(sys.path)
site.addsitedir(SITE)
_added = [p for p in sys.path if p not in _before]
sys.path[:] = _added + [p for p in sys.path if p not in _added]


def list_cases(spec_path):
    """Print the case ids that SPEC's cases / exclude-cases select, in run order."""
    import json
    from autobahntestsuite.case import Cases, CaseBasename, CaseCategories, CaseSetname, CaseSubCategories
    from autobahntestsuite.caseset import CaseSet

    with open(spec_path) as f:
        spec = json.load(f)
    case_set = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
    for case_id in case_set.parseSpecCases(spec):
        print(case_id)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--list-cases":
        list_cases(sys.argv[2])
        return 0
    from autobahntestsuite.wstest import run

    sys.argv[0] = "wstest"
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
