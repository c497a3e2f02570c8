"""Jinja judge templates: built-in ones in ./templates/, or a user's own file.

A template renders the user message; it may `{% set answer_cue = "..." %}` (text placed after
the assistant header, right before the label token) and `rationale_cue` (rationale mode). The
template hash (of the source text) is part of the judge version: editing a template makes a new
judge version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from pipeline.errors import UserError

BUILTIN_DIR = Path(__file__).parent / "templates"
_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)


@dataclass(frozen=True)
class Rendered:
    text: str
    answer_cue: str
    rationale_cue: str


class JudgeTemplate:
    def __init__(self, source: str, origin: str):
        self.source, self.origin = source, origin
        self.hash = hashlib.sha256(source.encode()).hexdigest()
        try:
            self._template = _ENV.from_string(source)
        except TemplateError as error:
            raise UserError(f"{origin}: not a valid Jinja template: {error}") from error

    def render(self, **variables: object) -> Rendered:
        variables.setdefault("constitution", None)
        try:
            module = self._template.make_module(variables)
        except TemplateError as error:
            raise UserError(f"{self.origin}: cannot render the template: {error}") from error
        return Rendered(
            text=str(module).strip(),
            answer_cue=str(getattr(module, "answer_cue", "")),
            rationale_cue=str(getattr(module, "rationale_cue", "")),
        )


def builtin_names() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.jinja"))


def load_template(name_or_path: str | Path) -> JudgeTemplate:
    """A built-in template by name ("pairwise") or a path to a user's .jinja file."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if not path.is_file() and "/" not in text and not text.endswith(".jinja"):
        path = BUILTIN_DIR / f"{text}.jinja"
        if not path.is_file():
            raise UserError(
                f"no template '{text}': use one of {', '.join(builtin_names())} or a file path"
            )
    if not path.is_file():
        raise UserError(f"{path}: template file not found")
    return JudgeTemplate(path.read_text(encoding="utf-8"), str(path))
