"""The one exception type for mistakes a user can fix (bad input, impossible config, missing files).

The CLI prints it as one line on stderr and exits with code 2; anything else is a bug and keeps its traceback.
It subclasses ValueError so library callers can catch it the usual way.
"""


class DcganError(ValueError):
    """A user error: the message says what was expected, what came, and what to do."""


def first_line(e: BaseException, limit: int = 300) -> str:
    """An exception's message cut to its first non-empty line: third-party messages (torch's weights_only
    refusals, load_state_dict's key lists) run to many lines, and a user error is one."""
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return (lines[0] if lines else type(e).__name__)[:limit]
