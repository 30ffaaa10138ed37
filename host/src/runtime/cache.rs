//! The on-disk cache of compiled components.
//!
//! An artifact is keyed by the component's SHA-256 digest and the engine's
//! fingerprint (wasmtime's version and every setting that affects code
//! generation): the digest a signed manifest names, so the code of an
//! installed component is found without reading the component.
//! Deserializing an artifact is `unsafe` in wasmtime's sense: it is native
//! code. So only artifacts this host wrote are ever loaded: beside each we
//! record, when we write it, its own BLAKE3 digest and the file's identity
//! (inode, size, modification and change times). While that identity
//! holds, nothing has written the file since; once it changes (a write, a
//! copy, a restore), the digest must match before the artifact is loaded
//! (and it is resealed). A stale, foreign, truncated or corrupt artifact is
//! recompiled and replaced, never loaded. Only administrators may write
//! the cache, and an artifact or directory anyone else owns is never
//! loaded.
//!
//! A runtime also keeps what it compiled or loaded in memory, so that a
//! long-lived host (the service) reads each artifact once, not per call.

use crate::state::{Access, write_atomic};
use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled now; no cache is configured.
    Compiled,
    /// Compiled now and written to the cache.
    CompiledAndStored,
    /// Loaded from an artifact this host wrote.
    Loaded,
    /// An artifact was there but could not be trusted or used; compiled
    /// afresh and replaced.
    Replaced,
    /// Kept in memory since this runtime last compiled or loaded it.
    Memory,
}

/// Where compiled code is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// In memory and in the cache directory, for the next process.
    OnDisk,
    /// In memory only: code this process replaces soon.
    InMemory,
}

/// How a runtime's loads were served, for the service's status.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    pub compiled: u64,
    pub loaded_from_disk: u64,
    pub from_memory: u64,
    pub kept_in_memory: usize,
    /// Large components running baseline code until their optimized code
    /// is compiled (in the background).
    pub awaiting_optimized_code: usize,
}

/// Distinct components kept in memory at most: a host runs a handful of
/// extensions, and past this (many updates in one long run) the memory
/// starts over rather than grow.
const MEMORY_ENTRIES: usize = 64;

pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    fingerprint: String,
    memory: Mutex<HashMap<ComponentDigest, Component>>,
    compiled: AtomicU64,
    loaded: AtomicU64,
    from_memory: AtomicU64,
}

