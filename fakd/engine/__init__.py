"""fakd.engine: training runs and what surrounds them.

- ``config``: ``RunConfig`` dataclasses, the profiles smoke / cpu / paper (``fakd/presets/*.yaml``),
  ``load_run_config(source, overrides)`` with typed ``key=value`` overrides.
- ``trainer``: ``train_run(config, role=teacher|student|distill, out=..., ...)`` — the one loop.
- ``distillation``: method names → ``DistillationObjective`` (``DEFAULT_WEIGHTS``).
- ``checkpoint``: atomic ``save_checkpoint``, ``load_checkpoint`` (weights_only),
  ``load_model_from_checkpoint(path, device)``.
- ``rundir``: the run directory (config.yaml, job.json, metrics.jsonl, checkpoints/, summary.json).
- ``named_models``: a preset name or a checkpoint path → (name, model).
- ``pretrained``: the shipped models in ``fakd/pretrained`` (``fakd:<name>``), ``export_pretrained``.
- ``cost``: parameters, Multi-Adds for a 1280×720 output, median latency.
- ``tiling``: ``upscale_tiled`` for large images.
- ``malloc``: ``tuned_malloc_env()`` for training processes fakd launches itself.
"""
