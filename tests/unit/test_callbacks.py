"""Callback signatures, backoff and the SSRF guard: pure functions, no network
(name resolution is a fake, or the loopback answers of the local resolver)."""
from __future__ import annotations

import hashlib
import hmac
import inspect
import re
import socket

import pytest

from chalicelib.jobs.model import InputError
from chalicelib.notify import MAX_ATTEMPTS, next_delay, sign, validate_callback_url, verify
from chalicelib.notify.callbacks import MAX_DELAY_S
from tests.support.callback_receiver import recipe_code, recipe_verify

SECRET = b"whsec-test"
BODY = b'{"job_id":"j1","status":"completed"}'
T = 1_700_000_000


# -- sign / verify ---------------------------------------------------------------

def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, T) == f"t=1700000000,v1={expected}"


def test_a_signature_verifies_within_the_tolerance():
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, BODY, header, now=T)
    assert verify(SECRET, BODY, header, now=T + 300)
    assert verify(SECRET, BODY, header, now=T - 300)  # a receiver's clock a little behind


@pytest.mark.parametrize("body, secret, now", [
    (BODY.replace(b"completed", b"failed"), SECRET, T),  # tampered body
    (BODY + b" ", SECRET, T),  # even by a byte
    (BODY, b"another secret", T),  # wrong secret
    (BODY, SECRET, T + 301),  # stale: a replay
    (BODY, SECRET, T - 301),  # from the future
])
def test_anything_changed_fails(body, secret, now):
    assert not verify(secret, body, sign(SECRET, BODY, T), now=now)


def test_tolerance_is_the_callers():
    assert verify(SECRET, BODY, sign(SECRET, BODY, T), tolerance_s=3600, now=T + 3000)
    assert not verify(SECRET, BODY, sign(SECRET, BODY, T), tolerance_s=10, now=T + 11)


def _digest(t: int = T, secret: bytes = SECRET) -> str:
    return sign(secret, BODY, t).split("v1=")[1]


@pytest.mark.parametrize("header", [
    f"t={T}, v1={_digest()}",  # spaces after commas
    f"v1={_digest()},t={T}",  # any order
    f"t={T},v1={_digest(secret=b'old key')},v1={_digest()}",  # one of several keys
    f"t={T},v0=whatever,v1={_digest()}",  # unknown schemes ignored
    f"t={T},v1={_digest()},t={T + 999}",  # the first t counts
])
def test_header_forms_that_verify(header):
    assert verify(SECRET, BODY, header, now=T)


@pytest.mark.parametrize("header", [
    "",
    ",,,",
    f"v1={_digest()}",  # no timestamp
    f"t={T}",  # no signature
    f"t={T},v1=",
    f"t={T},V1={_digest()}",  # names are case-sensitive
    f"t={T},v0={_digest()}",
    f"t=abc,v1={_digest()}",
    f"t=-{T},v1={_digest()}",
    f"t={T}.0,v1={_digest()}",
    f"t=１７００００００００,v1={_digest()}",  # non-ASCII digits
    f"t={T},v1={_digest().upper()}",
    f"t={T},v1=ünïcödé",  # compare_digest on str would raise TypeError
    f"t={T}={T},v1={_digest()}",
    "t==,v1==",
])
def test_header_forms_that_do_not(header):
    assert verify(SECRET, BODY, header, now=T) is False


def test_verifying_md_shows_exactly_the_verify_function():
    assert inspect.getsource(verify) in recipe_code()
    assert recipe_verify()(SECRET, BODY, sign(SECRET, BODY, T), now=T)


# -- backoff ------------------------------------------------------------------------

def test_delays_double_from_5_seconds_up_to_sqs_maximum():
    middle = [next_delay(a, rng=lambda: 0.5) for a in range(1, 12)]
    assert middle == [5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]


def test_delays_are_jittered_within_20_percent_and_never_above_900():
    assert next_delay(4, rng=lambda: 0.0) == 32
    assert next_delay(4, rng=lambda: 0.999) == 48
    assert all(next_delay(a, rng=lambda: 0.999) <= MAX_DELAY_S for a in range(1, 100))
    assert next_delay(1, rng=lambda: 0.0) >= 1


def test_all_attempts_span_about_an_hour():
    total = sum(next_delay(a, rng=lambda: 0.5) for a in range(1, MAX_ATTEMPTS))
    assert 45 * 60 <= total <= 75 * 60


def test_attempts_count_from_one():
    with pytest.raises(ValueError):
        next_delay(0)


# -- the SSRF guard ---------------------------------------------------------------------

def resolving_to(*addresses: str):
    """A getaddrinfo that answers `addresses` and records what it was asked."""
    asked = []

    def resolve(host, port, type=0):
        asked.append((host, port))
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    resolve.asked = asked
    return resolve


def test_a_public_https_url_is_accepted():
    resolve = resolving_to("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    url = "https://hooks.example.com/sluice?x=1"
    assert validate_callback_url(f"  {url} ", allow_private=False, resolve=resolve) == url
    assert resolve.asked == [("hooks.example.com", 443)]
    validate_callback_url("http://hooks.example.com:8080/", allow_private=False, resolve=resolve)
    assert resolve.asked[-1] == ("hooks.example.com", 8080)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "::1", "fe80::1%eth0", "fd00:ec2::254", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
])
def test_private_loopback_link_local_and_metadata_addresses_are_refused(address):
    with pytest.raises(InputError, match="private, loopback or link-local"):
        validate_callback_url("https://innocent.example.com/hook", allow_private=False,
                              resolve=resolving_to(address))


def test_one_private_answer_among_public_ones_is_enough_to_refuse():
    with pytest.raises(InputError, match="10.0.0.5"):
        validate_callback_url("https://x.example.com/", False,
                              resolve=resolving_to("93.184.215.14", "10.0.0.5"))


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8000/", "http://localhost/",
    "http://[::1]:9000/hook", "http://2130706433/",  # 127.0.0.1 as one number
])
def test_loopback_and_metadata_urls_are_refused_with_the_real_resolver(url):
    # These resolve locally (literal addresses, /etc/hosts): no network is used.
    with pytest.raises(InputError):
        validate_callback_url(url, allow_private=False)


def test_local_runs_may_call_back_to_loopback():
    assert validate_callback_url("http://127.0.0.1:9999/cb", allow_private=True) == "http://127.0.0.1:9999/cb"


def test_an_unresolvable_host_is_refused():
    def fail(host, port, type=0):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(InputError, match="cannot be resolved"):
        validate_callback_url("https://nowhere.invalid/", False, resolve=fail)


@pytest.mark.parametrize("url, problem", [
    ("ftp://example.com/x", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
    ("hooks.example.com/x", "http:// or https://"),
    ("", "http:// or https://"),
    ("http://", "has no host"),
    ("https:///path", "has no host"),
    ("http://example.com:99999/", "not a valid URL"),
    ("http://example.com:port/", "not a valid URL"),
])
def test_malformed_urls_are_refused_with_a_clear_message(url, problem):
    for allow_private in (True, False):
        with pytest.raises(InputError, match=re.escape(problem)):
            validate_callback_url(url, allow_private, resolve=resolving_to("93.184.215.14"))
