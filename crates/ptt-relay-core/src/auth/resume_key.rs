//! The resumption key kept in the data directory: created once (readable by
//! the relay's user only, like the generated TLS key) so that credentials
//! survive a restart; deleting the file revokes every credential issued.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::resume::ResumeKey;

/// File name of the resumption key inside the data directory.
pub const RESUME_KEY_FILE: &str = "pttd-resume.key";

const HEADER: &str =
    "# pttd session resumption key: keep it secret; delete it to revoke every credential\n";

/// Where the key of `data_dir` lives.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(RESUME_KEY_FILE)
}

/// Loads the key kept in `data_dir`, creating it (mode 0600) on first use.
/// A file that exists but does not hold a key is an error, not replaced:
/// replacing it would silently revoke every credential.
pub fn load_or_create(data_dir: &Path) -> io::Result<ResumeKey> {
    let path = key_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold a resumption key (delete it to make a new one)",
                    path.display()
                ),
            )
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => create(&path),
        Err(error) => Err(error),
    }
}

fn create(path: &Path) -> io::Result<ResumeKey> {
    let key = ResumeKey::generate().map_err(|_| io::Error::other("no random bytes"))?;
    let mut options = fs::OpenOptions::new();
    // `create_new`: two relays started on one data directory at once do not
    // overwrite each other's key; the loser reads the winner's.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            return load_existing(path);
        }
        Err(error) => return Err(error),
    };
    file.write_all(HEADER.as_bytes())?;
    file.write_all(to_text(&key).as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

fn load_existing(path: &Path) -> io::Result<ResumeKey> {
    let text = fs::read_to_string(path)?;
    parse(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a resumption key"))
}

/// The key as one line of text, as its file holds it: what the relays of a
/// cluster agree on, so that each accepts the credentials of the others.
pub fn to_text(key: &ResumeKey) -> String {
    format!("{:08x} {}\n", key.epoch(), hex(key.secret()))
}

/// The key in `text` (`<epoch: 8 hex digits> <key: 64 hex digits>` on the
/// first line that is not a comment), or `None`.
pub fn parse(text: &str) -> Option<ResumeKey> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let (epoch, secret) = line.split_once(' ')?;
    let epoch = u32::from_str_radix(epoch, 16).ok()?;
    let secret = secret.trim();
    if secret.len() != 64 || !secret.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&secret[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(ResumeKey::from_parts(epoch, bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_reads_back_as_the_same_key() {
        let key = ResumeKey::generate().unwrap();
        let back = parse(&to_text(&key)).unwrap();
        assert_eq!((back.epoch(), back.secret()), (key.epoch(), key.secret()));
        assert!(parse("00000001 abc").is_none());
    }

    #[test]
    fn the_key_is_created_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let second = load_or_create(dir.path()).unwrap();
        assert_eq!(first.epoch(), second.epoch());
        assert_eq!(first.secret(), second.secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_file(key_path(dir.path())).unwrap();
        let third = load_or_create(dir.path()).unwrap();
        assert_ne!(
            first.secret(),
            third.secret(),
            "deleting it makes a new key"
        );
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(key_path(dir.path()), "# only a comment\n").unwrap();
        let error = load_or_create(dir.path()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains(RESUME_KEY_FILE), "{error}");
        assert_eq!(
            fs::read_to_string(key_path(dir.path())).unwrap(),
            "# only a comment\n"
        );
        assert!(parse("0000000g 00").is_none());
        assert!(parse(&format!("1 {}", "zz".repeat(32))).is_none());
        let key = parse(&format!("0000002a {}", "ab".repeat(32))).unwrap();
        assert_eq!((key.epoch(), key.secret()[0]), (42, 0xab));
    }
}
