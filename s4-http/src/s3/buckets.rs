//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
//! GetBucketLocation.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::convert::{bucket, s3_err, timestamp};
use super::S4S3;

pub(super) async fn list_buckets(
    s3: &S4S3,
    _req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let listing = s3.s4.list_buckets().await.map_err(s3_err)?;
    let buckets = listing
        .buckets
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: b.created.map(timestamp),
            ..Bucket::default()
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(Owner {
            display_name: Some("s4".into()),
            id: Some("s4".into()),
        }),
        ..ListBucketsOutput::default()
    }))
}

pub(super) async fn create_bucket(
    s3: &S4S3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let name = bucket(&req.input.bucket)?;
    s3.s4.create_bucket(&name).await.map_err(s3_err)?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", name.as_str())),
    }))
}

pub(super) async fn delete_bucket(
    s3: &S4S3,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let name = bucket(&req.input.bucket)?;
    s3.s4.delete_bucket(&name).await.map_err(s3_err)?;
    Ok(S3Response::new(DeleteBucketOutput::default()))
}

pub(super) async fn head_bucket(
    s3: &S4S3,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let name = bucket(&req.input.bucket)?;
    s3.s4.backend().head_bucket(&name).await.map_err(s3_err)?;
    Ok(S3Response::new(HeadBucketOutput::default()))
}

pub(super) async fn get_bucket_location(
    s3: &S4S3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let name = bucket(&req.input.bucket)?;
    s3.s4.backend().head_bucket(&name).await.map_err(s3_err)?;
    // us-east-1: S3 reports it as an empty location constraint.
    Ok(S3Response::new(GetBucketLocationOutput::default()))
}
