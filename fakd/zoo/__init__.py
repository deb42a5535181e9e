"""fakd.zoo: trained models as files and by name, and what they cost to run.

- ``checkpoint``: the checkpoint format — atomic ``save_checkpoint``, ``load_checkpoint``
  (weights_only), ``load_model_from_checkpoint(path, device)``.
- ``pretrained``: the shipped models in ``fakd/pretrained`` (``fakd:<name>``, checked by sha256).
- ``weights_file``: what a model file holds (fakd checkpoint, state dict, BasicSR, .safetensors).
- ``official``: official RCAN / EDSR-PyTorch and BasicSR weights ↔ fakd's networks (docs/models.md).
- ``named_models``: a preset name, a checkpoint path or ``fakd:<name>`` → (name, model).
- ``cost``: parameters, Multi-Adds for a 1280×720 output, median latency.
- ``tiling``: ``upscale_bands`` / tiled inference for images larger than memory allows at once.
"""
