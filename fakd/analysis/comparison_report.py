"""The fair comparison of every student setting a sweep trains, and the best recipe across them.

For each setting (``fakd.analysis.student_settings``: the paper's student from scratch, the student
initialised from the teacher's weights, a narrower student): weights chosen on validation within the
setting, the paper-format table with gap closed against the same student model from scratch without KD,
paired per-image tests against the table's strongest baseline, and the verdict. Then, per student model,
the best recipe over all its settings, tested per image against the best recipe of each other setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fakd.analysis.ablation import ablation_table
from fakd.analysis.fair_comparison import (comparison_rows, comparison_table, comparison_verdict, paired_against,
                                           strongest_baseline)
from fakd.analysis.selection import fixed_choices, selection_markdown, weight_candidates
from fakd.analysis.stats import paired_test, paired_differences
from fakd.analysis.student_settings import StudentSetting, model_shape, setting_runs, settings_in
from fakd.analysis.tables import to_markdown


@dataclass(frozen=True)
class SettingSection:
    """One setting's fair comparison: its rows, tables, paired tests and the Markdown of the report."""

    setting: StudentSetting
    candidates: pd.DataFrame
    rows: list[tuple[str, str, str]]
    absolute: pd.DataFrame  # ablation_table of the block: every configuration, gap against the reference
    shown: pd.DataFrame     # the paper-format table
    reference: str | None   # the strongest baseline's label
    tests: pd.DataFrame     # paired per image against ``reference``
    markdown: str

    @property
    def slug(self) -> str:
        return self.setting.slug


def setting_section(sweep: pd.DataFrame, per_image: pd.DataFrame, teacher: pd.DataFrame | None, *,
                    setting: StudentSetting, scale: int, weights_chosen_at: str = "") -> SettingSection | None:
    """The comparison of one setting (None when it trains no KD method: nothing to choose or compare)."""
    own = setting_runs(sweep, setting, with_reference=False)
    candidates = fixed_choices(own, chosen_at=weights_chosen_at) if weights_chosen_at else weight_candidates(own)
    if candidates.empty:
        return None
    rows = comparison_rows(candidates, setting=setting)
    block = setting_runs(sweep, setting)
    absolute = ablation_table(block, teacher, baseline="no KD" + setting.reference.suffix)
    shown = comparison_table(absolute, rows, teacher=teacher, scale=scale)
    reference = strongest_baseline(absolute, rows)
    others = [label for _, label, _ in rows if label != reference]
    tests = (paired_against(per_image, reference=reference, labels=others) if reference is not None
             else pd.DataFrame(columns=["label", "dataset", "mean", "ci", "n", "wins", "t_p", "wilcoxon_p"]))
    title = setting.title[0].lower() + setting.title[1:]
    text = comparison_verdict(absolute, tests, rows, scale=scale, reference=reference, title=title)
    text += "\n" + to_markdown(shown) + "\n\n" + selection_markdown(candidates)
    return SettingSection(setting=setting, candidates=candidates, rows=rows, absolute=absolute, shown=shown,
                          reference=reference, tests=tests, markdown=f"## {setting.title}\n\n{text}")


def setting_sections(sweep: pd.DataFrame, per_image: pd.DataFrame, teacher: pd.DataFrame | None, *, scale: int,
                     weights_chosen_at: str = "") -> list[SettingSection]:
    """``setting_section`` of every setting the sweep trains, the paper's first."""
    sections = [setting_section(sweep, per_image, teacher, setting=setting, scale=scale,
                                weights_chosen_at=weights_chosen_at) for setting in settings_in(sweep)]
    return [section for section in sections if section is not None]


def _best_row(section: SettingSection) -> str:
    labels = [label for _, label, _ in section.rows if label in set(section.absolute["label"])]
    shown = section.absolute[section.absolute["label"].isin(labels)]
    return shown.groupby("label")["psnr"].mean().idxmax()


