"""Between thin routes and the upstream: what happens to a validated request.

``plan`` applies FastChat's rules and picks a worker; ``chat``, ``completion``, ``embeddings``
and ``token_check`` run a request and shape OpenAI's answer; ``stream`` is the one skeleton of
every OpenAI stream; ``retry`` is the rule for sending a request again on another worker.
"""
