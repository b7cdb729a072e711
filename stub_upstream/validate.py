"""API request bodies: their typed shape, and the limits that bound what one request costs.

Owns everything the stub checks about a request body before it draws a fault or
schedules an answer (docs/WIRE.md "Limits"). :func:`parse` decodes the body once,
straight into the structs below, with msgspec: type errors anywhere in a declared
field become a provider-shaped 400 naming the field, and members the stub does not
declare are skipped by the C scanner without being built, so no body within the
size limit can make the parse allocate more than the fields the stub reads. The
standard library's ``json`` builds every value first (a 4 MiB body of ``[]`` costs
~300 ms there); a hand-written walker over its result would keep that cost.

The structs declare the fields OpenAI and Anthropic document, with the types and
ranges they enforce; ``null`` is accepted wherever a field is optional (both APIs
treat it as absent). Unknown fields and unknown model names are fine: the stub echoes.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "MAX_EMBEDDING_INPUTS",
    "MAX_EMBEDDING_TOKENS",
    "MAX_EMBEDDING_VALUES",
    "MAX_HEADER_TOKENS",
    "MAX_INT32",
    "MAX_MODEL_CHARS",
    "NO_BODY",
    "BadRequest",
    "Body",
    "ChatBody",
    "EmbeddingsBody",
    "MessagesBody",
    "ResponsesBody",
    "embedding_items",
    "parse",
]

#: Largest integer any count field (``max_tokens``, ``n``, token ids, ...) may hold:
#: the APIs take these as int32 and answer 400 beyond.
MAX_INT32 = 2**31 - 1
#: ``model`` is echoed in every answer and in every SSE event of a stream, so its
#: length multiplies into the answer's size; real model ids are under 100 characters.
MAX_MODEL_CHARS = 256
#: ``x-stub-tokens`` may ask for up to this many tokens, or the configured
#: ``output_tokens`` if larger: deriving and framing 4096 tokens takes ~2 ms.
MAX_HEADER_TOKENS = 4096
#: OpenAI's documented maximum number of embedding inputs per request.
MAX_EMBEDDING_INPUTS = 2048
#: Inputs x dimensions of one embeddings answer (or the configured
#: ``embedding_dims`` if larger, so one input of the default size always fits):
#: 65,536 numbers are ~0.8 MB of JSON and take ~2.5 ms to derive and encode.
MAX_EMBEDDING_VALUES = 65_536
#: Token ids in one embedding input: the input limit of OpenAI's embedding models.
MAX_EMBEDDING_TOKENS = 8192

_ParseError = "We could not parse the JSON body of your request."


class BadRequest(Exception):
    """A request the stub refuses: ``status`` (4xx), provider-style message, the field."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


# ----------------------------------------------------------------- field types

_Model = Annotated[str, Meta(max_length=MAX_MODEL_CHARS)]
_Tokens = Annotated[int, Meta(ge=1, le=MAX_INT32)]
_TokenId = Annotated[int, Meta(ge=0, le=MAX_INT32)]
_Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
_Temperature2 = Annotated[float, Meta(ge=0.0, le=2.0)]  # OpenAI's range
_Unit = Annotated[float, Meta(ge=0.0, le=1.0)]  # top_p; Anthropic's temperature
_Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
_Text = Annotated[str, Meta(min_length=1)]


# gc=False throughout: decoded JSON cannot form reference cycles, and untracked
# structs keep the collector from rescanning a body's many small objects.
class _Object(Struct, gc=False):
    """Any JSON object; its members are skipped, not built."""


class _Part(Struct, gc=False):
    """A content part or block: every kind (text, image, tool_use, ...) has a type."""

    type: str


_Content = str | list[_Part]


class _ChatMessage(Struct, gc=False):
    role: str
    content: _Content | None = None  # null on an assistant turn with tool_calls
    name: str | None = None
    tool_calls: list[_Object] | None = None
    tool_call_id: str | None = None


class _AnthropicMessage(Struct, gc=False):
    role: str
    content: _Content


class _InputItem(Struct, gc=False):
    """A Responses input item: a message (role + content) or a typed item."""

    type: str | None = None
    role: str | None = None
    content: _Content | None = None


class _StreamOptions(Struct, gc=False):
    include_usage: bool | None = None


# ------------------------------------------------------------------- bodies


class Body(Struct, gc=False, kw_only=True):
    """What every endpoint's body has; also the (empty) body of ``GET /v1/models``."""

    model: _Model
    stream: bool | None = None

    @property
    def output_cap(self) -> int | None:
        """The request's limit on output tokens, if it has one."""
        return None

    @property
    def include_usage(self) -> bool:
        return False


