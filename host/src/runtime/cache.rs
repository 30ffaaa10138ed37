//! The on-disk cache of compiled components.
//!
//! An artifact is keyed by the component's BLAKE3 digest and the engine's
//! fingerprint (wasmtime's version and every setting that affects code
//! generation). Deserializing an artifact is `unsafe` in wasmtime's sense:
//! it is native code. So only artifacts this host wrote are ever loaded:
//! beside each artifact we record its own BLAKE3 digest when we write it,
//! and we check it before deserializing. (BLAKE3 rather than SHA-256 here:
//! the check runs on every load, and at several GB/s it keeps a cached load
//! two orders of magnitude cheaper than a compile.) A stale, foreign, truncated or corrupt
//! artifact is recompiled and replaced, never loaded.
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
    memory: Mutex<HashMap<blake3::Hash, Component>>,
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

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<blake3::Hash, Component>> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is kept in memory or on disk for `digest`, compiling nothing.
    pub(crate) fn find(
        &self,
        engine: &Engine,
        digest: &blake3::Hash,
    ) -> Option<(Component, CacheOutcome)> {
        match self.lookup(engine, digest) {
            Found::Kept(component) => Some((component, CacheOutcome::Memory)),
            Found::Loaded(component) => Some((component, CacheOutcome::Loaded)),
            Found::Absent | Found::Refused => None,
        }
    }

    /// Loads the component from memory or disk, else compiles it (and keeps
    /// and stores what it compiled).
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        component: &[u8],
        digest: &blake3::Hash,
    ) -> Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            // No cache configured: compile every time (development runs,
            // the benchmark's baseline).
            self.compiled.fetch_add(1, Ordering::Relaxed);
            return Ok((compile(engine, component)?, CacheOutcome::Compiled));
        };
        let mut outcome = match self.lookup(engine, digest) {
            Found::Kept(component) => return Ok((component, CacheOutcome::Memory)),
            Found::Loaded(component) => return Ok((component, CacheOutcome::Loaded)),
            Found::Absent => CacheOutcome::CompiledAndStored,
            Found::Refused => CacheOutcome::Replaced,
        };
        let compiled = compile(engine, component)?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let (artifact, seal) = self.paths(dir, digest);
        if let Err(e) = store(&compiled, &artifact, &seal) {
            // A cache that cannot be written costs time, not correctness.
            tracing::warn!("could not cache the compiled component: {e:#}");
            outcome = CacheOutcome::Compiled;
        }
        self.keep(digest, &compiled);
        Ok((compiled, outcome))
    }

    /// Forgets `digest`'s artifact, in memory and on disk: its code has
    /// been superseded (a baseline artifact once the optimized one is in).
    pub(crate) fn discard(&self, digest: &blake3::Hash) {
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

    fn paths(&self, dir: &Path, digest: &blake3::Hash) -> (PathBuf, PathBuf) {
        let artifact = dir.join(format!("{}-{}.cwasm", digest.to_hex(), self.fingerprint));
        let seal = artifact.with_extension("cwasm.seal");
        (artifact, seal)
    }

    fn keep(&self, digest: &blake3::Hash, component: &Component) {
        let mut memory = self.memory();
        if memory.len() >= MEMORY_ENTRIES {
            memory.clear();
        }
        memory.insert(*digest, component.clone());
    }

    fn lookup(&self, engine: &Engine, digest: &blake3::Hash) -> Found {
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
    let expected = fs::read_to_string(seal)
        .with_context(|| format!("no seal {} recorded when it was written", seal.display()))?;
    let bytes =
        fs::read(artifact).with_context(|| format!("could not read {}", artifact.display()))?;
    let actual = blake3::hash(&bytes).to_hex();
    anyhow::ensure!(
        expected.trim() == actual.as_str(),
        "its digest does not match the one recorded when this host wrote it"
    );
    // SAFETY: the bytes are exactly those this host serialized (checked
    // above against the digest recorded at write time, in a directory only
    // the host's user can write), and wasmtime checks the engine
    // compatibility header itself.
    unsafe { Component::deserialize(engine, &bytes) }
        .map_err(|e| anyhow::anyhow!("wasmtime refused it: {e}"))
}

fn store(component: &Component, artifact: &Path, seal: &Path) -> Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| anyhow::anyhow!("could not serialize the component: {e}"))?;
    let digest = blake3::hash(&bytes).to_hex();
    // The artifact first, its seal second: a crash in between leaves an
    // artifact without a seal, which is never loaded.
    write_atomic(artifact, &bytes, Access::Private)?;
    write_atomic(seal, digest.as_bytes(), Access::Private)?;
    Ok(())
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
