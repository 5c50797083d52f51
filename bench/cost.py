"""What a month of Sluice costs on AWS, worked out from list prices and from
what the benchmarks measured per job.

    python -m bench.cost            # the README's table, in Markdown

Every figure is here, so a reader can change the workload or a price and see
the total move. Prices are AWS's published on-demand list prices for
us-east-1 (x86 Lambda), before free tiers; per-job figures come from the
benchmarks in this repository (AWS calls per job, WebSocket messages) or are
stated as assumptions (Lambda seconds per invocation, which a local run
cannot measure for AWS). tests/unit/test_cost.py checks the README shows
exactly what this prints.
"""
from __future__ import annotations

from dataclasses import dataclass

# -- list prices, USD (us-east-1) ----------------------------------------------------
LAMBDA_PER_GB_SECOND = 0.0000166667
LAMBDA_PER_MILLION_REQUESTS = 0.20
API_REST_PER_MILLION = 3.50
API_WEBSOCKET_PER_MILLION_MESSAGES = 1.00
API_WEBSOCKET_PER_MILLION_CONNECTION_MINUTES = 0.25
SQS_PER_MILLION_REQUESTS = 0.40
DYNAMODB_PER_MILLION_WRITES = 0.625   # on-demand write request units
DYNAMODB_PER_MILLION_READS = 0.125    # on-demand read request units
S3_PER_THOUSAND_WRITES = 0.005        # PUT, POST, COPY, LIST
S3_PER_THOUSAND_READS = 0.0004        # GET, HEAD
S3_PER_GB_MONTH = 0.023
TEXTRACT_PER_THOUSAND_PAGES = 1.50    # DetectDocumentText
CLOUDWATCH_LOGS_PER_GB = 0.50
CLOUDWATCH_PER_METRIC_MONTH = 0.30
CLOUDWATCH_PER_ALARM_MONTH = 0.10
XRAY_PER_MILLION_TRACES = 5.00


@dataclass(frozen=True)
class JobKind:
    processor: str
    #: the job, as the table names it after its processor
    what: str
    per_month: int
    #: Lambda invocations a job makes (dispatch, one per chunk, aggregation,
    #: stream batches) and their seconds at their memory
    invocations: int
    gb_seconds: float
    #: AWS calls the handlers make per job, measured by the benchmarks' ledger
    s3_writes: int
    s3_reads: int
    dynamodb_writes: int
    dynamodb_reads: int
    sqs_requests: int
    api_requests: int = 4          # create, a few status polls, the result
    websocket_messages: int = 0
    textract_pages: int = 0
    stored_gb: float = 0.0         # input + outputs, kept 14 days (half a month)

    @property
    def name(self) -> str:
        return f"{self.processor}, {self.what}"


# A stated month: a team profiling daily extracts, a monthly carbon return, weekly
# document scans followed live, and a steady flow of faxed claim forms.
WORKLOAD = [
    # 100,000-row CSV (8.4 MB), 2 chunks: 89 calls per million rows measured; ~10 s of Lambda.
    JobKind("profile", "100,000-row CSV", per_month=300, invocations=6, gb_seconds=10,
            s3_writes=4, s3_reads=5, dynamodb_writes=9, dynamodb_reads=6, sqs_requests=2,
            stored_gb=0.009),
    # 1,000,000 activity rows (40 MB), 5 chunks: 175 calls per million rows measured;
    # the million-row report takes ~80 s of a 2 GB aggregator, chunks ~10 s at 1 GB.
    JobKind("carbon", "1,000,000 rows", per_month=4, invocations=10, gb_seconds=220,
            s3_writes=35, s3_reads=60, dynamodb_writes=40, dynamodb_reads=30, sqs_requests=10,
            stored_gb=0.35),
    # 6,600 documents (36 MB zip), 660 chunks: S3 10,003, DynamoDB 3,603, SQS 75 calls
    # measured; ~1.5 s per chunk at 1 GB; 7,827 WebSocket messages measured.
    JobKind("scan", "6,600 documents", per_month=8, invocations=700, gb_seconds=1000,
            s3_writes=5600, s3_reads=4400, dynamodb_writes=2000, dynamodb_reads=1600, sqs_requests=75,
            websocket_messages=7_827, stored_gb=0.08),
    # 50-page faxed TIFF, 5 batches through Textract (~1.5 s a page), with the NPI PDF:
    # 1.57 calls per page measured.
    JobKind("pages", "50-page TIFF with Textract", per_month=2000, invocations=10, gb_seconds=80,
            s3_writes=20, s3_reads=20, dynamodb_writes=25, dynamodb_reads=12, sqs_requests=3,
            textract_pages=50, stored_gb=0.004),
]
# What runs whatever the workload: SQS event source mappings long-poll their
# queues (about 650,000 requests a month each for 4 queues), the sweeper every
# 5 minutes, the alarms of infra/template.yaml (4 dead-letter queues, the
# oldest work message, API 5xx, errors and throttles of 13 functions), and the
# metrics (11 names, per processor used and for the stage as a whole).
# tests/unit/test_cost.py checks both counts against the template and the code.
IDLE_SQS_REQUESTS = 4 * 650_000
SWEEPS_PER_MONTH = 12 * 24 * 30
ALARMS = 4 + 1 + 1 + 2 * 13
PROCESSORS_USED = sorted({kind.processor for kind in WORKLOAD})
CUSTOM_METRICS = 11 * (len(PROCESSORS_USED) + 1)
LOG_GB_PER_MILLION_INVOCATIONS = 2.0
WEBSOCKET_CONNECTION_MINUTES_PER_SCAN = 30