class ChatBody(Body, gc=False, kw_only=True):
    messages: Annotated[list[_ChatMessage], Meta(min_length=1)]
    max_tokens: _Tokens | None = None
    max_completion_tokens: _Tokens | None = None
    n: Annotated[int, Meta(ge=1, le=128)] | None = None
    temperature: _Temperature2 | None = None
    top_p: _Unit | None = None
    presence_penalty: _Penalty | None = None
    frequency_penalty: _Penalty | None = None
    seed: _Int64 | None = None
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    stream_options: _StreamOptions | None = None
    tools: list[_Object] | None = None
    tool_choice: str | _Object | None = None
    parallel_tool_calls: bool | None = None
    response_format: _Object | None = None
    logit_bias: _Object | None = None
    metadata: _Object | None = None
    user: str | None = None

    @property
    def output_cap(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage is True


class ResponsesBody(Body, gc=False, kw_only=True):
    input: _Text | Annotated[list[_InputItem], Meta(min_length=1)]
    instructions: str | None = None
    max_output_tokens: _Tokens | None = None
    temperature: _Temperature2 | None = None
    top_p: _Unit | None = None
    tools: list[_Object] | None = None
    tool_choice: str | _Object | None = None
    parallel_tool_calls: bool | None = None
    text: _Object | None = None
    reasoning: _Object | None = None
    metadata: _Object | None = None
    include: list[str] | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    background: bool | None = None
    truncation: str | None = None
    user: str | None = None

    @property
    def output_cap(self) -> int | None:
        return self.max_output_tokens


class MessagesBody(Body, gc=False, kw_only=True):
    max_tokens: _Tokens  # Anthropic requires it
    messages: Annotated[list[_AnthropicMessage], Meta(min_length=1)]
    system: _Content | None = None
    temperature: _Unit | None = None
    top_p: _Unit | None = None
    top_k: _TokenId | None = None
    stop_sequences: list[str] | None = None
    tools: list[_Object] | None = None
    tool_choice: _Object | None = None
    metadata: _Object | None = None
    thinking: _Object | None = None

    @property
    def output_cap(self) -> int | None:
        return self.max_tokens


_EmbeddingItem = _Text | _TokenId | Annotated[list[_TokenId], Meta(min_length=1)]


class EmbeddingsBody(Body, gc=False, kw_only=True):
    # A string, or a list of strings, of token ids, or of token-id lists; which of
    # the three a list is, and its length, are checked after decoding.
    input: _Text | Annotated[list[_EmbeddingItem], Meta(min_length=1)]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Meta(ge=1, le=MAX_INT32)] | None = None
    user: str | None = None

    def items(self) -> list[str | list[int]]:
        """One entry per vector to answer (see :func:`embedding_items`)."""
        return embedding_items(self.input)


#: The body of a request that has none (``GET /v1/models``).
NO_BODY = Body(model="")

_DECODERS: dict[str, msgspec.json.Decoder[Body]] = {
    "chat": msgspec.json.Decoder(ChatBody),
    "responses": msgspec.json.Decoder(ResponsesBody),
    "messages": msgspec.json.Decoder(MessagesBody),
    "embeddings": msgspec.json.Decoder(EmbeddingsBody),
}
_AT = re.compile(r" - at `\$\.?(.*)`$")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def _param(message: str) -> str | None:
    """The field a msgspec error message names (``messages[0].content``), if any."""
    at = _AT.search(message)
    path = at.group(1) if at else ""
    missing = _MISSING.search(message)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    return path or None


def parse(raw: bytes, endpoint: str, default_dims: int) -> Body:
    """The typed body of an API request, or :class:`BadRequest`.

    ``default_dims`` is the configured embedding size, used when a request names none.
    """
    if not raw.isascii():
        try:  # msgspec checks the strings it builds, not those it skips
            raw.decode()
        except UnicodeDecodeError:
            raise BadRequest(400, f"{_ParseError} (not valid UTF-8)") from None
    try:
        body = _DECODERS[endpoint].decode(raw)
    except msgspec.ValidationError as e:
        message = str(e)
        raise BadRequest(400, f"Invalid request body: {message}", _param(message)) from None
    except (msgspec.DecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadRequest(400, _ParseError) from None
    if isinstance(body, EmbeddingsBody):
        items = body.items()
        dims = body.dimensions or default_dims
        if len(items) * dims > max(MAX_EMBEDDING_VALUES, default_dims):
            raise BadRequest(
                400,
                f"{len(items)} inputs x {dims} dimensions exceed the stub's limit of "
                f"{max(MAX_EMBEDDING_VALUES, default_dims)} numbers per request",
                "dimensions" if body.dimensions else "input",
            )
    return body


def embedding_items(inp: str | list[str | int | list[int]]) -> list[str | list[int]]:
    """The inputs of an embeddings request, one per vector to answer.

    A list must be all strings, all token ids (one input) or all token-id lists, as
    OpenAI accepts; at most :data:`MAX_EMBEDDING_INPUTS` inputs, and at most
    :data:`MAX_EMBEDDING_TOKENS` ids in one token-id input. Lengths are checked
    before the kinds, so the check walks at most that many items.
    """
    if isinstance(inp, str):
        return [inp]
    kind = type(inp[0])
    if kind is int:
        if len(inp) > MAX_EMBEDDING_TOKENS:
            raise BadRequest(400, _too_many_tokens(len(inp)), "input")
    elif len(inp) > MAX_EMBEDDING_INPUTS:
        raise BadRequest(
            400, f"'input' holds {len(inp)} items; at most {MAX_EMBEDDING_INPUTS} allowed", "input"
        )
    if any(type(t) is not kind for t in inp):
        raise BadRequest(
            400,
            "'input' must be a string, a list of strings, a list of token ids "
            "or a list of token-id lists",
            "input",
        )
    if kind is int:
        return [inp]  # type: ignore[list-item]  # one input given as token ids
    if kind is list:
        longest = max(len(t) for t in inp)  # type: ignore[arg-type]
        if longest > MAX_EMBEDDING_TOKENS:
            raise BadRequest(400, _too_many_tokens(longest), "input")
    return inp  # type: ignore[return-value]  # all str or all list[int]: checked above


def _too_many_tokens(n: int) -> str:
    return f"an input of {n} tokens exceeds the limit of {MAX_EMBEDDING_TOKENS} tokens"
