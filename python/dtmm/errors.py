"""Exceptions raised by dtmm."""


class ModelError(ValueError):
    """A model file or graph is malformed or inconsistent."""


class UnsupportedOpError(ModelError):
    """The model uses an operator (or an operator variant) dtmm cannot run."""

    def __init__(self, op: str, node: str, reason: str = "") -> None:
        self.op = op
        self.node = node
        detail = f": {reason}" if reason else ""
        super().__init__(f"unsupported op {op} at node '{node}'{detail}")
