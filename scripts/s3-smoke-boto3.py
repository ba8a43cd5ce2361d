#!/usr/bin/env python3
"""boto3 against S4's S3 endpoint, as boto3 really behaves: Expect: 100-continue
on PUTs (also empty ones, followed by more requests on the same connection),
CRC32 checksum headers, encoding-type=url listings. Credentials come from the
AWS_* environment (scripts/s3-smoke.sh sets them). Usage: s3-smoke-boto3.py URL
"""
import io
import sys
import time
import uuid

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    config=Config(
        s3={"addressing_style": "path"},
        read_timeout=20,
        retries={"max_attempts": 1},
    ),
)
bucket = "boto-" + uuid.uuid4().hex[:12]
s3.create_bucket(Bucket=bucket)

# Empty PUTs of file objects (botocore adds Expect: 100-continue to those), each
# followed by a non-empty one: every request must be answered promptly (a stall
# hits the 20 s read timeout).
started = time.monotonic()
for i in range(3):
    s3.put_object(Bucket=bucket, Key=f"empty/{i}", Body=io.BytesIO(b""))
    s3.put_object(Bucket=bucket, Key=f"full/{i}", Body=io.BytesIO(b"abc"))
    s3.head_object(Bucket=bucket, Key=f"empty/{i}")
elapsed = time.monotonic() - started
assert elapsed < 10, f"Expect: 100-continue PUTs stalled ({elapsed:.1f} s)"

# CRC32 checksum headers.
body = b"checksummed body " * 1000
s3.put_object(Bucket=bucket, Key="crc.bin", Body=body, ChecksumAlgorithm="CRC32")
got = s3.get_object(Bucket=bucket, Key="crc.bin")["Body"].read()
assert got == body, "CRC32 round trip differs"

# Keys that need URL encoding in listings (boto3 asks for encoding-type=url
# and decodes).
weird = "dir with space/a+b%c&d=é.txt"
s3.put_object(Bucket=bucket, Key=weird, Body=b"x")
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dir with space/")["Contents"]]
assert keys == [weird], keys
keys = [o["Key"] for o in s3.list_objects(Bucket=bucket, Prefix="dir with space/")["Contents"]]
assert keys == [weird], keys

# Presigned GET.
import urllib.request

url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "crc.bin"}, ExpiresIn=60)
with urllib.request.urlopen(url, timeout=20) as r:
    assert r.read() == body

# Clean up.
for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
    s3.delete_object(Bucket=bucket, Key=o["Key"])
s3.delete_bucket(Bucket=bucket)
print("boto3 checks passed")
