"""boto3 clients: S3 alone signs with the S3 signer. API Gateway's
@connections API signs the connection id's path encoded ("=" as %3D); S3's
signer leaves it raw, and AWS would refuse every push with 403."""
from __future__ import annotations

from chalicelib import aws


def test_only_s3_uses_the_s3_signer(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    aws.reset_clients()
    try:
        assert aws.client("s3").meta.config.signature_version == "s3v4"
        assert aws.client("s3").meta.config.s3["addressing_style"] == "path"
        pushes = aws.websocket_management("https://abc.execute-api.us-east-1.amazonaws.com/api")
        assert pushes.meta.config.signature_version == "v4"
        assert aws.client("dynamodb").meta.config.signature_version == "v4"
    finally:
        aws.reset_clients()
