"""``/v1/chat/completions`` with the official ``openai`` client (over the ASGI app), streaming and not."""

from __future__ import annotations

import openai
import pytest

from tests.agent.api.conftest import upload


@pytest.fixture
def oai(make_client):
    client = make_client(api_key="sk-test")
    return client, openai.OpenAI(
        base_url="http://testserver/v1", api_key="sk-test", http_client=client, max_retries=0
    )


def test_chat_completion_with_box_and_follow_up(oai, red_circle):
    client, ai = oai
    clip, data = red_circle
    vid = upload(client, data, headers={"X-API-Key": "sk-test"}).json()["id"]
    assert [m.id for m in ai.models.list()] == ["artemis"]
    out = ai.chat.completions.create(
        model="artemis",
        messages=[
            {"role": "system", "content": "You answer about videos."},
            {"role": "user", "content": [{"type": "text", "text": "What is the boxed object doing?"}]},
        ],
        extra_body={"video_id": vid, "box": list(clip.truth_box(0, 3)), "frame_idx": 3},
    )
    assert out.object == "chat.completion" and out.choices[0].finish_reason == "stop"
    answer = out.choices[0].message.content
    assert "red circle" in answer and "right" in answer, answer
    extra = out.model_extra
    cid = extra["conversation_id"]
    assert extra["artemis"]["status"] == "done" and len(extra["artemis"]["tracks"][0]["boxes"]) == 16
    follow = ai.chat.completions.create(
        model="artemis",
        messages=[{"role": "user", "content": "Where does it go?"}],
        extra_body={"conversation_id": cid},
    )
    assert "red circle" in follow.choices[0].message.content
    assert follow.model_extra["artemis"]["turn"] == 2


def test_streaming_chat_completion(oai, red_circle):
    client, ai = oai
    vid = upload(client, red_circle[1], headers={"X-API-Key": "sk-test"}).json()["id"]
    stream = ai.chat.completions.create(
        model="artemis",
        messages=[{"role": "user", "content": "What are the red objects doing?"}],
        extra_body={"video_id": vid},
        stream=True,
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    events = [c.model_extra["artemis_event"]["event"] for c in chunks if c.model_extra.get("artemis_event")]
    assert "plan" in events and "tool_call" in events and "answer" in events
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "red circle" in text and "right" in text, text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (
        text
        == client.get(
            f"/conversations/{chunks[-1].model_extra['conversation_id']}/messages",
            headers={"X-API-Key": "sk-test"},
        ).json()["messages"][0]["answer"]
    )


def test_clarification_over_openai(oai, two_circles):
    client, ai = oai
    vid = upload(client, two_circles[1], headers={"X-API-Key": "sk-test"}).json()["id"]
    out = ai.chat.completions.create(
        model="artemis",
        messages=[{"role": "user", "content": "What is the circle doing?"}],
        extra_body={"video_id": vid},
    )
    art = out.model_extra["artemis"]
    assert art["status"] == "clarification" and "Which one" in out.choices[0].message.content
    assert len(art["clarification"]["candidates"]) == 2
    reply = ai.chat.completions.create(
        model="artemis",
        messages=[{"role": "user", "content": "2"}],
        extra_body={"conversation_id": out.model_extra["conversation_id"]},
    )
    assert "yellow circle" in reply.choices[0].message.content


def test_openai_errors_are_4xx_with_a_message(oai, red_circle):
    client, ai = oai
    vid = upload(client, red_circle[1], headers={"X-API-Key": "sk-test"}).json()["id"]
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.UnprocessableEntityError, match="video_id is required"):
        ai.chat.completions.create(model="artemis", messages=msgs)
    with pytest.raises(openai.UnprocessableEntityError, match="inverted"):
        ai.chat.completions.create(
            model="artemis", messages=msgs, extra_body={"video_id": vid, "box": [9, 9, 1, 1]}
        )
    with pytest.raises(openai.UnprocessableEntityError, match="image_url"):
        ai.chat.completions.create(
            model="artemis",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
                }
            ],
            extra_body={"video_id": vid},
        )
    with pytest.raises(openai.NotFoundError):
        ai.chat.completions.create(model="artemis", messages=msgs, extra_body={"video_id": "e" * 32})
    with pytest.raises(openai.UnprocessableEntityError, match="role 'user'"):
        ai.chat.completions.create(
            model="artemis", messages=[{"role": "system", "content": "x"}], extra_body={"video_id": vid}
        )
    anon = openai.OpenAI(base_url="http://testserver/v1", api_key="wrong", http_client=client, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anon.chat.completions.create(model="artemis", messages=msgs, extra_body={"video_id": vid})
