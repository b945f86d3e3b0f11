"""LangChain's ChatOpenAI against Hearth: `bind_tools` gets a call whose arguments fit the
tool, and `with_structured_output` fills a pydantic model (json_schema under the hood)."""

import os

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

MODEL = "SmolLM2-135M-Instruct.Q4_1"


def chat(**kw):
    return ChatOpenAI(
        model=MODEL, base_url=os.environ["HEARTH_URL"] + "/v1", api_key="unused", max_retries=0, temperature=0, **kw
    )


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def test_bind_tools_gets_a_valid_call():
    llm = chat(max_tokens=80).bind_tools([get_weather], tool_choice="get_weather")
    msg = llm.invoke("What is the weather in Paris?")
    assert msg.tool_calls, msg
    call = msg.tool_calls[0]
    assert call["name"] == "get_weather"
    assert isinstance(call["args"]["city"], str)
    # The call runs and its result goes back for the answer.
    result = get_weather.invoke(call)
    answer = chat(max_tokens=40).bind_tools([get_weather]).invoke(["What is the weather in Paris?", msg, result])
    assert answer.content or answer.tool_calls


class Person(BaseModel):
    """A person."""

    name: str = Field(max_length=40)
    age: int = Field(ge=0, le=150)


def test_with_structured_output_fills_a_model():
    p = chat(max_tokens=80).with_structured_output(Person, method="json_schema").invoke("Invent a person.")
    assert isinstance(p, Person)
    tool_way = chat(max_tokens=80).with_structured_output(Person, method="function_calling").invoke("Invent a person.")
    assert isinstance(tool_way, Person)


def test_chat_ollama_invoke_and_stream():
    """LangChain's ChatOllama (langchain-ollama) against Hearth's Ollama API."""
    from langchain_ollama import ChatOllama

    llm = ChatOllama(model=MODEL, base_url=os.environ["HEARTH_URL"], temperature=0, num_predict=12)
    msg = llm.invoke("Name a colour.")
    assert msg.content
    assert msg.usage_metadata["output_tokens"] >= 1
    chunks = list(llm.stream("Name a colour."))
    assert "".join(c.content for c in chunks) == msg.content


def test_chat_ollama_structured_output():
    from langchain_ollama import ChatOllama

    llm = ChatOllama(model=MODEL, base_url=os.environ["HEARTH_URL"], temperature=0, num_predict=120)
    person = llm.with_structured_output(Person, method="json_schema").invoke("Describe a person.")
    assert isinstance(person, Person)
