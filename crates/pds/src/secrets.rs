//! Secrets a development server generates on first start and keeps in its
//! data directory, readable by the owner only (mode 0600).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use atp_crypto::SigningKey;
use rand_core::{OsRng, RngCore};

use crate::error::Error;

/// File name of the generated JWT secret.
pub const JWT_SECRET_FILE: &str = "jwt-secret";
/// File name of the PLC rotation key.
pub const PLC_ROTATION_KEY_FILE: &str = "plc-rotation-key";

/// File name of the generated admin password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// The JWT secret kept in `dir`, created (32 random bytes, hex) if absent.
pub fn load_or_create_jwt_secret(dir: &Path) -> Result<String, Error> {
    load_or_create_secret(&dir.join(JWT_SECRET_FILE), "JWT secret")
}

/// The admin password kept in `dir`, created (32 random bytes, hex) if
/// absent. The operator commands read it from there too.
pub fn load_or_create_admin_password(dir: &Path) -> Result<String, Error> {
    load_or_create_secret(&dir.join(ADMIN_PASSWORD_FILE), "admin password")
}

/// The admin password kept in `dir`, if a development server generated one.
pub fn read_admin_password(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(ADMIN_PASSWORD_FILE))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn load_or_create_secret(path: &Path, what: &str) -> Result<String, Error> {
    if path.exists() {
        let secret = std::fs::read_to_string(path)?.trim().to_owned();
        if secret.is_empty() {
            return Err(Error::Config(format!("{} is empty", path.display())));
        }
        return Ok(secret);
    }
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a {what}");
    Ok(secret)
}

/// The PLC rotation key kept in `dir`, generated (K-256) if absent.
pub fn load_or_create_rotation_key(dir: &Path) -> Result<SigningKey, Error> {
    let path = dir.join(PLC_ROTATION_KEY_FILE);
    if path.exists() {
        return Ok(atp_pds::keys::read_key_file(&path)?);
    }
    let key = atp_pds::keys::generate_signing_key();
    atp_pds::keys::write_key_file(&path, &key)?;
    tracing::info!(path = %path.display(), did_key = %key.did_key(), "generated a PLC rotation key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_generated_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let secret = load_or_create_jwt_secret(dir.path()).unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(load_or_create_jwt_secret(dir.path()).unwrap(), secret);
        let admin = load_or_create_admin_password(dir.path()).unwrap();
        assert_ne!(admin, secret);
        assert_eq!(read_admin_password(dir.path()), Some(admin));
        let key = load_or_create_rotation_key(dir.path()).unwrap();
        assert_eq!(
            load_or_create_rotation_key(dir.path()).unwrap().did_key(),
            key.did_key()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in [JWT_SECRET_FILE, ADMIN_PASSWORD_FILE, PLC_ROTATION_KEY_FILE] {
                let mode = std::fs::metadata(dir.path().join(file))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
        }
    }
}
