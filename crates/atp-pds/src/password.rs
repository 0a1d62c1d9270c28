//! Password hashing: scrypt with the reference PDS's parameters, in a
//! self-describing format.
//!
//! The reference PDS hashes passwords (and app passwords) with scrypt,
//! `N = 2^14, r = 8, p = 1`, 64-byte output. We use the same function and
//! cost, so accounts migrated from a reference database keep working, and
//! no new algorithm has to be trusted. New hashes are written as
//!
//! ```text
//! $scrypt$ln=14,r=8,p=1$<salt, hex>$<hash, hex>
//! ```
//!
//! which names the algorithm and its parameters: raising the cost or moving
//! to another function later only adds a new prefix, and old hashes still
//! verify. The reference's own stored form, `<salt hex>:<hash hex>` (where
//! the salt is used as its hex text), is accepted when verifying.
//!
//! Hashes compare in constant time, and [`PasswordHash`] never shows its
//! contents in `Debug` output.
//!
//! ```
//! use atp_pds::password::PasswordHash;
//!
//! let hash = PasswordHash::new("correct horse battery staple")?;
//! assert!(hash.as_stored().starts_with("$scrypt$ln=14,r=8,p=1$"));
//! assert!(hash.verify("correct horse battery staple")?);
//! assert!(!hash.verify("wrong")?);
//! assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
//! # Ok::<(), atp_pds::Error>(())
//! ```

use std::fmt;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// log2 of scrypt's cost parameter N for new hashes (N = 16384).
pub const SCRYPT_LOG_N: u8 = 14;
/// scrypt's block size parameter r for new hashes.
pub const SCRYPT_R: u32 = 8;
/// scrypt's parallelism parameter p for new hashes.
pub const SCRYPT_P: u32 = 1;
/// Length in bytes of the derived key.
pub const HASH_LEN: usize = 64;
/// Length in bytes of a fresh random salt.
pub const SALT_LEN: usize = 16;
/// Longest password accepted (bytes), as a guard against hashing huge inputs.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Highest `ln` accepted when reading a stored hash (guards against a
/// corrupt row asking for gigabytes of memory).
const MAX_STORED_LOG_N: u8 = 20;

/// A stored password hash. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32, len: usize) -> Result<Vec<u8>> {
    let params = scrypt::Params::new(log_n, r, p, len)
        .map_err(|err| Error::Corrupt(format!("bad scrypt parameters: {err}")))?;
    let job = HashJob {
        password: password.to_vec(),
        salt: salt.to_vec(),
        params,
        len,
    };
    match hashing_threads() {
        Some(pool) => pool.run(job),
        None => job.run(),
    }
}

/// One scrypt derivation.
struct HashJob {
    password: Vec<u8>,
    salt: Vec<u8>,
    params: scrypt::Params,
    len: usize,
}

impl HashJob {
    fn run(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.len];
        scrypt::scrypt(&self.password, &self.salt, &self.params, &mut out)
            .map_err(|err| Error::Corrupt(format!("bad scrypt output length: {err}")))?;
        Ok(out)
    }
}

type HashReply = mpsc::SyncSender<Result<Vec<u8>>>;

/// A few threads (one per CPU, at most 4) that run every scrypt
/// derivation of the process. Each derivation allocates 16 MiB
/// (`128 * r * N` bytes); run on whatever thread asked, those blocks were
/// kept by the allocator in one arena per thread (up to 8 per CPU), and
/// the server's memory grew by hundreds of MiB under account creation.
/// On a fixed set of threads they are reused, and concurrent derivations
/// are bounded by the CPUs that can run them.
struct HashingThreads {
    jobs: mpsc::Sender<(HashJob, HashReply)>,
}

impl HashingThreads {
    fn start() -> Option<Self> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let (jobs, queue) = mpsc::channel::<(HashJob, HashReply)>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = 0;
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("scrypt-{n}"))
                .spawn(move || loop {
                    let next = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok((job, reply)) = next else { return };
                    // the asker may have gone away: nothing to do then
                    let _ = reply.send(job.run());
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        (started > 0).then_some(HashingThreads { jobs })
    }

    /// Runs `job` on one of the threads and waits for it (on this thread
    /// if they are gone).
    fn run(&self, job: HashJob) -> Result<Vec<u8>> {
        let (reply, answer) = mpsc::sync_channel(1);
        if let Err(mpsc::SendError((job, _))) = self.jobs.send((job, reply)) {
            return job.run();
        }
        answer
            .recv()
            .map_err(|_| Error::Internal("password hashing thread stopped".to_owned()))?
    }
}

