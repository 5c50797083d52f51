"""`python -m sluice.admin redrive` against the embedded AWS (moto's server)
with the stack deployed: every message of a DLQ goes back to its queue with
its body and attributes, and leaves the DLQ only once it was sent."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.adapters.sqs import move_messages
from sluice import admin


@pytest.fixture
def stage(embedded_environment):
    clients, outputs = embedded_environment
    yield clients, outputs
    for queue in ("WorkQueueName", "WorkDLQName", "CallbackQueueName", "CallbackDLQName"):
        _take_all(clients("sqs"), _url(clients, outputs[queue]))


def _url(clients, name: str) -> str:
    return clients("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def _take_all(sqs, url: str) -> list[dict]:
    taken = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return taken
        taken += messages
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])


def test_redrive_moves_every_message_back_with_its_attributes(stage, capsys):
    clients, outputs = stage
    sqs = clients("sqs")
    dlq = _url(clients, outputs["WorkDLQName"])
    for n in range(23):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"type": "chunk", "chunk": n}),
                         MessageAttributes={"origin": {"DataType": "String", "StringValue": f"o{n}"},
                                            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})

    stage_name = outputs.stack_name.removeprefix("sluice-")
    assert admin.main(["redrive", "--queue", "work", "--stage", stage_name]) == 0
    assert capsys.readouterr().out == f"moved 23 message(s) from {outputs['WorkDLQName']} to " \
                                      f"{outputs['WorkQueueName']}\n"
    assert _take_all(sqs, dlq) == []
    moved = _take_all(sqs, _url(clients, outputs["WorkQueueName"]))
    assert sorted(json.loads(m["Body"])["chunk"] for m in moved) == list(range(23))
    for m in moved:
        n = json.loads(m["Body"])["chunk"]
        assert m["MessageAttributes"]["origin"]["StringValue"] == f"o{n}"
        assert m["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"


def test_redrive_reads_the_names_from_settings_without_a_stage(stage, monkeypatch, capsys):
    clients, outputs = stage
    monkeypatch.setenv("SLUICE_CALLBACK_QUEUE", outputs["CallbackQueueName"])
    monkeypatch.setenv("SLUICE_CALLBACK_DLQ", outputs["CallbackDLQName"])
    sqs = clients("sqs")
    sqs.send_message(QueueUrl=_url(clients, outputs["CallbackDLQName"]), MessageBody='{"type": "callback"}')
    assert admin.main(["redrive", "--queue", "callbacks"]) == 0
    assert capsys.readouterr().out.startswith("moved 1 message(s) from ")
    assert [m["Body"] for m in _take_all(sqs, _url(clients, outputs["CallbackQueueName"]))] == \
        ['{"type": "callback"}']


def test_a_message_whose_send_fails_stays_in_the_dlq(stage):
    clients, outputs = stage
    sqs = clients("sqs")
    dlq, work = _url(clients, outputs["WorkDLQName"]), _url(clients, outputs["WorkQueueName"])
    for n in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"chunk": n}))

    class RefusesChunkOne:
        """SQS as it answers a batch one of whose entries it could not take."""

        def __getattr__(self, name):
            return getattr(sqs, name)

        def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3's names
            keep = [e for e in Entries if json.loads(e["MessageBody"])["chunk"] != 1]
            refused = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
                       for e in Entries if e not in keep]
            return {**sqs.send_message_batch(QueueUrl=QueueUrl, Entries=keep), "Failed": refused}

    report = move_messages(RefusesChunkOne(), dlq, work, visibility_s=1)
    assert (report.moved, report.failed) == (2, 1)
    assert sorted(json.loads(m["Body"])["chunk"] for m in _take_all(sqs, work)) == [0, 2]
    time.sleep(1.2)  # its visibility timeout
    assert [json.loads(m["Body"])["chunk"] for m in _take_all(sqs, dlq)] == [1]


def test_redrive_says_which_queues_it_knows():
    with pytest.raises(SystemExit):
        admin.main(["redrive", "--queue", "results"])
