//! Large synthetic directories for load tests (`pttd gen-directory`).
//!
//! Layout: terminals `1..=N`, the first `clamp(N / 250, 1, 5)` are dispatchers (members of
//! every group, may all-call). Group 1 "Load District" holds every terminal (the one-call,
//! hundred-answers case); groups `2..=M` share the other terminals round-robin. Secrets are
//! random alphanumeric strings from the seed and hashed with [`HashParams::LIGHT`], spread
//! over all cores, so 1,000 terminals take about a second.

use std::io::Write as _;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::password::{HashParams, hash_with_salt};
use super::{DirectoryError, GroupKind, Priority, Role};
use crate::load::schema::{FileDirectory, FileGroup, FileMember, FileTerminal, sp};

/// A generated directory and the secrets that log its terminals in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedDirectory {
    /// Directory TOML, loadable with [`super::Directory::from_toml_str`].
    pub toml: String,
    /// One `<terminal id> <secret>` per line after `#` comments; for the load client.
    pub secrets: String,
    /// Terminals generated.
    pub terminals: usize,
    /// Groups generated.
    pub groups: usize,
    /// How many of the terminals (ids `1..=dispatchers`) are dispatchers.
    pub dispatchers: u32,
}

/// A one-line summary for `pttd gen-directory` to print.
impl std::fmt::Display for GeneratedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "generated {} terminals (dispatchers 1..={}) in {} groups",
            self.terminals, self.dispatchers, self.groups
        )
    }
}

const ROLES: [Role; 3] = [Role::Guard, Role::Patrol, Role::Police];

/// Generates a directory of `terminals` terminals in `groups` groups; the same seed gives
/// the same output. Fails on zero terminals or groups, or more than `u32::MAX` of either.
pub fn generate(
    terminals: usize,
    groups: usize,
    seed: u64,
) -> Result<GeneratedDirectory, DirectoryError> {
    if terminals == 0 || groups == 0 {
        return Err(DirectoryError::Generate(
            "need at least one terminal and one group".to_owned(),
        ));
    }
    let too_many = || DirectoryError::Generate("at most u32::MAX terminals and groups".to_owned());
    let n = u32::try_from(terminals).map_err(|_| too_many())?;
    let m = u32::try_from(groups).map_err(|_| too_many())?;
    let dispatchers = (n / 250).clamp(1, 5).min(n);

    let mut rng = StdRng::seed_from_u64(seed);
    let mut secrets = Vec::with_capacity(terminals);
    for _ in 0..n {
        let secret: String = (0..20)
            .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
            .collect();
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        secrets.push((secret, salt));
    }
    let hashes = hash_all(&secrets)?;

    let mut file = FileDirectory::default();
    for (i, hash) in hashes.into_iter().enumerate() {
        let id = i as u32 + 1;
        let dispatcher = id <= dispatchers;
        let (role, max) = if dispatcher {
            (Role::Dispatcher, Priority::Dispatcher)
        } else {
            (ROLES[i % ROLES.len()], Priority::Normal)
        };
        file.terminals.push(FileTerminal {
            id: sp(id),
            name: sp(format!("Load terminal {id}")),
            role,
            organisation: "Load test".to_owned(),
            secret_hash: sp(hash),
            max_priority: max,
            emergency: true,
            on_duty: true,
        });
    }
    let member = |t: u32| FileMember {
        terminal: sp(t),
        listen: true,
        talk: true,
        max_priority: None,
    };
    for gid in 1..=m {
        let (name, kind) = if gid == 1 {
            ("Load District".to_owned(), GroupKind::District)
        } else {
            (format!("Load group {gid}"), GroupKind::Other)
        };
        let members: Vec<FileMember> = if gid == 1 {
            (1..=n).map(member).collect()
        } else {
            let others =
                (dispatchers + 1..=n).filter(|t| (t - dispatchers - 1) % (m - 1) == gid - 2);
            (1..=dispatchers).chain(others).map(member).collect()
        };
        let mut group = FileGroup::new(gid, name, kind, members);
        group.all_call = gid == 1;
        file.groups.push(group);
    }
    let mut toml = format!(
        "# Load-test directory from `pttd gen-directory --terminals {terminals} --groups {groups} --seed {seed}`\n\n"
    );
    toml.push_str(&toml::to_string(&file).map_err(|e| DirectoryError::Generate(e.to_string()))?);
    let mut text = String::from("# pttd gen-directory secrets: <terminal id> <secret>\n");
    for (i, (secret, _)) in secrets.iter().enumerate() {
        text.push_str(&format!("{} {secret}\n", i + 1));
    }
    Ok(GeneratedDirectory {
        toml,
        secrets: text,
        terminals,
        groups,
        dispatchers,
    })
}

/// Hashes every secret with light parameters, one chunk per core.
fn hash_all(secrets: &[(String, [u8; 16])]) -> Result<Vec<String>, DirectoryError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = secrets.len().div_ceil(cores).max(1);
    let results: Vec<Result<Vec<String>, _>> = std::thread::scope(|s| {
        let handles: Vec<_> = secrets
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(secret, salt)| {
                            hash_with_salt(secret.as_bytes(), HashParams::LIGHT, salt)
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(super::HashError::msg("hashing thread panicked")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(secrets.len());
    for r in results {
        out.extend(r.map_err(|e| DirectoryError::Generate(e.to_string()))?);
    }
    Ok(out)
}

/// Runs `pttd gen-directory`: generates a directory of `terminals` terminals in `groups`
/// groups from `seed` and writes both files, the directory to `out` and the secrets to
/// `secrets` (readable by the owner only), returning what was written.
pub fn write_generated(
    terminals: usize,
    groups: usize,
    seed: u64,
    out: &Path,
    secrets: &Path,
) -> Result<GeneratedDirectory, DirectoryError> {
    let generated = generate(terminals, groups, seed)?;
    write_file(out, &generated.toml, 0o644)?;
    write_file(secrets, &generated.secrets, 0o600)?;
    Ok(generated)
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), DirectoryError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let err = |source| DirectoryError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = options.open(path).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}
