"""fakd.analysis: the notebooks' building blocks — results of a run, tables, statistics, figures.

- ``results``: a notebook run's scores on the test sets and its files (``results.json``,
  ``per_image.csv``), gathered over runs into one table.
- ``tables``: paper-format tables; ``stats``: mean ± CI over seeds, paired tests.
- ``figures`` / ``plots``: matplotlib figures; ``affinity_view``, ``explorer``: the affinity maps.
- ``primer``, ``lesson_*``: the lesson notebook (00_kd_primer): its small networks and loss terms, the KD
  families side by side, the mini-experiment, the self-checking exercises, the study's findings.
- ``compare``: teacher vs students of a study; ``ablation``: a student sweep as the ablation report.
"""
