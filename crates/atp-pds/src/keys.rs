//! Each account's repository signing key, in a file of its own.
//!
//! A key is a fresh secp256k1 key generated at account creation; it is
//! stored as `k256:<hex of the 32-byte secret>` in a file with mode 0600,
//! written atomically (temporary file, fsync, rename, fsync of the
//! directory) and never overwritten, so two accounts can never end up with
//! one key. Keys are never logged: [`atp_crypto::SigningKey`]'s `Debug`
//! shows only the public `did:key`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use atp_crypto::{Algorithm, SigningKey};

use crate::error::{Error, Result};

/// Generates a new secp256k1 signing key.
pub fn generate_signing_key() -> SigningKey {
    SigningKey::generate(Algorithm::K256)
}

fn encode(key: &SigningKey) -> String {
    let alg = match key.algorithm() {
        Algorithm::K256 => "k256",
        Algorithm::P256 => "p256",
    };
    format!("{alg}:{}\n", key.to_hex())
}

/// Writes `key` to `path` atomically with mode 0600. Fails with
/// [`Error::KeyExists`] if a key file is already there.
pub fn write_key_file(path: &Path, key: &SigningKey) -> Result<()> {
    if path.exists() {
        return Err(Error::KeyExists(path.display().to_string()));
    }
    let dir = path
        .parent()
        .ok_or_else(|| Error::InvalidInput("key path has no parent directory".to_owned()))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::InvalidInput("key path has no file name".to_owned()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        crate::password::random_hex(8)
    ));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(encode(key).as_bytes())?;
        file.sync_all()?;
        drop(file);
        if path.exists() {
            return Err(Error::KeyExists(path.display().to_string()));
        }
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a key written by [`write_key_file`].
pub fn read_key_file(path: &Path) -> Result<SigningKey> {
    let text = fs::read_to_string(path)?;
    let (alg, hex) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| Error::Corrupt(format!("malformed key file {}", path.display())))?;
    let alg = match alg {
        "k256" => Algorithm::K256,
        "p256" => Algorithm::P256,
        _ => {
            return Err(Error::Corrupt(format!(
                "unknown key algorithm in {}",
                path.display()
            )))
        }
    };
    Ok(SigningKey::from_hex(alg, hex)?)
}

/// Flushes a directory's entries (a rename or a new file) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}