impl ArtifactCache {
    pub(crate) fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        Self {
            dir,
            fingerprint: fingerprint(engine),
            memory: Mutex::new(HashMap::new()),
            compiled: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
            from_memory: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded_from_disk: self.loaded.load(Ordering::Relaxed),
            from_memory: self.from_memory.load(Ordering::Relaxed),
            kept_in_memory: self.memory().len(),
            awaiting_optimized_code: 0,
        }
    }

    /// Drops what is kept in memory; the next load reads the disk.
    pub(crate) fn forget(&self) {
        self.memory().clear();
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<ComponentDigest, Component>> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is kept in memory or on disk for `digest`, compiling nothing;
    /// else why not, for [`Self::compile`].
    pub(crate) fn find(
        &self,
        engine: &Engine,
        digest: &ComponentDigest,
    ) -> Result<(Component, CacheOutcome), Missing> {
        match self.lookup(engine, digest) {
            Found::Kept(component) => Ok((component, CacheOutcome::Memory)),
            Found::Loaded(component) => Ok((component, CacheOutcome::Loaded)),
            Found::Absent => Err(Missing::Absent),
            Found::Refused => Err(Missing::Refused),
        }
    }

    /// Loads the component from memory or disk, else compiles it.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        component: &[u8],
        digest: &ComponentDigest,
        keep: Keep,
    ) -> Result<(Component, CacheOutcome)> {
        match self.find(engine, digest) {
            Ok(found) => Ok(found),
            Err(missing) => self.compile(engine, component, digest, keep, missing),
        }
    }

    /// Compiles what [`Self::find`] found `missing`, and keeps it (and
    /// stores it, or replaces the refused artifact, if `keep` says so).
    pub(crate) fn compile(
        &self,
        engine: &Engine,
        component: &[u8],
        digest: &ComponentDigest,
        keep: Keep,
        missing: Missing,
    ) -> Result<(Component, CacheOutcome)> {
        let compiled = compile(engine, component)?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let Some(dir) = &self.dir else {
            // No cache configured: compile every time (development runs,
            // the benchmark's baseline).
            return Ok((compiled, CacheOutcome::Compiled));
        };
        let mut outcome = match missing {
            Missing::Absent => CacheOutcome::CompiledAndStored,
            Missing::Refused => CacheOutcome::Replaced,
        };
        let (artifact, seal) = self.paths(dir, digest);
        if keep == Keep::InMemory {
            outcome = CacheOutcome::Compiled;
        } else if let Err(e) = store(&compiled, &artifact, &seal) {
            // A cache that cannot be written costs time, not correctness.
            tracing::warn!("could not cache the compiled component: {e:#}");
            outcome = CacheOutcome::Compiled;
        }
        self.keep(digest, &compiled);
        Ok((compiled, outcome))
    }

    /// Forgets `digest`'s artifact, in memory and on disk: its code has
    /// been superseded (a baseline artifact once the optimized one is in).
    pub(crate) fn discard(&self, digest: &ComponentDigest) {
        self.memory().remove(digest);
        let Some(dir) = &self.dir else { return };
        let (artifact, seal) = self.paths(dir, digest);
        for path in [seal, artifact] {
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("could not remove {}: {e}", path.display());
            }
        }
    }

    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn paths(&self, dir: &Path, digest: &ComponentDigest) -> (PathBuf, PathBuf) {
        let artifact = dir.join(format!("{}-{}.cwasm", digest.to_hex(), self.fingerprint));
        let seal = artifact.with_extension("cwasm.seal");
        (artifact, seal)
    }

    fn keep(&self, digest: &ComponentDigest, component: &Component) {
        let mut memory = self.memory();
        if memory.len() >= MEMORY_ENTRIES {
            memory.clear();
        }
        memory.insert(*digest, component.clone());
    }

    fn lookup(&self, engine: &Engine, digest: &ComponentDigest) -> Found {
        let Some(dir) = &self.dir else {
            return Found::Absent;
        };
        if let Some(kept) = self.memory().get(digest) {
            self.from_memory.fetch_add(1, Ordering::Relaxed);
            return Found::Kept(kept.clone());
        }
        let (artifact, seal) = self.paths(dir, digest);
        if !artifact.exists() {
            return Found::Absent;
        }
        match load_trusted(engine, &artifact, &seal) {
            Ok(component) => {
                self.loaded.fetch_add(1, Ordering::Relaxed);
                self.keep(digest, &component);
                Found::Loaded(component)
            }
            Err(reason) => {
                tracing::warn!(
                    artifact = %artifact.display(),
                    "ignoring cached component and recompiling: {reason:#}"
                );
                Found::Refused
            }
        }
    }
}

/// Why [`ArtifactCache::find`] has no code for a digest.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Missing {
    Absent,
    /// An artifact is there but cannot be trusted or used.
    Refused,
}

/// What the cache holds for a digest.
enum Found {
    /// In memory since this runtime last compiled or loaded it.
    Kept(Component),
    /// Loaded from an artifact this host wrote.
    Loaded(Component),
    Absent,
    /// An artifact is there but cannot be trusted or used.
    Refused,
}

fn compile(engine: &Engine, component: &[u8]) -> Result<Component> {
    Component::new(engine, component).map_err(|e| {
        anyhow::anyhow!("the file is not a valid WebAssembly component for this host: {e}")
    })
}

fn load_trusted(engine: &Engine, artifact: &Path, seal: &Path) -> Result<Component> {
    // A seal proves only that the artifact was not changed after it was
    // written; who wrote it is the owner's to say. Someone else's files in
    // the cache (a pre-created directory) are never loaded as native code.
    for path in [Some(artifact), artifact.parent()].into_iter().flatten() {
        anyhow::ensure!(
            crate::platform::owned_by_admin(path).unwrap_or(false),
            "{} is not owned by this host's administrators",
            path.display()
        );
    }
    let recorded = fs::read_to_string(seal)
        .with_context(|| format!("no seal {} recorded when it was written", seal.display()))?;
    let recorded = Seal::parse(&recorded);
    let now = identity(artifact)?;
    if recorded.identity.as_deref() != Some(now.as_str()) {
        // Written (or copied, or touched) since it was sealed: its bytes
        // must still be what was sealed, then it is sealed as it is now.
        let bytes =
            fs::read(artifact).with_context(|| format!("could not read {}", artifact.display()))?;
        anyhow::ensure!(
            recorded.digest == blake3::hash(&bytes).to_hex().as_str(),
            "its digest does not match the one recorded when this host wrote it"
        );
        let resealed = Seal {
            digest: recorded.digest.clone(),
            identity: Some(identity(artifact)?),
        };
        if let Err(e) = write_atomic(seal, resealed.render().as_bytes(), Access::Private) {
            tracing::debug!("could not reseal {}: {e:#}", artifact.display());
        }
    }
    deserialize(engine, artifact)
}

