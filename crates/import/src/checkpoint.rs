//! How far an import got: the number of items (in input order) whose batches are committed.
//! Written after every batch by replacing the file, so it never holds a torn value; removed
//! when the import completes.

use std::path::PathBuf;

use crate::ImportError;

#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub path: PathBuf,
    /// Must match what is stored, or the checkpoint belongs to another import and is ignored.
    pub fingerprint: String,
}

impl Checkpoint {
    fn err(&self, e: impl std::fmt::Display) -> ImportError {
        ImportError::Checkpoint(self.path.display().to_string(), e.to_string())
    }

    /// Items already committed by an earlier run of the same import.
    pub fn load(&self) -> Result<u64, ImportError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let (fingerprint, items) = text.trim().split_once(' ').unwrap_or(("", "0"));
                Ok(if fingerprint == self.fingerprint { items.parse().map_err(|e| self.err(e))? } else { 0 })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(self.err(e)),
        }
    }

    pub fn save(&self, items: u64) -> Result<(), ImportError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, format!("{} {items}\n", self.fingerprint)).map_err(|e| self.err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.err(e))
    }

    pub fn finish(&self) -> Result<(), ImportError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err(e)),
            _ => Ok(()),
        }
    }
}
