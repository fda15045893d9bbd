"""One Markdown prompt per LLM-calling node, filled by `render`, which refuses missing or unknown
variables so a renamed placeholder fails loudly instead of sending the model a literal `$name`."""

from __future__ import annotations

import string
from importlib import resources


class PromptError(Exception):
    pass


def render(name: str, **values: str) -> str:
    try:
        text = resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")
    except FileNotFoundError as missing:
        raise PromptError(f"no prompt named {name!r} in prompts/") from missing
    template = string.Template(text)
    wanted = set(template.get_identifiers())
    absent, unknown = wanted - values.keys(), values.keys() - wanted
    if absent or unknown:
        raise PromptError(f"prompt {name!r}: missing {sorted(absent)}, unknown {sorted(unknown)}")
    return template.substitute(values)
