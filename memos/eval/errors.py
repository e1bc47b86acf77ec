"""The evaluation's one error: a run asked for something that does not exist or cannot
be reached (the command line shows its message, not a traceback)."""


class EvalError(ValueError):
    pass
