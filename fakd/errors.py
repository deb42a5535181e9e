"""The one exception type for user mistakes (bad input, unknown names, missing files).

The CLI turns a ``FakdError`` into one line on stderr and exit code 2; anything else is a bug
and keeps its traceback.
"""


class FakdError(Exception):
    """A problem the user can fix: the message names the offending file, name or value."""
