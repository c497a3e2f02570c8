"""Errors that the CLI and the app show to users as one clear line."""


class UserError(Exception):
    """A problem with the user's input or set-up (file, line, field). No traceback is shown."""


class InputError(UserError):
    """Bad input in a file: names the file, the line or row, and the column."""

    def __init__(self, path: object, where: str | int | None, column: str | None, problem: str):
        self.path, self.where, self.column, self.problem = str(path), where, column, problem
        parts = [self.path]
        if where is not None:
            parts.append(f"line {where}" if isinstance(where, int) else str(where))
        if column:
            parts.append(f"column '{column}'")
        super().__init__(f"{': '.join(parts)}: {problem}")
