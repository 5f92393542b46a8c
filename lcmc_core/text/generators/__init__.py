"""Sentence generators for the corpus, behind one factory: :func:`make_generator` (``template``, ``openai``, ``transformers``).

``template`` (:mod:`.template`) is offline and deterministic; ``openai`` (:mod:`.openai`) talks to
any OpenAI-compatible endpoint; ``transformers`` (:mod:`.hf`) runs a local Hugging Face model (an
optional extra, imported only when asked for). All follow :class:`~.base.SentenceGenerator`.
"""
from __future__ import annotations

from ...errors import ConfigError, UnknownNameError
from .base import LLMError, LLMGenerator, Request, Response, SentenceGenerator
from .template import TemplateGenerator

__all__ = ["make_generator", "GENERATORS", "SentenceGenerator", "LLMGenerator", "LLMError", "Request",
           "Response", "TemplateGenerator"]

#: The generator names :func:`make_generator` accepts.
GENERATORS = ("template", "openai", "transformers")


def make_generator(name: str | SentenceGenerator, label_set=None, seed: int = 0,
                   **options) -> SentenceGenerator:
    """A generator by name (``template``, ``openai``: OpenAIGenerator(**options), ``transformers``); instances pass through."""
    if isinstance(name, SentenceGenerator) or (not isinstance(name, str) and callable(getattr(name, "generate", None))):
        if options:
            raise TypeError(f"generator options {sorted(options)} were given with a ready "
                            f"{type(name).__name__} instance; pass them to its constructor instead")
        return name
    if not isinstance(name, str):
        raise TypeError(f"generator must be one of {', '.join(GENERATORS)} or have a generate(requests) method, "
                        f"got {type(name).__name__}")
    if name == "template":
        if options:
            raise ConfigError(f"the 'template' generator takes no options, got {sorted(options)}")
        if label_set is None:
            raise ConfigError("make_generator('template') needs label_set")
        return TemplateGenerator(label_set, seed)
    if name == "openai":
        if "model" not in options:
            raise ConfigError("the 'openai' generator needs model='...' (e.g. 'gpt-4o-mini', or the name "
                            "your OpenAI-compatible server uses)")
        from .openai import OpenAIGenerator
        return OpenAIGenerator(**options)
    if name == "transformers":
        if "model" not in options:
            raise ConfigError("the 'transformers' generator needs model='...' (a Hugging Face model id "
                            "or folder, e.g. 'Qwen/Qwen2.5-0.5B-Instruct')")
        options.setdefault("seed", seed)
        from .hf import TransformersGenerator
        return TransformersGenerator(**options)
    raise UnknownNameError(f"unknown generator {name!r}; expected one of {', '.join(GENERATORS)} or a "
                           f"SentenceGenerator instance")
