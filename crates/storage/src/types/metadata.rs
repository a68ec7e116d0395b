//! [`Metadata`] and [`EntryMode`].

use std::time::SystemTime;

/// Whether an entry is a file (an object) or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryMode {
    /// A file, or an object.
    File,
    /// A directory, or a common prefix.
    Dir,
}

/// What [`stat`](crate::Operator::stat) knows about an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    mode: EntryMode,
    content_length: u64,
    last_modified: Option<SystemTime>,
    etag: Option<String>,
    content_type: Option<String>,
}

impl Metadata {
    /// A file of `content_length` bytes.
    pub fn file(content_length: u64) -> Self {
        Self {
            mode: EntryMode::File,
            content_length,
            last_modified: None,
            etag: None,
            content_type: None,
        }
    }

    /// A directory.
    pub fn dir() -> Self {
        Self {
            mode: EntryMode::Dir,
            content_length: 0,
            last_modified: None,
            etag: None,
            content_type: None,
        }
    }

    /// Sets the modification time.
    pub fn with_last_modified(mut self, time: SystemTime) -> Self {
        self.last_modified = Some(time);
        self
    }

    /// Sets the entity tag.
    pub fn with_etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(etag.into());
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The content type S3 and memory store with an object (`Content-Type`); `None`
    /// on fs, which stores none (and in S3 listings, which do not carry it).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// File or directory.
    pub fn mode(&self) -> EntryMode {
        self.mode
    }

    /// `true` for a file.
    pub fn is_file(&self) -> bool {
        self.mode == EntryMode::File
    }

    /// `true` for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode == EntryMode::Dir
    }

    /// The size in bytes (0 for directories).
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// When it was last modified, if the backend says.
    pub fn last_modified(&self) -> Option<SystemTime> {
        self.last_modified
    }

    /// The entity tag, if the backend has one.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }
}
