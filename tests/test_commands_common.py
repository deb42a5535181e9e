"""What several sub-commands share: the check that the notebook tools are installed."""

import pytest

from fakd.errors import FakdError


def test_missing_notebook_tools_are_named_with_the_install_command(monkeypatch):
    from fakd.commands import common

    monkeypatch.setattr(common, "NOTEBOOK_TOOLS", ("papermill", "no_such_module_fakd"))
    with pytest.raises(FakdError, match=r"needs no_such_module_fakd: pip install 'fakd\[notebooks\]'"):
        common.require_notebook_tools()
