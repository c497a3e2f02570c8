"""Judge prompts for a server's legacy completions endpoint: the chat template applied on our side,
so that many prompts go in one request (`prompt: [...]`).

Two sources of the template, tried in this order:
- the judge model's tokenizer, loaded locally (`tokenizer:` in the judge config, or the model id
  when its tokenizer is already in the local Hugging Face cache): prompts are sent as text;
- the server's own `/tokenize` endpoint with chat messages (vLLM): prompts are sent as token ids.
None of them: the caller keeps to chat requests.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx

MARKER = "\x00rlaif-user-message\x00"


class PromptRenderer(Protocol):
    name: str  # pinned in the judge version: it shapes the prompt the model sees

    async def render(self, texts: list[str]) -> list[str] | list[list[int]]: ...


class LocalChatTemplate:
    """The tokenizer's chat template around each user message, as text.

    The template is rendered once around a marker and the message is put in its place; the first
    render checks that this equals the full rendering, else every prompt is rendered in full."""

    def __init__(self, tokenizer, name: str):
        self.tokenizer, self.name = tokenizer, f"tokenizer:{name}"
        wrapped = self._full(MARKER)
        self._parts = wrapped.split(MARKER) if wrapped.count(MARKER) == 1 else None
        self._checked = False

    def _full(self, text: str) -> str:
        rendered = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        bos = self.tokenizer.bos_token
        # The server adds the BOS token itself when its tokenizer does: do not send it twice.
        if bos and rendered.startswith(bos) and self._adds_bos():
            rendered = rendered[len(bos) :]
        return rendered

    def _adds_bos(self) -> bool:
        ids = self.tokenizer("x")["input_ids"]
        return bool(ids) and ids[0] == self.tokenizer.bos_token_id

    def render_one(self, text: str) -> str:
        if self._parts is None:
            return self._full(text)
        fast = self._parts[0] + text + self._parts[1]
        if not self._checked:
            self._checked = True
            if fast != self._full(text):  # the template transforms the message: render in full
                self._parts = None
                return self._full(text)
        return fast

    async def render(self, texts: list[str]) -> list[str]:
        return [self.render_one(t) for t in texts]


class ServerTokenize:
    """vLLM's POST /tokenize with chat messages: the server's own template, as token ids."""

    name = "server:/tokenize"

    def __init__(self, root: str, model: str, timeout_s: float, headers: dict[str, str]):
        self.root, self.model, self.timeout_s, self.headers = root, model, timeout_s, headers

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.root, timeout=self.timeout_s, headers=self.headers)

    async def tokenize(self, client: httpx.AsyncClient, text: str) -> list[int]:
        reply = await client.post(
            "/tokenize",
            json={
                "model": self.model,
                "messages": [{"role": "user", "content": text}],
                "add_generation_prompt": True,
            },
        )
        reply.raise_for_status()
        tokens = reply.json().get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ValueError("the /tokenize reply has no list of token ids")
        return tokens

    async def render(self, texts: list[str]) -> list[list[int]]:
        async with self._client() as client:
            return list(await asyncio.gather(*(self.tokenize(client, t) for t in texts)))

    async def works(self) -> bool:
        try:
            async with self._client() as client:
                await self.tokenize(client, "Say A or B.")
        except (httpx.HTTPError, ValueError, AttributeError):
            return False
        return True


def server_root(base_url: str) -> str:
    """http://host:8000/v1 -> http://host:8000 (vLLM serves /tokenize beside /v1)."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def local_renderer(tokenizer_name: str | None, model: str) -> LocalChatTemplate | None:
    """The named tokenizer (an error if it cannot load), else the model's if it is cached."""
    from transformers import AutoTokenizer

    from pipeline.errors import UserError

    if tokenizer_name:
        try:
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_name)
        except (OSError, ValueError) as error:
            raise UserError(
                f"cannot load the judge tokenizer '{tokenizer_name}': {error}"
            ) from None
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(f"the tokenizer '{tokenizer_name}' has no chat template")
        return LocalChatTemplate(tokenizer, tokenizer_name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError):
        return None
    if not getattr(tokenizer, "chat_template", None):
        return None
    return LocalChatTemplate(tokenizer, model)


def server_renderer(
    base_url: str, model: str, timeout_s: float, headers: dict[str, str]
) -> ServerTokenize | None:
    """ServerTokenize when the server answers /tokenize with token ids, else None."""
    renderer = ServerTokenize(server_root(base_url), model, timeout_s, headers)
    return renderer if asyncio.run(renderer.works()) else None
