"""`--target` parsing: the four metrics, percentages, and one clear line for anything else."""

from __future__ import annotations

import pytest

from qbench.errors import UsageError
from qbench.sensitivity.target import parse_target


def test_targets_parse_with_units():
    t = parse_target("sqnr>=30")
    assert (t.metric, t.key, t.threshold, t.higher_is_better) == ("sqnr", "sqnr_db", 30.0, True)
    assert t.met(30.0) and not t.met(29.9) and not t.met(None)
    t = parse_target(" accuracy_drop <= 0.5% ")
    assert (t.key, t.threshold, t.higher_is_better, t.needs_dataset) == ("accuracy_drop", 0.005, False, True)
    assert t.met(0.004) and not t.met(0.006)
    assert parse_target("cosine>=0.99").threshold == 0.99
    assert parse_target("accuracy>=90%").threshold == pytest.approx(0.9)


@pytest.mark.parametrize("text, says", [
    ("sqnr=30", "expected METRIC>=VALUE"),
    ("sqnr>=", "expected METRIC>=VALUE"),
    ("snr>=30", "unknown metric 'snr'; choose one of: sqnr, cosine, accuracy, accuracy_drop"),
    ("sqnr<=30", "sqnr is a floor; write sqnr>=30"),
    ("accuracy_drop>=0.5%", "accuracy_drop is a ceiling; write accuracy_drop<=0.5%"),
    ("sqnr>=30%", "SQNR is in dB"),
])
def test_bad_targets_say_what_to_write(text, says):
    with pytest.raises(UsageError) as err:
        parse_target(text)
    assert says in str(err.value) and "\n" not in str(err.value)
