//! S3 in a build without the `s3` feature (the fuzz targets' build): the same names, no AWS
//! SDK. `S3Source` has no value, so every method is unreachable and the compiler proves it;
//! `Source::open` refuses a bucket instead.

use super::{Listing, Stat, UploadedPart};
use crate::error::Result;
use crate::key::Key;
use bytes::Bytes;
use std::time::Duration;

/// An S3 source cannot exist in this build.
#[derive(Debug, Clone)]
pub enum S3Source {}

impl S3Source {
    pub async fn stat(&self, _key: &Key) -> Result<Stat> {
        match *self {}
    }

    pub async fn fetch(&self, _key: &Key, _max_bytes: u64) -> Result<Bytes> {
        match *self {}
    }

    pub async fn presign_original(&self, _key: &Key, _filename: Option<&str>) -> Result<String> {
        match *self {}
    }

    pub async fn head_bytes(&self, _key: &Key, _len: u64) -> Result<Bytes> {
        match *self {}
    }

    pub async fn list(&self, _prefix: &str, _cursor: Option<&str>, _limit: u32) -> Result<Listing> {
        match *self {}
    }

    pub async fn presign_put(
        &self,
        _key: &Key,
        _content_type: &str,
        _bytes: u64,
        _expires_in: Duration,
    ) -> Result<(String, Vec<(String, String)>)> {
        match *self {}
    }

    pub async fn offload(
        &self,
        _name: &str,
        _bytes: Bytes,
        _content_type: &str,
        _filename: Option<&str>,
    ) -> Result<String> {
        match *self {}
    }

    pub async fn start_multipart(&self, _key: &Key, _content_type: &str) -> Result<String> {
        match *self {}
    }

    pub async fn presign_part(
        &self,
        _key: &Key,
        _upload_id: &str,
        _n: u32,
        _len: u64,
        _expires_in: Duration,
    ) -> Result<(String, Vec<(String, String)>)> {
        match *self {}
    }

    pub async fn list_parts(&self, _key: &Key, _upload_id: &str) -> Result<Vec<UploadedPart>> {
        match *self {}
    }

    pub async fn complete_multipart(
        &self,
        _key: &Key,
        _upload_id: &str,
        _parts: &[(u32, String)],
        _total: u64,
    ) -> Result<()> {
        match *self {}
    }

    pub async fn abort_multipart(&self, _key: &Key, _upload_id: &str) -> Result<()> {
        match *self {}
    }
}
