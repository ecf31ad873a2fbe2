//! Where the config compiler reads from: the environment and files, through one [`Source`] trait.
//!
//! The compiler does no IO of its own: the main file, `apps_from` files, static directories, secrets
//! and `${VAR}` all come through a `Source`, so tests and the fuzz target feed them from memory
//! ([`MemorySource`]) and only the binary touches the disk ([`OsSource`]). It must not interpret what
//! it reads: that is the compiler's job.

use std::path::{Path, PathBuf};

use super::yaml;

/// What the compiler may read besides the main file: the environment and other files.
pub trait Source {
    fn env(&self, name: &str) -> Option<String>;
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// A file's bytes, as they are (branding images); at most `MAX_FILE_BYTES`.
    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.read(path).map(String::into_bytes)
    }
    /// Files matching a glob pattern, sorted.
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String>;
    fn is_dir(&self, path: &Path) -> bool;
    /// `path` with symlinks resolved, as the file system will open it. The default only removes `.`
    /// and `..` lexically, which is right for sources without symlinks (memory, fuzzing); a source
    /// backed by a real file system must resolve links, or confinement of app files is bypassable.
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        Ok(normalise_lexically(path))
    }
    /// `path` made absolute (against the working directory), `.` and `..` removed, symlinks not
    /// followed: how `portico check` compares an app file's path with `apps_from` patterns, also for
    /// a path that does not exist (`--stdin-name`). The default is for sources whose paths are
    /// absolute already (memory, fuzzing).
    fn absolute(&self, path: &Path) -> PathBuf {
        normalise_lexically(path)
    }
}

/// The largest config file portico reads (main file and every `apps_from` file). Also checked by
/// `yaml::parse`, so text that comes from memory is held to the same limit.
pub(crate) const MAX_FILE_BYTES: usize = yaml::MAX_DOCUMENT_BYTES;

/// Files and environment from memory, so rules are tested (and fuzzed, `fuzz/`) without the disk.
/// `apps_from` globs match by the text before `*.yaml`; every path counts as a directory.
#[derive(Debug, Default)]
pub struct MemorySource {
    pub files: std::collections::HashMap<PathBuf, String>,
    pub env: std::collections::HashMap<String, String>,
}

impl Source for MemorySource {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        // As the file system's glob matches: `*` stays within one path segment.
        let pattern = glob::Pattern::new(pattern).map_err(|error| error.to_string())?;
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let mut found: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| pattern.matches_path_with(p, options))
            .cloned()
            .collect();
        found.sort();
        Ok(found)
    }
    fn is_dir(&self, _path: &Path) -> bool {
        true
    }
}

/// The real environment and file system.
pub struct OsSource;

impl Source for OsSource {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        String::from_utf8(self.read_bytes(path)?)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
    }
    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        // Read at most one byte past the limit: a huge (or endless, e.g. /dev/zero) file is refused
        // without being loaded.
        let mut bytes = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the file is larger than {} (the limit for config files)",
                    yaml::MAX_DOCUMENT_SIZE_TEXT
                ),
            ));
        }
        Ok(bytes)
    }
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let paths = glob::glob(pattern).map_err(|error| error.to_string())?;
        let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        found.sort();
        Ok(found)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn absolute(&self, path: &Path) -> PathBuf {
        normalise_lexically(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
    }
}

/// Removes `.` and `..` components without touching the file system (`..` at the root stays at the root).
pub(crate) fn normalise_lexically(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The config files one load read: the main file and every `apps_from` match, each with the SHA-256
/// of the bytes compiled, and the `apps_from` patterns as searched (absolute when the main file's
/// path is). What a running server reports at `/config/status` and what a reload watches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFiles {
    /// In reading order; the main file first (absent when it could not be read).
    pub files: Vec<SourceFile>,
    /// Each `apps_from` glob as the loader searched it, so a file created later that matches is noticed.
    pub patterns: Vec<String>,
}

/// One config file read, and the hash of what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// A [`Source`] that passes everything to another one and writes down which config files it read.
/// Only the main file and files an `apps_from` glob returned count: key and secret files are read
/// through the same trait but are not config text, and their hashes are not for publishing.
pub(crate) struct RecordingSource<'s> {
    inner: &'s dyn Source,
    main: PathBuf,
    globbed: std::cell::RefCell<Vec<PathBuf>>,
    seen: std::cell::RefCell<SourceFiles>,
}

impl<'s> RecordingSource<'s> {
    pub(crate) fn new(inner: &'s dyn Source, main: &Path) -> Self {
        RecordingSource {
            inner,
            main: main.to_path_buf(),
            globbed: std::cell::RefCell::default(),
            seen: std::cell::RefCell::default(),
        }
    }

    pub(crate) fn into_files(self) -> SourceFiles {
        self.seen.into_inner()
    }
}

impl Source for RecordingSource<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.inner.env(name)
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        let text = self.inner.read(path)?;
        if path == self.main || self.globbed.borrow().iter().any(|p| p == path) {
            use sha2::Digest;
            let sha256 = crate::token::hex(&sha2::Sha256::digest(text.as_bytes()));
            self.seen.borrow_mut().files.push(SourceFile {
                path: path.to_path_buf(),
                sha256,
            });
        }
        Ok(text)
    }
    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.inner.read_bytes(path)
    }
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let found = self.inner.glob(pattern)?;
        // The directory check for unread app files searches `*.yaml` again: each pattern once.
        let mut seen = self.seen.borrow_mut();
        if !seen.patterns.iter().any(|known| known == pattern) {
            seen.patterns.push(pattern.to_owned());
        }
        drop(seen);
        self.globbed.borrow_mut().extend(found.iter().cloned());
        Ok(found)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        self.inner.canonicalize(path)
    }
    fn absolute(&self, path: &Path) -> PathBuf {
        self.inner.absolute(path)
    }
}
