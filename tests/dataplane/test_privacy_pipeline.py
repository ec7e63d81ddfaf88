"""The privacy steps of a chat turn: previews decided after the privacy decision, answers
checked before caching, the cache's scope, and client-supplied ids kept out of the record."""
from __future__ import annotations

import json

from dataplane.outbound import ListOutbound
from dataplane.pipeline import NOT_ALLOWED_MODEL, Identity, chat_turn
from dataplane.telemetry.emf import emf_document
from tests.dataplane.conftest import ALICE, BOB, chat_request, make_policy


def turn(gateway, payload, *, sub=ALICE):
    outbound = ListOutbound()
    record = chat_turn(gateway=gateway, identity=Identity(sub=sub), channel=f"/inbound/{sub}", payload=payload,
                       outbound=outbound)
    return record, outbound


def policies(gateway, **options):
    for sub in (ALICE, BOB):
        gateway.store.policy_put(make_policy(sub, version=2, **options))


def test_a_private_request_leaves_no_preview_even_when_previews_are_on(gateway):
    policies(gateway, log_prompts=True)
    record, _ = turn(gateway, chat_request("Summarise my notes", private=True))
    assert (record.privacy_reason, record.prompt_preview) == ("client", None)


def test_a_personal_request_leaves_no_preview_and_a_clean_one_does(gateway):
    policies(gateway, log_prompts=True)
    personal, _ = turn(gateway, chat_request("My name is Kim, call 010-1234-5678"))
    assert (personal.privacy_reason, personal.prompt_preview) == ("pii", None)
    clean, _ = turn(gateway, chat_request("What is a token?"))
    assert clean.prompt_preview == "What is a token?"


def test_an_answer_with_personal_data_is_never_cached(gateway, provider):
    policies(gateway, cache_scope="shared")
    provider.chunks = ["Call Hong at ", "010-9876-5432", "."]

    first, out = turn(gateway, chat_request("Who handles refunds?"))
    assert out.texts() == "Call Hong at 010-9876-5432."  # the user who asked still gets it
    assert (first.cache, first.privacy_reason) == ("miss", "answer_pii")
    second, _ = turn(gateway, chat_request("Who handles refunds?"), sub=BOB)
    assert second.cache == "miss"
    assert len(provider.calls) == 2


def test_the_default_cache_scope_replays_an_answer_only_to_its_user(gateway, provider):
    policies(gateway)  # no scope given: the safe default
    turn(gateway, chat_request("What is a token?"))
    assert turn(gateway, chat_request("What is a token?"))[0].cache == "hit"
    assert turn(gateway, chat_request("What is a token?"), sub=BOB)[0].cache == "miss"


def test_a_shared_cache_replays_to_anyone_asking_the_same(gateway, provider):
    policies(gateway, cache_scope="shared")
    turn(gateway, chat_request("What is a token?"))
    assert turn(gateway, chat_request("What is a token?"), sub=BOB)[0].cache == "hit"


def test_a_conversation_id_holding_personal_data_is_kept_out_of_the_record(gateway):
    record, out = turn(gateway, chat_request(conversationId="010-1234-5678"))
    assert record.outcome == "ok"
    assert record.conversation_id is None
    assert out.events[0]["conversationId"] == "010-1234-5678"  # the client's own id, to the client only


def test_a_malformed_conversation_id_is_refused_and_not_recorded(gateway):
    record, out = turn(gateway, chat_request(conversationId="hong@example.com"))
    assert out.errors()[0]["type"] == "ValidationError"
    assert record.conversation_id is None


def test_an_unallowed_model_id_is_recorded_as_such_never_as_a_dimension(gateway):
    asked = "arn:aws:bedrock:us-east-1:123456789012:custom-model/hong-gildong-010-1234-5678"
    record, out = turn(gateway, chat_request(modelId=asked))

    assert out.errors()[0]["type"] == "ModelNotAllowed"
    assert record.model_id == NOT_ALLOWED_MODEL
    document = emf_document(record, namespace="AIGateway")
    assert document["ModelId"] == NOT_ALLOWED_MODEL
    assert asked not in json.dumps(document)
    assert asked not in json.dumps(record.to_lake())