def monthly_costs(workload: list[JobKind] = WORKLOAD) -> dict[str, float]:
    """USD per service for a month of `workload`."""
    def total(field: str) -> float:
        return sum(getattr(kind, field) * kind.per_month for kind in workload)

    invocations = total("invocations") + SWEEPS_PER_MONTH
    scans = sum(k.per_month for k in workload if k.websocket_messages)
    return {
        "Lambda (requests and GB-seconds)": invocations / 1e6 * LAMBDA_PER_MILLION_REQUESTS
        + total("gb_seconds") * LAMBDA_PER_GB_SECOND,
        "Textract (DetectDocumentText)": total("textract_pages") / 1000 * TEXTRACT_PER_THOUSAND_PAGES,
        "API Gateway (REST and WebSocket)": total("api_requests") / 1e6 * API_REST_PER_MILLION
        + total("websocket_messages") / 1e6 * API_WEBSOCKET_PER_MILLION_MESSAGES
        + scans * WEBSOCKET_CONNECTION_MINUTES_PER_SCAN / 1e6 * API_WEBSOCKET_PER_MILLION_CONNECTION_MINUTES,
        "SQS (jobs and idle polling)": (total("sqs_requests") + IDLE_SQS_REQUESTS) / 1e6
        * SQS_PER_MILLION_REQUESTS,
        "DynamoDB (on-demand)": total("dynamodb_writes") / 1e6 * DYNAMODB_PER_MILLION_WRITES
        + total("dynamodb_reads") / 1e6 * DYNAMODB_PER_MILLION_READS,
        "S3 (requests and storage)": total("s3_writes") / 1000 * S3_PER_THOUSAND_WRITES
        + total("s3_reads") / 1000 * S3_PER_THOUSAND_READS + total("stored_gb") / 2 * S3_PER_GB_MONTH,
        "CloudWatch (logs, metrics, alarms)": invocations / 1e6 * LOG_GB_PER_MILLION_INVOCATIONS
        * CLOUDWATCH_LOGS_PER_GB + CUSTOM_METRICS * CLOUDWATCH_PER_METRIC_MONTH
        + ALARMS * CLOUDWATCH_PER_ALARM_MONTH,
        "X-Ray (one trace per invocation)": invocations / 1e6 * XRAY_PER_MILLION_TRACES,
    }


def markdown(workload: list[JobKind] = WORKLOAD) -> str:
    lines = ["| job | per month |", "|---|---|"]
    lines += [f"| {kind.name} | {kind.per_month:,} |" for kind in workload]
    costs = monthly_costs(workload)
    lines += ["", "| service | USD per month |", "|---|---|"]
    lines += [f"| {service} | {usd:,.2f} |" for service, usd in costs.items()]
    lines.append(f"| **total** | **{sum(costs.values()):,.2f}** |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
