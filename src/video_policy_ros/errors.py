"""Base of every error the stack reports to a user as one line (then exits or stops safely)."""


class StackError(Exception):
    """Something the user must fix; ``str(error)`` says what and how."""
