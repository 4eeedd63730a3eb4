"""Ingress: each non-canonical door's pure translation to and from the canonical form (OpenAI chat).

A door that speaks another API (Anthropic Messages today; Responses next) translates its request into a
canonical chat request at the edge, lets the one pipeline (routing, attempts, fallbacks, hooks, metering)
serve it, and translates the answer back: a whole `chat.completion`, a stream of `chat.completion.chunk`s
through the door's `StreamEncoder`, or a `GatewayError` into the door's own error envelope. N doors and M
providers need N + M translators this way, never N times M.

Everything here is pure: dicts in, dicts (or bytes) out, no I/O, and the client's body is never changed.
"""
