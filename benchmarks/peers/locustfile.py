"""Locust peer: FastHttpUser posting the shared non-stream chat body with no wait time."""

from __future__ import annotations

from locust import FastHttpUser, constant, task

BODY = (
    '{"model":"gpt-4o-mini","max_tokens":16,"stream":false,'
    '"messages":[{"role":"user","content":"Say something. [loadgate:00000000000000ab]"}]}'
)
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-lg-peer"}


class ChatUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def chat(self) -> None:
        self.client.post("/v1/chat/completions", data=BODY, headers=HEADERS)
