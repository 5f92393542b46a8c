"""Prompt templates and the texts built from them: class prompts, zero-shot prompts, single-label training prompts.

Three template sets, each a tuple of strings with ``{}`` for the class name:

* :data:`OPENAI_TEMPLATES`: OpenAI's 80 ImageNet templates (as open_clip ships them), used for the
  published zero-shot CLIP rows and, after 9 extra copies of "a photo of a {}.", for the
  official CoMC training texts (the set contains "a photo of a {}." once more: 10 copies in all);
* :data:`SELECT_TEMPLATES`: the 7 "select" templates of the official code's ``ZeroshotCLIP2``
  plus "a photo of a {}.";
* :data:`OWN_TEMPLATES`: this companion's own 80 ImageNet-style templates, with correct
  articles ("an airplane") and plurals, that name no class of any shipped label set.

The official code writes the article "a" before every class name ("a photo of a aeroplane."); the
OpenAI and select sets here do the same, verbatim. :func:`prompt_texts` fills a template set for
every class, :func:`training_prompts` gives the single-label training texts;
:func:`lcmc_core.method.zero_shot.zero_shot_classifier` turns prompt embeddings into weights.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import ConfigError
from .labels import pluralize, with_article

__all__ = ["OPENAI_TEMPLATES", "SELECT_TEMPLATES", "OWN_TEMPLATES", "TEMPLATE_SETS", "CLASS_PROMPT",
           "fill_template", "prompt_texts", "training_prompts"]

#: The official class prompt (one per class: the text memory of the mapping).
CLASS_PROMPT = "a photo of a {}."


def _openai_templates() -> tuple[str, ...]:
    from open_clip import OPENAI_IMAGENET_TEMPLATES  # the top-level export
    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)


#: OpenAI's 80 ImageNet templates, verbatim (open_clip's ``OPENAI_IMAGENET_TEMPLATES``).
OPENAI_TEMPLATES: tuple[str, ...] = _openai_templates()

#: The official repository's ZeroshotCLIP2 set: 7 "select" ImageNet templates plus "a photo of a {}.".
SELECT_TEMPLATES: tuple[str, ...] = (
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}.", "a photo of a {}.",
)

# Our own 80 ImageNet-style templates: "{a}" is the class name with its indefinite article
# ("an airplane", "snow"), "{c}" the bare name, "{p}" the plural. No template names a class of
# any shipped label set (tested), so each text is a clean single-label example.
OWN_TEMPLATES: tuple[str, ...] = (
    "a bad photo of {a}.", "a good photo of {a}.", "a photo of many {p}.", "a photo of the {c}.",
    "a blurry photo of {a}.", "a sharp photo of the {c}.", "a cropped photo of {a}.",
    "a close-up photo of {a}.", "a bright photo of {a}.", "a dark photo of {a}.",
    "a low resolution photo of {a}.", "a high resolution photo of {a}.", "a pixelated photo of {a}.",
    "a jpeg corrupted photo of {a}.", "a black and white photo of {a}.", "a grainy photo of {a}.",
    "an overexposed photo of {a}.", "an underexposed photo of {a}.", "a tilted photo of {a}.",
    "a photo of a small {c}.", "a photo of a large {c}.", "a photo of the small {c}.",
    "a photo of the big {c}.", "a photo of my {c}.", "a photo of one {c}.",
    "a photo of a clean {c}.", "a photo of a dirty {c}.", "a photo of a weird {c}.",
    "a photo of a cool {c}.", "a photo of a nice {c}.", "a photo of an old {c}.",
    "a photo of a new {c}.", "a cropped photo of the {c}.", "a close-up of the {c}.",
    "a snapshot of {a}.", "a picture of {a}.", "an image of {a}.", "an image showing {a}.",
    "a photograph of {a}.", "a stock photo of {a}.", "a travel photo of {a}.",
    "an amateur photo of {a}.", "a professional photo of {a}.", "a vintage photo of {a}.",
    "a polaroid of {a}.", "a selfie with {a}.", "a zoomed-in photo of {a}.",
    "a wide-angle photo of {a}.", "a photo of {a} in the distance.", "a photo of {a} up close.",
    "a drawing of {a}.", "a sketch of {a}.", "a pencil sketch of the {c}.", "a painting of {a}.",
    "an oil painting of the {c}.", "a watercolor of {a}.", "a cartoon {c}.", "a cartoon of {a}.",
    "a doodle of {a}.", "graffiti of {a}.", "an illustration of {a}.", "a rendering of {a}.",
    "a 3d render of {a}.", "an embroidered {c}.", "an origami {c}.", "a plastic {c}.",
    "a {c} made of clay.", "a {c} in a video game.", "a pixel art {c}.", "a clip art {c}.",
    "a poster of {a}.", "a postcard with {a}.", "an icon of {a}.", "a logo with {a}.",
    "a photo of hard to see {p}.", "a photo that shows {a}.", "there is {a} in the photo.",
    "itap of {a}.", "art of the {c}.", "a depiction of {a}.",
)

TEMPLATE_SETS = {"openai": OPENAI_TEMPLATES, "select": SELECT_TEMPLATES, "own": OWN_TEMPLATES, "none": ()}


def fill_template(template: str, name: str) -> str:
    """A template filled with class ``name``: ``{}`` verbatim (official sets), or ``{a}``/``{c}``/``{p}`` (ours)."""
    if "{}" in template:
        return template.format(name)
    if with_article(name) == name:  # mass noun: "a photo of a small {c}" -> "a photo of small snow"
        template = re.sub(r"\b(?:a|an) ((?:[\w-]+ ){0,2})\{c\}", r"\1{c}", template)
        template = template.replace("many {p}", "a lot of {p}")
    return template.format(a=with_article(name), c=name, p=pluralize(name))


def _templates(templates) -> tuple[str, ...]:
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise ConfigError(f"templates: expected one of {sorted(TEMPLATE_SETS)} or a list of templates, "
                             f"got {templates!r}")
        return TEMPLATE_SETS[templates]
    out = tuple(templates)
    for t in out:
        try:
            fill_template(t, "dog")
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"template {t!r} must use only {{}} or {{a}}, {{c}}, {{p}} placeholders ({e})") from None
    return out


def prompt_texts(class_names: Sequence[str], templates="openai") -> list[list[str]]:
    """For every class, its prompts: ``templates`` (a set name or a list) filled with the class name."""
    ts = _templates(templates)
    return [[fill_template(t, name) for t in ts] for name in class_names]


def training_prompts(class_names: Sequence[str], copies: int = 9, templates="openai") -> list[tuple[str, int]]:
    """The single-label training texts ``(text, class index)``: per class ``copies`` x "a photo of a {}." then each template.

    With the defaults this is the official composition: 9 copies plus OpenAI's 80 templates.
    ``templates="own"`` uses this companion's templates (the base prompt then gets the right article).
    """
    copies = int(copies)
    if copies < 0:
        raise ConfigError(f"copies: expected an integer >= 0, got {copies}")
    ts = _templates(templates)
    base = CLASS_PROMPT if (isinstance(templates, str) and templates in ("openai", "select")) else "a photo of {a}."
    out = []
    for i, name in enumerate(class_names):
        out += [(fill_template(base, name), i)] * copies
        out += [(fill_template(t, name), i) for t in ts]
    return out
