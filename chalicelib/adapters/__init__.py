"""AWS implementations of the ports in chalicelib/jobs/ports.py. Each takes
its boto3 client in __init__ and speaks the domain's types."""
from .dynamodb import DynamoJobStore
from .s3 import S3BlobStore
from .sqs import SqsTaskQueue

__all__ = ["DynamoJobStore", "S3BlobStore", "SqsTaskQueue"]
