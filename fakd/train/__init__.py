"""fakd.train: training runs — from a config to a run folder with checkpoints, metrics and a summary.

- ``config``: ``RunConfig`` dataclasses, the profiles smoke / cpu / paper (``fakd/presets/*.yaml``),
  ``load_run_config(source, overrides)`` with typed ``key=value`` overrides; ``config_checks``: the
  checks beyond types (ranges, size limits).
- ``setup``: what a run is (its job), the networks, the objective, the schedule, the resumed state.
- ``trainer``: ``train_run(config, role=teacher|student|distill, out=..., ...)`` — the one loop
  (``Training``: set up, step, validate and checkpoint, summary); ``loss``: a batch's loss
  (``compute_loss``, and ``StudentLoss``, the module DDP wraps); ``records``: checkpoint payloads and
  the summary's facts.
- ``distributed``: one run on several processes under torchrun (ranks from torchrun's environment,
  the process group with its timeout, DistributedDataParallel, rank 0's steps shared with the others).
- ``distillation``: a run's ``distill`` settings → ``DistillationObjective`` (through the method
  registry ``fakd.distill.methods``), and command-line choices → ``--set`` overrides.
- ``data``: the run's training patches and validation PSNR.
- ``rundir``: the run directory (config.yaml, job.json, metrics.jsonl, checkpoints/, summary.json).
- ``rng``: random-number generator states saved in ``last.pt`` (bitwise-equal resume).
- ``runs``: a study notebook's training run (``RUN_DIR/train``): config, teacher/student, best model.
- ``export``: ship a finished run's best model into the zoo as ``fakd:<name>``.
"""
