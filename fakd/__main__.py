"""``python -m fakd``: the ``fakd`` command, so that ``torchrun --nproc-per-node N -m fakd train|distill
...`` starts one run on N processes (``fakd.train.distributed``)."""

import sys

from fakd.cli import main

if __name__ == "__main__":
    sys.exit(main())
