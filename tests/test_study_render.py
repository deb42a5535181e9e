"""The report's index and README: the smoke profile's caveat first, a link to ANALYSIS.md when there is one."""

import pandas as pd

from fakd.study.render import ANALYSIS_FILE, PROFILE_CAVEATS, ReportEntry, write_report

HEADLINE = pd.DataFrame({"model": ["FAKD", "no KD"], "Set5": ["20.00 / 0.5", "20.10 / 0.5"]})
SUMMARY = "No: FAKD was significantly worse than no KD on every test set (p<0.001)."


def _write(out_dir, profile):
    return write_report(out_dir, title=f"FAKD study ({profile} profile)", entries=[ReportEntry("primer")],
                        headline=HEADLINE, summary=SUMMARY, provenance={"command": "fakd study", "profile": profile})


def test_a_smoke_report_says_first_that_its_numbers_mean_nothing(tmp_path):
    index, readme = _write(tmp_path, "smoke")
    text = readme.read_text()
    caveat = text.index("these numbers mean nothing")
    assert caveat < text.index("| FAKD") < text.index("significantly worse")  # before the table and the verdict
    assert "these numbers mean nothing" in index.read_text()


def test_a_cpu_report_has_no_caveat(tmp_path):
    _, readme = _write(tmp_path, "cpu")
    assert all(caveat not in readme.read_text() for caveat in PROFILE_CAVEATS.values())


def test_the_index_links_the_analysis_only_when_the_folder_has_one(tmp_path):
    index, readme = _write(tmp_path, "cpu")
    assert ANALYSIS_FILE not in index.read_text() + readme.read_text()
    analysis = tmp_path / ANALYSIS_FILE
    analysis.write_text("# Analysis\nwritten by hand\n")
    index, readme = _write(tmp_path, "cpu")
    assert f'<a href="{ANALYSIS_FILE}">{ANALYSIS_FILE}</a>' in index.read_text()
    assert f"[{ANALYSIS_FILE}]({ANALYSIS_FILE})" in readme.read_text()
    assert analysis.read_text() == "# Analysis\nwritten by hand\n"  # never touched