#[cfg(unix)]
fn deserialize(engine: &Engine, artifact: &Path) -> Result<Component> {
    // SAFETY: the file is the one this host serialized: it is unchanged
    // since it was sealed (its identity, or else its digest, checked
    // above), in a directory only administrators may write, and wasmtime
    // checks the engine compatibility header itself. Mapped rather than
    // read: the code and the memory images are used in place, which makes
    // a large component's load a few milliseconds instead of tens. Files
    // here are only ever replaced by rename, never rewritten in place, so
    // the mapping stays what was checked.
    unsafe { Component::deserialize_file(engine, artifact) }
        .map_err(|e| anyhow::anyhow!("wasmtime refused it: {e}"))
}

#[cfg(not(unix))]
fn deserialize(engine: &Engine, artifact: &Path) -> Result<Component> {
    // Read, not mapped: Windows cannot replace or remove a mapped file,
    // and the cache replaces and removes artifacts while the host runs.
    let bytes =
        fs::read(artifact).with_context(|| format!("could not read {}", artifact.display()))?;
    // SAFETY: as above: this host's own artifact, unchanged since sealed.
    unsafe { Component::deserialize(engine, &bytes) }
        .map_err(|e| anyhow::anyhow!("wasmtime refused it: {e}"))
}

/// What is recorded beside an artifact: its BLAKE3 digest, and the file's
/// identity when it was sealed (inode, size, modification and change
/// times). While the identity is unchanged nothing has written the file
/// since, so a load needs no digest of tens of megabytes; any write, copy
/// or restore changes it, and the digest decides.
struct Seal {
    digest: String,
    identity: Option<String>,
}

impl Seal {
    fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        Self {
            digest: lines.next().unwrap_or_default().trim().to_string(),
            identity: lines.next().map(|l| l.trim().to_string()),
        }
    }

    fn render(&self) -> String {
        match &self.identity {
            Some(identity) => format!("{}\n{identity}\n", self.digest),
            None => format!("{}\n", self.digest),
        }
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).with_context(|| format!("could not stat {}", path.display()))?;
    Ok(format!(
        "{}:{} {} {}.{} {}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Result<String> {
    use std::os::windows::fs::MetadataExt;
    let m = fs::metadata(path).with_context(|| format!("could not stat {}", path.display()))?;
    Ok(format!(
        "{} {} {}",
        m.file_size(),
        m.creation_time(),
        m.last_write_time()
    ))
}

fn store(component: &Component, artifact: &Path, seal: &Path) -> Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| anyhow::anyhow!("could not serialize the component: {e}"))?;
    let digest = blake3::hash(&bytes).to_hex().to_string();
    // The artifact first, its seal second: a crash in between leaves an
    // artifact without a seal, which is never loaded.
    write_atomic(artifact, &bytes, Access::Private)?;
    let seal_text = Seal {
        digest,
        identity: Some(identity(artifact)?),
    };
    write_atomic(seal, seal_text.render().as_bytes(), Access::Private)?;
    Ok(())
}

/// A component's SHA-256: what its artifacts are keyed by. The same
/// digest a signed manifest names, so a host can find the code of an
/// installed component without reading the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ComponentDigest([u8; 32]);

impl ComponentDigest {
    pub fn of(component: &[u8]) -> Self {
        Self(Sha256::digest(component).into())
    }

    /// From a manifest's hex digest.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// A short, stable name for everything about the engine that decides
/// whether an artifact compiled by it may be loaded by it.
fn fingerprint(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha(Sha256::new());
    crate::version::WASMTIME_VERSION.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}
