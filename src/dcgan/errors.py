"""The one exception type for mistakes a user can fix (bad input, impossible config, missing files).

The CLI prints it as one line on stderr and exits with code 2; anything else is a bug and keeps its traceback.
It subclasses ValueError so library callers can catch it the usual way.
"""


class DcganError(ValueError):
    """A user error: the message says what was expected, what came, and what to do. `speak` is False on the
    processes of a multi-process run that raise the same error as rank 0, which alone prints it."""

    speak = True


class SharedError(DcganError):
    """A user error that every process of a multi-process run raises together (training/distributed.py): the
    message is the same on each, so only rank 0 (`speak`) prints it."""

    def __init__(self, message: str, speak: bool) -> None:
        super().__init__(message)
        self.speak = speak


def printable(text: str) -> str:
    """text with every control, format or line-separator character escaped (\\x1b, \\u2028, …): a message may
    quote bytes from a hostile file, and it must stay one line that cannot drive the terminal."""
    import unicodedata

    def safe(ch: str) -> str:
        if ch == " " or unicodedata.category(ch)[0] not in "CZ":
            return ch
        return ascii(ch)[1:-1]

    return "".join(map(safe, text))


def one_line(e: BaseException, limit: int = 300) -> str:
    """An exception's message as one line: third-party messages (pickle's, torch's weights-only refusals,
    load_state_dict's key lists) run to several, and a user error is one. Cut at `limit` characters."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
