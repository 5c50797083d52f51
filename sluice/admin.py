"""Operator commands that talk to AWS directly (not to the API):

    python -m sluice.admin redrive --queue work|aggregate|callbacks [--stage STAGE]
    python -m sluice.admin keys create|list|revoke --tenant T ...   (sluice/admin_keys.py)

`redrive` moves every message of a queue's dead-letter queue back to the
queue, body and attributes as they were, deleting each from the DLQ only
once it was sent, and prints how many moved. With --stage the queue names
come from that stage's stack (sluice-<stage>) Outputs; without it, from the
app's settings (SLUICE_WORK_QUEUE, SLUICE_WORK_DLQ...). AWS credentials and
region are boto3's usual ones; AWS_ENDPOINT_URL aims it at another endpoint
(the embedded AWS of `make run`: http://127.0.0.1:4566).

exit codes: 0 every message moved; 1 AWS failed or some messages could not
be sent (they stay in the DLQ); 2 usage error.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.adapters.sqs import move_messages
from chalicelib.jobs.model import InputError
from chalicelib.settings import Settings

from . import admin_keys

# queue -> (stack output of the queue, of its DLQ, Settings field of each)
QUEUES = {
    "work": ("WorkQueueName", "WorkDLQName", "work_queue", "work_dlq"),
    "aggregate": ("AggregateQueueName", "AggregateDLQName", "aggregate_queue", "aggregate_dlq"),
    "callbacks": ("CallbackQueueName", "CallbackDLQName", "callback_queue", "callback_dlq"),
}


def queue_names(queue: str, stage: str | None) -> tuple[str, str]:
    """(the queue, its DLQ) by name."""
    output, dlq_output, field, dlq_field = QUEUES[queue]
    if stage is None:
        settings = Settings.from_env()
        return getattr(settings, field), getattr(settings, dlq_field)
    stack = aws.client("cloudformation").describe_stacks(StackName=f"sluice-{stage}")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs[output], outputs[dlq_output]


def redrive(queue: str, stage: str | None) -> int:
    source, dlq = queue_names(queue, stage)
    sqs = aws.client("sqs")
    report = move_messages(sqs, sqs.get_queue_url(QueueName=dlq)["QueueUrl"],
                           sqs.get_queue_url(QueueName=source)["QueueUrl"])
    print(f"moved {report.moved} message(s) from {dlq} to {source}")
    if report.failed:
        print(f"{report.failed} message(s) could not be sent and stay in {dlq}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sluice.admin", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    move = commands.add_parser("redrive", help="move a dead-letter queue's messages back to their queue")
    move.add_argument("--queue", required=True, choices=sorted(QUEUES))
    move.add_argument("--stage", help="read the queue names from stack sluice-<stage> "
                                      "(default: from SLUICE_* settings)")
    admin_keys.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "keys":
            return admin_keys.run(args)
        return redrive(args.queue, args.stage)
    except InputError as exc:  # a tenant name that cannot be used
        print(f"sluice.admin: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"sluice.admin: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
