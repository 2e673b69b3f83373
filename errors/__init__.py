"""The one exception type for mistakes a user can fix, importable by every part (search_spaces, nas, cli): the CLI
prints its one-line message and exits 2."""


class UserError(Exception):
    """A problem with the user's input: the message names what is wrong and how to fix it, on one line."""
