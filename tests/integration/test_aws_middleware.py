"""The embedded AWS answers a presigned GET with the Content-Disposition the
link asks for, as S3 does (moto alone does not), so a browser saves a
report, a row file or a PDF under its name instead of showing it."""
from __future__ import annotations

import requests


def test_a_presigned_get_carries_the_disposition_it_asks_for(embedded_stack):
    clients, outputs = embedded_stack
    s3, bucket = clients("s3"), outputs.values["BucketName"]
    s3.put_object(Bucket=bucket, Key="results/j/rows.csv", Body=b"a,b\n1,2\n", ContentType="text/csv")
    asked = 'attachment; filename="fleet_rows.csv"'
    url = s3.generate_presigned_url("get_object", ExpiresIn=60, Params={
        "Bucket": bucket, "Key": "results/j/rows.csv", "ResponseContentDisposition": asked})
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200 and answer.content == b"a,b\n1,2\n"
    assert answer.headers["Content-Disposition"] == asked
    plain = s3.generate_presigned_url("get_object", ExpiresIn=60,
                                      Params={"Bucket": bucket, "Key": "results/j/rows.csv"})
    assert "Content-Disposition" not in requests.get(plain, timeout=10).headers
