"""The offline sentence generator: varied, natural template sentences that name exactly the requested labels.

It stands in for the LLM of the paper wherever no endpoint is available (the embedded toy world,
tests, CI): deterministic from ``(seed, request index, labels)``, with many frames, synonyms,
plurals and counts, determiners, adjectives and scene context; every sentence is checked with the
label set's extraction and names exactly the requested classes.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from ..label_sets import get_label_set
from ..labels import join_names, pluralize, with_article
from .base import Request, Response, SentenceGenerator

__all__ = ["TemplateGenerator"]

# Fragments of template sentences. Every fragment that names a class of the label set in use
# is dropped for that label set, so sentences name exactly the requested classes.
_FRAMES_ANY = [
    "A photo of {L}{C}.", "{L}{C}.", "There {be} {L}{C}.", "{L} can be seen{C}.",
    "This picture shows {L}{C}.", "In this image, {L} {be} visible{C}.", "Here you can see {L}{C}.",
    "A snapshot of {L}{C}.", "An image of {L}{C}.", "A close-up shot of {L}{C}.", "We see {L}{C}.",
    "A scene with {L}{C}.", "Someone took a picture of {L}{C}.", "The photo features {L}{C}.",
    "Look at {L}{C}!", "A candid shot of {L}{C}.", "{L} {be} shown{C}.", "My photo of {L}{C}.",
    "A wide shot showing {L}{C}.", "An everyday scene: {L}{C}.", "Just {L}{C}.",
    "The picture captures {L}{C}.", "A quick snap of {L}{C}.", "{L}, all in one shot{C}.",
    "This is a photograph of {L}{C}.", "An old photograph of {L}{C}.",
]
_FRAMES_MULTI = [
    "{L} together{C}.", "{A} {prep} {B}{C}.", "{A} {prep} {B}, with {R}{C}.",
    "{A} and {B}{C}, along with {R}.", "Both {A} and {B} appear{C}.",
    "{A} {prep} {B}, and {R} nearby{C}.",
]
_PREPOSITIONS = ["next to", "beside", "near", "in front of", "behind", "close to", "alongside",
                 "not far from", "together with", "facing"]
_CONTEXTS = [
    "in a park", "in the morning", "indoors", "outdoors", "in a small room", "in the kitchen",
    "in the countryside", "at the market", "at a campsite", "in the living room", "in a garage",
    "on a farm", "in a field", "at the zoo", "in winter", "in summer", "at the station",
    "during the day", "in the afternoon light", "in the rain", "under a bright light",
    "at an event", "in the distance", "in the foreground", "on vacation", "at the airport",
    "on a cloudy afternoon", "in the evening", "on a quiet street", "by the lake", "at the beach",
    "in the city", "near the window", "in a garden", "on a warm day", "at home", "in an office",
    "in a village", "in the mountains", "by the sea", "in the snow", "at sunset", "at night",
]
_ADJECTIVES = ["small", "large", "big", "little", "old", "new", "beautiful", "colorful", "red",
               "blue", "white", "black", "brown", "gray", "green", "yellow", "dark", "tiny",
               "huge", "lovely", "shiny", "pretty"]
# Adjectives for people (the generic ones above read oddly: "a red person").
_PERSON_ADJECTIVES = ["young", "tall", "smiling", "happy", "elderly", "cheerful", "busy", "tired"]
_COUNTS = ["two", "three", "four", "five", "several", "a few", "some", "many", "a couple of",
           "a group of", "2", "3"]
# Phrases for classes whose prompt names are not countable nouns: (noun phrases, adverbials).
_MASS_PHRASES = {
    "night": ([], ["at night", "late at night", "during the night", "on a dark night"]),
    "sky": (["the sky", "a clear sky", "a blue sky"], ["under a clear sky", "against the sky"]),
    "snow": (["snow", "fresh snow", "deep snow"], ["in the snow", "covered in snow"]),
    "sand": (["sand", "white sand", "the sand"], ["on the sand", "in the sand"]),
    "grass": (["grass", "green grass", "tall grass"], ["on the grass", "in the grass"]),
    "water": (["water", "calm water", "clear water"], ["in the water", "by the water"]),
    "surf": (["the surf", "rough surf"], ["in the surf"]),
    "frost": (["frost", "thick frost"], ["covered in frost"]),
    "fire": (["a fire", "a small fire", "a big fire"], []),
    "food": (["some food", "a plate of food", "plenty of food"], []),
    "dancing": (["two dancers", "a dancer", "dancers"], []),
    "running": (["a runner", "runners", "a jogger"], []),
    "soccer": (["a soccer ball", "a soccer match", "a soccer game"], []),
    "military": (["soldiers", "a soldier", "an army unit"], []),
    "police": (["the police", "a police officer", "two policemen"], []),
    "coral": (["coral", "a coral reef", "colorful coral"], []),
    "broccoli": (["broccoli", "some broccoli", "fresh broccoli"], []),
    "scissors": (["scissors", "a pair of scissors"], []),
}
_PLURAL_PHRASES = {"two dancers", "dancers", "runners", "soldiers", "two policemen", "scissors"}
# Synonyms that are not plain countable nouns: never used by the template generator.
_NOT_NOUNS = {
    "snowy", "sunny", "frosty", "tattooed", "reflected", "overcast", "swim", "dance", "swimming",
    "jogging", "surfing", "skiing", "golf", "tennis", "rugby", "hockey", "ballet", "basketball",
    "baseball", "volleyball", "cricket", "football", "sprint", "rubble", "moonlight", "rime",
    "hoarfrost", "sunshine", "sunlight", "wildlife", "foliage", "luggage", "marathon", "cattle",
    "people", "crowd", "quake", "table tennis", "ice skating", "ice hockey", "ice", "desert",
    "twilight", "dusk", "dawn", "midnight", "nightfall", "night time", "nighttime", "niagara falls",
    "downtown", "sub sandwich", "lego", "alps", "woods", "rally", "running water",
    "pool of water", "signage", "earthquake damage", "cycling race", "stadium", "street food",
}
_MAX_TRIES = 25


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(phrases: Sequence[str], rng: np.random.Generator) -> str:
    """Phrases joined with a drawn conjunction and, for three or more, a drawn serial comma."""
    if len(phrases) == 1:
        return phrases[0]
    conj = "and" if rng.random() < 0.85 else ("as well as" if len(phrases) == 2 else "and")
    serial = len(phrases) > 2 and rng.random() < 0.5
    return join_names(phrases, conj, serial_comma=serial)


class TemplateGenerator(SentenceGenerator):
    """Offline, deterministic sentence writer: varied sentences that name exactly the requested labels.

    Each sentence depends only on ``(seed, request.index, request.label_ids)``. It uses many
    frames, prompt names or synonyms, singular or plural with counts, determiners, adjectives
    and scene context; fragments that would name another class of the label set are never used
    for it. Each sentence is checked with :meth:`LabelSet.extract` and redrawn (up to 25 times)
    until it names exactly the requested classes, falling back to "A photo of X, Y and Z." built
    from prompt names, which names every class of the shipped label sets (tested).
    """

    source = "template"

    def __init__(self, label_set, seed: int = 0):
        self.label_set = get_label_set(label_set)
        self.seed = int(seed)
        ls = self.label_set
        clean = lambda s: not ls.extract(s.replace("{", " ").replace("}", " "))
        self._frames = [f for f in _FRAMES_ANY if clean(f)]
        self._frames_multi = [f for f in _FRAMES_MULTI if clean(f)]
        self._preps = [p for p in _PREPOSITIONS if clean(p)]
        self._contexts = [c for c in _CONTEXTS if clean(c)]
        self._adjectives = [a for a in _ADJECTIVES if clean(a)]
        self._person_adjectives = [a for a in _PERSON_ADJECTIVES if clean(a)]
        self._forms = []
        for i in range(len(ls)):
            name = ls.prompt_names[i]
            forms = [f for f in ls.synonyms[i] if f.lower() not in _NOT_NOUNS and f != name
                     and with_article(f) != f]
            self._forms.append([name] + forms)

    def _phrase(self, i: int, rng: np.random.Generator) -> tuple[str, bool, bool]:
        """Return (phrase, is_plural, is_adverbial) for class ``i``."""
        name = self.label_set.prompt_names[i]
        if name in _MASS_PHRASES:
            nps, advs = _MASS_PHRASES[name]
            if advs and (not nps or rng.random() < 0.4):
                return str(rng.choice(advs)), False, True
            np_ = str(rng.choice(nps))
            return np_, np_ in _PLURAL_PHRASES, False
        if with_article(name) == name:  # other mass nouns
            return (name if rng.random() < 0.5 else f"the {name}"), False, False
        forms = self._forms[i]
        form = name if rng.random() < 0.5 or len(forms) == 1 else str(rng.choice(forms[1:]))
        adjectives = self._person_adjectives if name == "person" else self._adjectives
        adj = str(rng.choice(adjectives)) + " " if adjectives and rng.random() < 0.3 else ""
        if " of " not in form and rng.random() < 0.4:
            return f"{rng.choice(_COUNTS)} {adj}{pluralize(form)}", True, False
        r = rng.random()
        if r < 0.6:
            return with_article(adj + form), False, False
        if r < 0.9:
            return f"the {adj}{form}", False, False
        return f"one {adj}{form}", False, False

    def sentence(self, index: int, label_ids: Sequence[int]) -> str:
        """Return the sentence for request ``index`` naming classes ``label_ids``."""
        ls = self.label_set
        want = {int(i) for i in label_ids}
        if not want:
            raise ValueError(f"TemplateGenerator: request {index} has no labels")
        bad = [i for i in want if not 0 <= i < len(ls)]
        if bad:
            raise ValueError(f"TemplateGenerator: request {index} has label ids {bad} outside 0..{len(ls) - 1}")
        rng = np.random.default_rng([self.seed, int(index), *sorted(want)])
        for _ in range(_MAX_TRIES):
            text = self._compose([int(i) for i in label_ids], rng)
            if ls.extract(text) == want:
                return text
        return self.fallback(label_ids)

    def fallback(self, label_ids: Sequence[int]) -> str:
        """The plain sentence used when no varied one names exactly the labels."""
        ls = self.label_set
        return f"A photo of {join_names([with_article(ls.prompt_names[i]) for i in label_ids], serial_comma=True)}."

    def _compose(self, ids: list[int], rng: np.random.Generator) -> str:
        order = list(rng.permutation(len(ids))) if rng.random() < 0.5 else list(range(len(ids)))
        nps, advs, plural = [], [], []
        for j in order:
            phrase, is_plural, is_adv = self._phrase(ids[j], rng)
            (advs if is_adv else nps).append(phrase)
            if not is_adv:
                plural.append(is_plural)
        if not nps:  # only adverbial classes: make the first one a noun phrase
            return f"A photo taken {_join(advs, rng)}."
        context = " " + " and ".join(advs) if advs else ""
        if not advs and self._contexts and rng.random() < 0.5:
            context = " " + str(rng.choice(self._contexts))
        if len(nps) >= 2 and self._frames_multi and self._preps and rng.random() < 0.4:
            frame = str(rng.choice(self._frames_multi))
            a, b, rest = nps[0], nps[1], nps[2:]
            if ("{R}" in frame and not rest) or (frame.startswith("Both") and rest):
                frame = "{A} {prep} {B}{C}."
            if "{R}" not in frame and rest:
                b = _join([b] + rest, rng)
            text = frame.format(A=a, B=b, R=_join(rest, rng) if rest else "",
                                prep=rng.choice(self._preps), C=context, L=_join(nps, rng))
        else:
            frame = str(rng.choice(self._frames))
            be = "are" if len(nps) > 1 or plural[0] else "is"
            text = frame.format(L=_join(nps, rng), C=context, be=be)
        return _cap(text)

    def generate(self, requests: Iterable[Request]) -> Iterator[Response]:
        """Yield one template sentence per request, in request order."""
        for req in requests:
            yield Response(req.index, self.sentence(req.index, req.label_ids), self.source)
