"""Sub-commands of the ``fakd`` CLI, one module each (see ``fakd.cli.COMMAND_MODULES``)."""
