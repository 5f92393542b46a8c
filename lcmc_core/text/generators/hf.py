"""Sentences from a local Hugging Face causal LM (``pip install -e .[transformers]``), through its chat template, in batches."""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator

from ...errors import ConfigError
from .base import LLMGenerator, Request, Response, check_prices

__all__ = ["TransformersGenerator", "TRANSFORMERS_HINT"]

#: How to install the optional ``transformers`` extra (used in error messages).
TRANSFORMERS_HINT = ("the 'transformers' generator needs the optional extra: run "
                     "`pip install -e .[transformers]` in the repository (or `pip install transformers "
                     "accelerate`)")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _import_transformers():
    try:
        import transformers
    except ImportError as e:
        raise ImportError(f"{TRANSFORMERS_HINT} ({e})") from None
    return transformers


class TransformersGenerator(LLMGenerator):
    """Sentences from a local Hugging Face causal LM, prompted through its chat template, in batches.

    ``model`` is a model id or folder (loaded with ``AutoModelForCausalLM``, and
    ``AutoTokenizer`` unless ``tokenizer`` is given) or an already loaded model. Prompts use
    ``tokenizer.apply_chat_template`` when the tokenizer has a template, the plain prompt
    otherwise; padding is on the left. ``finish_reason`` is ``"stop"`` when the model ended the
    answer and ``"length"`` when it hit ``max_new_tokens``. ``source`` is ``"transformers:<name>"``.
    """

    def __init__(self, model, *, tokenizer=None, device: str | None = None, batch_size: int = 16,
                 max_new_tokens: int = 40, temperature: float = 1.0, top_p: float = 1.0,
                 do_sample: bool = True, seed: int = 0, system_prompt: str | None = None,
                 model_kwargs: dict | None = None, trust_remote_code: bool = False,
                 price_prompt_per_1k: float | None = None,
                 price_completion_per_1k: float | None = None):
        super().__init__()
        owner = "TransformersGenerator"
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
        if do_sample and not (_finite(temperature) and temperature > 0):
            raise ConfigError(f"{owner}: temperature must be a finite number > 0 when do_sample=True, "
                              f"got {temperature!r}")
        if not (_finite(top_p) and 0 < top_p <= 1):
            raise ConfigError(f"{owner}: top_p must be a number in (0, 1], got {top_p!r}")
        check_prices(owner, price_prompt_per_1k, price_completion_per_1k)
        transformers = _import_transformers()   # after the checks: a bad setting needs no heavy import
        import torch
        self._torch = torch
        if isinstance(model, str):
            name = model
            try:
                if tokenizer is None:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(
                        model, trust_remote_code=trust_remote_code)
                model = transformers.AutoModelForCausalLM.from_pretrained(
                    model, trust_remote_code=trust_remote_code, **(model_kwargs or {}))
            except (OSError, ValueError) as e:
                raise ConfigError(f"{owner}: could not load model {name!r} (expected a Hugging Face model id, "
                              f"downloaded or in the cache, or a folder with config, weights and tokenizer): "
                              f"{type(e).__name__}: {e}") from None
        else:
            name = getattr(getattr(model, "config", None), "name_or_path", None) or type(model).__name__
            if tokenizer is None:
                raise ConfigError(f"{owner}: pass tokenizer=... together with an already loaded model")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token is None:
                raise ConfigError(f"{owner}: the tokenizer of {name!r} has neither a pad nor an eos token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        self.model_name = str(name)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.do_sample = bool(do_sample)
        self.seed = int(seed)
        self.system_prompt = system_prompt
        self.price_prompt_per_1k = price_prompt_per_1k
        self.price_completion_per_1k = price_completion_per_1k
        self.source = f"transformers:{self.model_name}"

    def __repr__(self) -> str:
        return (f"TransformersGenerator(model={self.model_name!r}, device={str(self.device)!r}, "
                f"batch_size={self.batch_size}, do_sample={self.do_sample}, temperature={self.temperature})")

    def describe(self) -> dict:
        """Settings safe to store in a summary."""
        return {"source": self.source, "model": self.model_name, "device": str(self.device),
                "batch_size": self.batch_size, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "top_p": self.top_p, "do_sample": self.do_sample,
                "seed": self.seed, "system_prompt": self.system_prompt,
                "price_prompt_per_1k": self.price_prompt_per_1k,
                "price_completion_per_1k": self.price_completion_per_1k}

    def render(self, prompt: str) -> str:
        """The text fed to the model for ``prompt`` (the chat template applied, generation prompt added)."""
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            messages.append({"role": "user", "content": prompt})
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{self.system_prompt}\n\n{prompt}" if self.system_prompt else prompt

    def _batch(self, batch: list[Request]) -> list[Response]:
        torch = self._torch
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        enc = self.tokenizer([self.render(r.prompt) for r in batch], return_tensors="pt", padding=True,
                             add_special_tokens=not templated).to(self.device)
        kwargs = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample,
                      pad_token_id=self.tokenizer.pad_token_id)
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed((self.seed * 1_000_003 + batch[0].index) % (2 ** 63))
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
        responses = []
        for req, tokens, n_prompt in zip(batch, new, prompt_lengths):
            stop_at = next((j for j, t in enumerate(tokens) if t in self._eos), None)
            used = tokens if stop_at is None else tokens[:stop_at + 1]
            finish = "length" if stop_at is None and len(tokens) >= self.max_new_tokens else "stop"
            text = self.tokenizer.decode(used, skip_special_tokens=True)
            meta = {"model": self.model_name, "finish_reason": finish, "prompt_tokens": int(n_prompt),
                    "completion_tokens": len(used)}
            self._count(attempts=1, responses=1, prompt_tokens=int(n_prompt), completion_tokens=len(used))
            responses.append(Response(req.index, text, self.source, meta))
        return responses

    def generate(self, requests: Iterable[Request], deadline: float | None = None) -> Iterator[Response]:
        """Yield Responses batch by batch, in request order; start no batch after ``deadline``."""
        self._reset_stats()
        batch: list[Request] = []
        it = iter(requests)
        while True:
            req = next(it, None)
            if req is not None:
                batch.append(req)
                if len(batch) < self.batch_size:
                    continue
            if batch:
                if deadline is not None and time.monotonic() >= deadline:
                    with self._stats_lock:
                        self.stats.failures["time_budget_not_started"] += len(batch) + sum(1 for _ in it)
                    return
                yield from self._batch(batch)
                batch = []
            if req is None:
                return
