"""Chat models for the evaluation answerers and judges: an OpenAI-compatible endpoint as a LangChain chat model.

``openai_compatible_chat(base_url, model)`` works with any server speaking ``/v1/chat/completions`` (vLLM,
llama.cpp, Ollama, OpenAI, our own ``agent/api``). It uses ``langchain_openai.ChatOpenAI`` when that package is
installed, else a small :class:`OpenAICompatibleChat` over the ``openai`` client (a project dependency).
Greedy (temperature 0) by default, so answers are reproducible where the server is.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

logger = logging.getLogger(__name__)

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class OpenAICompatibleChat(BaseChatModel):
    """A LangChain chat model over ``openai.OpenAI(base_url=...).chat.completions.create``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    base_url: str
    api_key: str = "EMPTY"
    temperature: float = 0.0
    max_tokens: int | None = 512
    timeout_s: float = 120.0
    client: Any = None
    """An ``openai.OpenAI``-like client; built from ``base_url`` and ``api_key`` when ``None``."""

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    def _client(self) -> Any:
        if self.client is None:
            from openai import OpenAI

            self.client = OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s)
        return self.client

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        payload = []
        for m in messages:
            if m.type not in _ROLES:
                raise ValueError(f"message type {m.type!r} is not supported; allowed: {sorted(_ROLES)}")
            payload.append({"role": _ROLES[m.type], "content": m.content})
        response = self._client().chat.completions.create(
            model=self.model_name,
            messages=payload,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=stop,
            **kwargs,
        )
        text = response.choices[0].message.content or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def openai_compatible_chat(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    temperature: float = 0.0,
    max_tokens: int | None = 512,
) -> BaseChatModel:
    """A chat model for ``model`` served at ``base_url`` (e.g. ``http://localhost:8000/v1``).

    The key is ``api_key``, else the environment variable ``api_key_env``, else ``"EMPTY"`` (local servers).
    """
    key = api_key or os.environ.get(api_key_env) or "EMPTY"
    if importlib.util.find_spec("langchain_openai") is not None:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=base_url, model=model, api_key=key, temperature=temperature, max_tokens=max_tokens
        )
    logger.debug("langchain_openai is not installed; using OpenAICompatibleChat over the openai client")
    return OpenAICompatibleChat(
        model_name=model, base_url=base_url, api_key=key, temperature=temperature, max_tokens=max_tokens
    )