def best_recipe_markdown(sections: list[SettingSection], per_image: pd.DataFrame, *, scale: int) -> str:
    """Per student model with more than one setting: the recipe with the highest PSNR averaged over the test
    sets, and its paired per-image difference to the best recipe of every other setting (same seeds, images)."""
    lines = []
    for model in dict.fromkeys(section.setting.student_model for section in sections):
        mine = [section for section in sections if section.setting.student_model == model]
        if len(mine) < 2:
            continue
        bests = {section.setting.title: _best_row(section) for section in mine}
        means = {label: pd.concat([s.absolute for s in mine]).query("label == @label")["psnr"].mean()
                 for label in bests.values()}
        winner = max(means, key=means.get)
        student = f"the {model_shape(model)} student" if model else "the profile's student"
        lines += [f"### ×{scale}: the best recipe for {student}", "",
                  f"**{winner}** has the highest PSNR averaged over the test sets of every recipe tried for {student}."]
        for title, label in bests.items():
            if label == winner:
                continue
            shown = per_image[per_image["label"].isin([winner, label])]
            differences = paired_differences(shown, group="label", baseline=label)
            cells = []
            for dataset, group in differences.groupby("dataset", sort=False):
                test = paired_test(group["difference"])
                cells.append(f"{dataset} {test['mean']:+.3f} dB (ahead on {test['wins']} of {test['n']}, "
                             f"p {_p(test['t_p'])})")
            lines.append(f"- vs the best recipe {title.lower()} ({label}): " + "; ".join(cells) + ".")
        lines.append("")
    return "\n".join(lines)


def _p(value: float) -> str:
    return "n/a" if value != value else (f"{value:.2g}" if value >= 0.001 else "< 0.001")


def init_rule_markdown(sweep: pd.DataFrame) -> str:
    """Which teacher blocks a student inherits: no KD from the first blocks vs evenly spaced blocks, the mean
    validation PSNR over the seeds both have (the choice) and the test PSNR for reference."""
    runs = sweep[(sweep["method"] == "none") & sweep["init"].isin(["teacher", "teacher-spaced"])]
    if runs["init"].nunique() < 2:
        return ""
    seeds = set.intersection(*(set(group["seed"]) for _, group in runs.groupby("init")))
    runs = runs[runs["seed"].isin(seeds)]
    validation = runs.drop_duplicates("run").groupby("init")["val_psnr"].mean()
    test = runs.pivot_table(index="init", columns="dataset", values="psnr", aggfunc="mean")
    lines = ["## Which teacher blocks the student inherits", "",
             f"No KD, seeds {', '.join(str(seed) for seed in sorted(seeds))}: the first blocks of each group "
             "(init `teacher`) or evenly spaced ones, the first and the last (`teacher-spaced`). Chosen on "
             f"validation: **{validation.idxmax()}**.", "",
             "| init | validation PSNR | " + " | ".join(test.columns) + " |", "|---" * (len(test.columns) + 2) + "|"]
    for init in validation.index:
        lines.append(f"| {init} | {validation[init]:.3f} | " + " | ".join(f"{test.loc[init, d]:.3f}" for d in test.columns) + " |")
    return "\n".join(lines) + "\n"


def save_section(section: SettingSection, run_dir, *, scale: int, tuned: bool) -> None:
    """A section's files in ``run_dir``: weight_selection<slug>.csv/.png (the PNG only when this sweep tuned the
    weights), comparison_table<slug>.md and paired_tests_vs_strongest<slug>.csv."""
    from fakd.analysis.figures import save_figure
    from fakd.analysis.plots import weight_selection_figure

    section.candidates.to_csv(run_dir / f"weight_selection{section.slug}.csv", index=False)
    (run_dir / f"comparison_table{section.slug}.md").write_text(to_markdown(section.shown) + "\n")
    section.tests.to_csv(run_dir / f"paired_tests_vs_strongest{section.slug}.csv", index=False)
    if tuned:
        title = f"×{scale}, {section.setting.title.lower()}: validation PSNR vs weight (ring: chosen)"
        save_figure(weight_selection_figure(section.candidates, title=title),
                    run_dir / f"weight_selection{section.slug}.png")


def lead_markdown(sections: list[SettingSection], per_image: pd.DataFrame, *, scale: int) -> str:
    """What a report shows first, under the gap-closed figure: the best recipe per student model and each
    setting's paper-format table (the verdicts and everything else follow further down)."""
    parts = [best_recipe_markdown(sections, per_image, scale=scale)]
    for section in sections:
        parts.append(f"**×{scale}, {section.setting.title.lower()}** (PSNR / SSIM on Y, mean ± 95% CI over seeds; "
                     f"gap closed against {section.rows[0][0]}):\n\n{to_markdown(section.shown)}\n")
    return "\n".join(part for part in parts if part.strip())