fn hashing_threads() -> Option<&'static HashingThreads> {
    static THREADS: OnceLock<Option<HashingThreads>> = OnceLock::new();
    THREADS.get_or_init(HashingThreads::start).as_ref()
}

fn check_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::InvalidInput("password is empty".to_owned()));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::InvalidInput("password is too long".to_owned()));
    }
    Ok(())
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub fn new(password: &str) -> Result<Self> {
        check_password(password)?;
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        Self::with_salt(password, &salt)
    }

    /// Hashes `password` with the given salt (deterministic; for tests and
    /// for app passwords whose salt derives from the account).
    pub fn with_salt(password: &str, salt: &[u8]) -> Result<Self> {
        check_password(password)?;
        let hash = derive(
            password.as_bytes(),
            salt,
            SCRYPT_LOG_N,
            SCRYPT_R,
            SCRYPT_P,
            HASH_LEN,
        )?;
        Ok(PasswordHash(format!(
            "$scrypt$ln={SCRYPT_LOG_N},r={SCRYPT_R},p={SCRYPT_P}${}${}",
            hex::encode(salt),
            hex::encode(hash)
        )))
    }

    /// Wraps a hash read from storage (checked when verifying).
    pub fn from_stored(stored: impl Into<String>) -> Self {
        PasswordHash(stored.into())
    }

    /// The text to store.
    pub fn as_stored(&self) -> &str {
        &self.0
    }

    /// Whether `password` matches, compared in constant time. A stored
    /// value in no known format is an error, not a mismatch.
    pub fn verify(&self, password: &str) -> Result<bool> {
        if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
            return Ok(false);
        }
        let (salt, expected, log_n, r, p) = self.parse()?;
        let actual = derive(password.as_bytes(), &salt, log_n, r, p, expected.len())?;
        Ok(bool::from(actual.ct_eq(&expected)))
    }

    /// Splits the stored form into salt, hash and parameters.
    #[allow(clippy::type_complexity)]
    fn parse(&self) -> Result<(Vec<u8>, Vec<u8>, u8, u32, u32)> {
        let corrupt = || Error::Corrupt("unrecognized password hash format".to_owned());
        if let Some(rest) = self.0.strip_prefix("$scrypt$") {
            let mut parts = rest.split('$');
            let (params, salt, hash) =
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some(params), Some(salt), Some(hash), None) => (params, salt, hash),
                    _ => return Err(corrupt()),
                };
            let (mut log_n, mut r, mut p) = (None, None, None);
            for param in params.split(',') {
                match param.split_once('=') {
                    Some(("ln", v)) => log_n = v.parse::<u8>().ok(),
                    Some(("r", v)) => r = v.parse::<u32>().ok(),
                    Some(("p", v)) => p = v.parse::<u32>().ok(),
                    _ => return Err(corrupt()),
                }
            }
            let (log_n, r, p) = match (log_n, r, p) {
                (Some(log_n), Some(r), Some(p))
                    if log_n <= MAX_STORED_LOG_N && r <= 64 && p <= 16 =>
                {
                    (log_n, r, p)
                }
                _ => return Err(corrupt()),
            };
            let salt = hex::decode(salt).map_err(|_| corrupt())?;
            let hash = hex::decode(hash).map_err(|_| corrupt())?;
            if hash.is_empty() || hash.len() > 256 {
                return Err(corrupt());
            }
            return Ok((salt, hash, log_n, r, p));
        }
        // The reference PDS's form: `<salt hex>:<hash hex>`, the salt used
        // as text, scrypt with Node's defaults (N = 2^14, r = 8, p = 1).
        if let Some((salt, hash)) = self.0.split_once(':') {
            let hash = hex::decode(hash).map_err(|_| corrupt())?;
            if salt.is_empty() || hash.is_empty() || hash.len() > 256 {
                return Err(corrupt());
            }
            return Ok((salt.as_bytes().to_vec(), hash, 14, 8, 1));
        }
        Err(corrupt())
    }
}

/// Random bytes from the operating system, as lower-case hex.
pub(crate) fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A random code of `groups` groups of `group_len` characters from the
/// base32 alphabet, joined by `-` (invite codes, email tokens, app
/// passwords).
pub(crate) fn random_code(groups: usize, group_len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(groups * (group_len + 1));
    for group in 0..groups {
        if group > 0 {
            out.push('-');
        }
        let mut bytes = vec![0u8; group_len];
        OsRng.fill_bytes(&mut bytes);
        for byte in bytes {
            out.push(char::from(ALPHABET[usize::from(byte & 31)]));
        }
    }
    out
}

/// Constant-time equality of two strings.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
