"""The one exception type for mistakes a user can fix (bad input, impossible config, missing files).

The CLI prints it as one line on stderr and exits with code 2; anything else is a bug and keeps its traceback.
It subclasses ValueError so library callers can catch it the usual way.
"""


class DcganError(ValueError):
    """A user error: the message says what was expected, what came, and what to do."""
