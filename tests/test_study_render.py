"""The report's index and README: the smoke profile's caveat first, a link to ANALYSIS.md when there is one."""

import pandas as pd

from fakd.study.render import ANALYSIS_FILE, PROFILE_CAVEATS, ReportEntry, report_markdown, write_report

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


def test_report_markdown_has_headline_links_and_provenance(tmp_path):
    headline = pd.DataFrame({"model": ["student", "student + FAKD"], "Set5": ["31.00 / 0.8800", "31.20 / 0.8850"]})
    (tmp_path / "html").mkdir()
    text = report_markdown(
        tmp_path, title="Study", headline=headline, summary="FAKD beat the baseline by 0.2 dB.",
        entries=[ReportEntry("Teacher", page=tmp_path / "html" / "t.html", status="reused", note="3 s"),
                 ReportEntry("Sweep", status="1 failed")],
        provenance={"git commit": "abc123"},
    )
    assert "| model | Set5 |" in text and "| student + FAKD | 31.20 / 0.8850 |" in text
    assert "- [Teacher](html/t.html): reused — 3 s" in text
    assert "- Sweep: 1 failed" in text
    assert "FAKD beat the baseline by 0.2 dB." in text
    assert "- git commit: `abc123`" in text


def test_the_report_leads_with_the_gap_figure_and_the_paper_tables(tmp_path):
    headline = pd.DataFrame({"model": ["student"], "Set5": ["31.00 / 0.8800"]})
    figure = tmp_path / "figures" / "ablation" / "gap_closed.png"
    text = report_markdown(tmp_path, title="Study", headline=headline, summary="## Long verdict",
                           entries=[ReportEntry("primer")], lead="| method | Set5 |\n|---|---|\n| FAKD | 30.5 |",
                           lead_figures=[figure], figures=[tmp_path / "figures" / "ablation" / "other.png"])
    order = [text.index(part) for part in ("![gap_closed](figures/ablation/gap_closed.png)", "| FAKD | 30.5 |",
                                           "## Every configuration", "| student | 31.00", "## Long verdict",
                                           "![other](figures/ablation/other.png)")]
    assert order == sorted(order)
