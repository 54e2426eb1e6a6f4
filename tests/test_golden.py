"""The determinations of 3,135 generated households stay byte-identical (issue 14, item 7).

tests/golden/determinations.sha256 was written by tests/golden/make_golden.py from the engine
before the rule plan was lowered; the explanations, citations and amounts must not change in any
byte. On a mismatch the first differing households are named, with their input and what the
engine says now. Rewrite the file only for an intended change of a determination, and say so.
"""

from __future__ import annotations

import orjson
from golden import make_golden


def test_determinations_are_byte_identical_to_the_golden_hashes():
    want = make_golden.HASH_FILE.read_text(encoding="utf-8").splitlines()
    lines, outputs = make_golden.compute()
    diff = make_golden.differences(want, lines)
    if not diff:
        return
    shown = []
    for key in diff[:3]:
        if key in outputs:
            rec, out = outputs[key]
            shown.append(f"--- {key}\ninput: {orjson.dumps(rec).decode()}\nnow:   {out.decode()}")
        else:
            shown.append(f"--- {key} (the generated inputs of this group changed: the generator, not the engine)")
    raise AssertionError(f"{len(diff)} of {len(lines)} lines differ from {make_golden.HASH_FILE.name}:\n" + "\n".join(shown))
