"""The command line: `python -m sluice submit|wait|status|jobs ...`. It turns
arguments into one call of `commands` and an exception into one line on
stderr and an exit code."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from . import commands
from .client import DEFAULT_API_URL, SluiceClient, SluiceClientError
from .commands import UsageError

EPILOG = """\
The API is at --url, else $SLUICE_API_URL, else http://127.0.0.1:8000 (what
`make run` starts, and prints a key for). A key, from --api-key or
$SLUICE_API_KEY, is sent as `Authorization: Bearer <key>`; presigned S3 links
never see it.

exit codes:
  0  done (for submit --wait, submit --out and wait: the job completed)
  1  the API or the network failed (unreachable, 5xx, refused key)
  2  usage or input error (bad arguments, missing file, the API's 400/404)
  3  the job completed_with_errors
  4  the job failed or was cancelled
"""


def _api_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 200:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 200")
    return int(text)


def _add_common(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None) -> None:
    """--url, --api-key and --json, before the command or after it. Only the
    top parser has defaults: a subparser's default would overwrite what was
    given before the command, so theirs are SUPPRESSed."""
    def default(value: object) -> object:
        return argparse.SUPPRESS if environ is None else value

    parser.add_argument("--url", type=_api_url,
                        default=default((environ or {}).get("SLUICE_API_URL") or DEFAULT_API_URL),
                        help=f"the API's base URL (default: $SLUICE_API_URL or {DEFAULT_API_URL})")
    parser.add_argument("--api-key", default=default((environ or {}).get("SLUICE_API_KEY") or None),
                        help="sent as 'Authorization: Bearer <key>' (default: $SLUICE_API_KEY)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print machine-readable JSON on stdout")


def build_parser(environ: Mapping[str, str] = os.environ) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, None)

    parser = argparse.ArgumentParser(
        prog="python -m sluice", description="Sluice's command-line client.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(parser, environ)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = sub.add_parser("submit", parents=[common], help="upload a file and start a job",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    submit.add_argument("file", type=Path)
    submit.add_argument("--processor", help="profile, carbon, ... (default: the server's, profile)")
    submit.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a processor option, repeatable; VALUE is read as JSON when it parses "
                             "(true, 2022, [..]), else as text")
    submit.add_argument("--options-json", metavar="JSON", help="options as one JSON object (--option wins)")
    submit.add_argument("--callback-url", help="where the server POSTs the signed final status")
    submit.add_argument("--wait", action="store_true", help="follow the job until it is final")
    _add_out(submit)
    submit.set_defaults(run=lambda client, args: commands.submit(
        client, args.file, processor=args.processor,
        options=commands.build_options(args.options_json, args.option), callback_url=args.callback_url,
        wait=args.wait, out_dir=args.out, as_json=args.json))

    wait = sub.add_parser("wait", parents=[common], help="follow a job until it is final",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    wait.add_argument("job_id", metavar="JOB")
    _add_out(wait)
    wait.set_defaults(run=lambda client, args: commands.wait_for(
        client, args.job_id, out_dir=args.out, as_json=args.json))

    status = sub.add_parser("status", parents=[common], help="show one job")
    status.add_argument("job_id", metavar="JOB")
    status.set_defaults(run=lambda client, args: commands.status(client, args.job_id, as_json=args.json))

    jobs = sub.add_parser("jobs", parents=[common], help="list recent jobs, newest first")
    jobs.add_argument("--limit", type=_limit, default=20, help="how many (1-200, default %(default)s)")
    jobs.set_defaults(run=lambda client, args: commands.jobs(client, limit=args.limit, as_json=args.json))
    return parser


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="save the result, report and row file here as <job id>-result.json, "
                             "-report.xlsx, -rows.csv (implies --wait)")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ,
         make_client: Callable[[str, str | None], SluiceClient] = SluiceClient) -> int:
    """`make_client(url, api_key)` is where tests hand in a client on a fake transport."""
    args = build_parser(environ).parse_args(argv)
    client = make_client(args.url, args.api_key)
    try:
        return args.run(client, args)
    except (UsageError, SluiceClientError) as exc:
        print(f"sluice: {exc}", file=sys.stderr)
        return commands.exit_code_for_error(exc)
    except KeyboardInterrupt:
        return 130
