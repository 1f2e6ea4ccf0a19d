"""The training core's errors (a module without torch, so a command line can import it cheaply)."""


class NonFiniteLoss(ValueError):
    """The training loss (or gradient norm) became NaN or infinite; the message names the step."""
