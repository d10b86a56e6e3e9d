"""The --help text of a flag made from a config field: the docstring written under the field."""

from __future__ import annotations


def field_docs(cls: type) -> dict[str, str]:
    """``{field name: its docstring on one line}`` for a dataclass whose fields carry a string literal below them
    (``%`` doubled for argparse)."""
    import ast
    import inspect

    body = ast.parse(inspect.getsource(cls)).body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = " ".join(str(after.value.value).split()).replace("%", "%%")
    return docs
