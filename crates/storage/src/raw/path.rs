//! Path normalization shared by every backend.
//!
//! Paths are relative to the backend's root. A leading `/` means the root, so
//! `/etc/passwd` is `<root>/etc/passwd`. Repeated slashes and `.` are dropped, `..`
//! is resolved lexically, and a path that ends with `/`, or whose last name is `.`
//! or `..`, names a directory. A `..` that would climb above the root, a NUL byte, or a path longer than
//! [`MAX_PATH_LEN`] is an [`ErrorKind::InvalidInput`].

use crate::{Error, ErrorKind, Result};

/// The longest path, in bytes, that any backend takes: Linux's `PATH_MAX` (4,096)
/// less the NUL that ends a path there. S3 keys are at most 1,024 bytes (the S3
/// backend refuses a longer key itself, before any request); fs paths below the
/// root at most this. A directory path counts its trailing `/`. Longer paths are
/// refused before any backend sees them, so that memory and S3 refuse what fs refuses, and never make work in
/// proportion to the square of a path's length (every ancestor of a path of
/// many components, as a directory or a check).
pub const MAX_PATH_LEN: usize = 4095;

/// How much of an over-long path its error shows.
const SHOWN_OF_LONG_PATH: usize = 256;

/// Normalizes `path`: no leading `/`, no empty, `.` or `..` components; a directory
/// path (one that ends with `/`, `.` or `..`) ends with `/`. The root is `""`.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] for a NUL byte, a `..` that escapes the root, or a
/// path longer than [`MAX_PATH_LEN`] bytes (its error shows the path's start).
///
/// # Examples
///
/// ```
/// use storage::raw::normalize_path;
///
/// assert_eq!(normalize_path("/etc/passwd").unwrap(), "etc/passwd");
/// assert_eq!(normalize_path("a//b/./c/../d/").unwrap(), "a/b/d/");
/// assert_eq!(normalize_path("a/b/..").unwrap(), "a/");
/// assert!(normalize_path("a/../../x").is_err());
/// ```
pub fn normalize_path(path: &str) -> Result<String> {
    if path.len() > MAX_PATH_LEN {
        return Err(too_long(path));
    }
    if path.contains('\0') {
        return Err(invalid(path, "path contains a NUL byte"));
    }
    // `a/` names a directory, and so do `a/.` and `a/b/..`, as in a shell.
    let is_dir = path.ends_with('/') || matches!(path.rsplit('/').next(), Some("." | ".."));
    // Most paths are normal already: one copy, no list of their components.
    let body = if is_dir {
        &path[..path.len() - 1]
    } else {
        path
    };
    if !body.is_empty() && body.split('/').all(|c| !matches!(c, "" | "." | "..")) {
        return Ok(path.to_owned());
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(invalid(path, "path escapes the root"));
                }
            }
            name => parts.push(name),
        }
    }
    let mut out = parts.join("/");
    if is_dir && !out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Normalizes a path that must name a file (an object).
///
/// # Errors
///
/// As [`normalize_path`], plus [`ErrorKind::InvalidInput`] for an empty file name
/// (the root) and [`ErrorKind::IsADirectory`] for a directory path (`a/`, `a/.`,
/// `a/b/..`).
pub fn normalize_file_path(path: &str) -> Result<String> {
    let normalized = normalize_path(path)?;
    if normalized.is_empty() {
        return Err(invalid(path, "empty file name"));
    }
    if normalized.ends_with('/') {
        return Err(Error::new(ErrorKind::IsADirectory)
            .with_message("a path ending in '/', '.' or '..' names a directory")
            .with_path(path));
    }
    Ok(normalized)
}

/// Normalizes a path that names a directory: the result is `""` (the root) or ends
/// with `/`, whether or not `path` did.
///
/// # Errors
///
/// As [`normalize_path`], counting the `/` added.
pub fn normalize_dir_path(path: &str) -> Result<String> {
    let mut normalized = normalize_path(path)?;
    if !normalized.is_empty() && !normalized.ends_with('/') {
        normalized.push('/');
        if normalized.len() > MAX_PATH_LEN {
            return Err(too_long(&normalized));
        }
    }
    Ok(normalized)
}

/// The parent directory of a normalized path (`""` for the root's children).
pub fn parent_dir(path: &str) -> &str {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    match trimmed.rfind('/') {
        Some(i) => &trimmed[..=i],
        None => "",
    }
}

/// `path` as an error shows it: whole, or the start of one longer than
/// [`MAX_PATH_LEN`] (which no backend takes), marked `...`.
pub(crate) fn shown_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.len() <= MAX_PATH_LEN {
        return path.into();
    }
    let mut end = SHOWN_OF_LONG_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end]).into()
}

/// The error for `path`, longer than [`MAX_PATH_LEN`]: `InvalidInput`, showing
/// its start.
fn too_long(path: &str) -> Error {
    invalid(&shown_path(path), &too_long_message(path.len()))
}

/// What the error for a path of `len` bytes, over [`MAX_PATH_LEN`], says.
pub(crate) fn too_long_message(len: usize) -> String {
    format!("the path is {len} bytes long, more than the {MAX_PATH_LEN} any backend takes")
}

fn invalid(path: &str, message: &str) -> Error {
    Error::new(ErrorKind::InvalidInput)
        .with_message(message)
        .with_path(path.replace('\0', "\\0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        for (input, want) in [
            ("", ""),
            ("/", ""),
            ("a", "a"),
            ("/a/b", "a/b"),
            ("a/b/", "a/b/"),
            ("a/./b//c", "a/b/c"),
            ("a/b/../c", "a/c"),
            ("a/..", ""),
            ("a/../", ""),
            ("with space/+%=&?#/ünï", "with space/+%=&?#/ünï"),
        ] {
            assert_eq!(normalize_path(input).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn rejects_escapes_and_nul() {
        for input in ["..", "../x", "a/../../x", "/../x", "a\0b"] {
            let err = normalize_path(input).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{input:?}");
        }
    }

    #[test]
    fn file_and_dir_paths() {
        assert_eq!(
            normalize_file_path("").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            normalize_file_path("/").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            normalize_file_path("d/").unwrap_err().kind(),
            ErrorKind::IsADirectory
        );
        assert_eq!(normalize_dir_path("a/b").unwrap(), "a/b/");
        assert_eq!(normalize_dir_path("/").unwrap(), "");
        assert_eq!(parent_dir("a/b/c"), "a/b/");
        assert_eq!(parent_dir("a/b/"), "a/");
        assert_eq!(parent_dir("a"), "");
    }
}
