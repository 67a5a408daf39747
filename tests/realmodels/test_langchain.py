"""LangChain (``langchain-openai``) against our server, configured as its docs say for an
OpenAI-compatible server."""

from __future__ import annotations

import math

import pytest

from devstack.realmodels import CHAT_MODEL, EMBEDDING_MODEL

pytestmark = [pytest.mark.integration, pytest.mark.realmodel, pytest.mark.timeout(600)]


def test_chat_openai(base_url):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model=CHAT_MODEL, base_url=base_url, api_key="EMPTY", temperature=0,
                     max_tokens=32, max_retries=0, timeout=240)
    answer = llm.invoke("What is the capital of France? Answer in one sentence.")
    assert "Paris" in answer.content  # measured: "The capital of France is Paris."
    streamed = "".join(chunk.content for chunk in
                       llm.stream("What is the capital of France? Answer in one sentence."))
    assert streamed == answer.content


def test_openai_embeddings(base_url):
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(model=EMBEDDING_MODEL, base_url=base_url, api_key="EMPTY",
                                  check_embedding_ctx_length=False, max_retries=0)
    cat, kitten, revenue = embeddings.embed_documents(
        ["A cat sits on the mat.", "A kitten rests on a rug.", "Quarterly revenue grew by ten percent."])
    query = embeddings.embed_query("A cat sits on the mat.")
    assert len(query) == len(cat) == 384
    assert abs(math.sqrt(math.fsum(x * x for x in query)) - 1) < 1e-5
    assert math.fsum(a * b for a, b in zip(query, cat)) > 0.9999
    assert (math.fsum(a * b for a, b in zip(cat, kitten))
            > math.fsum(a * b for a, b in zip(cat, revenue)))
