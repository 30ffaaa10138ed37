//! Reading and writing the tar file.

use crate::manifest::Manifest;
use crate::signature::Signature;
use crate::{MANIFEST, PackageError, SIGNATURE};
use ed25519_dalek::VerifyingKey;
use sha2::Digest;
use std::io::Read;

/// Caps applied while reading, before anything is trusted.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub package_bytes: u64,
    pub manifest_bytes: u64,
    pub component_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            package_bytes: 64 << 20,
            manifest_bytes: 64 << 10,
            component_bytes: 64 << 20,
        }
    }
}

/// A well-formed package, not yet verified.
#[derive(Debug, Clone)]
pub struct Package {
    /// The manifest's exact bytes (what the signature covers).
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub component: Vec<u8>,
    pub signature: Option<Signature>,
}

fn malformed(m: impl Into<String>) -> PackageError {
    PackageError::Malformed(m.into())
}

/// 1 to 128 letters, digits, '.', '-', '_', not starting with '.'.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Reads a package, checking that it is well formed: size caps, regular
/// files with plain names only, no duplicates, exactly a manifest, one
/// component (the one it names) and at most one signature.
pub fn read(bytes: &[u8], limits: ReadLimits) -> Result<Package, PackageError> {
    if bytes.len() as u64 > limits.package_bytes {
        return Err(malformed(format!(
            "it is {} bytes, more than the {} a package may be",
            bytes.len(),
            limits.package_bytes
        )));
    }
    // A file that is not a tar archive at all (`/etc/passwd`, say) would
    // have its first line read as an entry's name: refuse it before that,
    // so that no error ever quotes a file's content.
    if bytes.len() < 512 || &bytes[257..262] != b"ustar" {
        return Err(malformed(
            "it is not a Tether package (no tar header); build one with `tether-ext pack`",
        ));
    }
    let mut archive = tar::Archive::new(bytes);
    let mut manifest_bytes = None;
    let mut signature_bytes = None;
    let mut component: Option<(String, Vec<u8>)> = None;
    let mut seen = std::collections::BTreeSet::new();
    let entries = archive
        .entries()
        .map_err(|e| malformed(format!("not a tar file: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| malformed(format!("a damaged entry: {e}")))?;
        let header = entry.header();
        let kind = header.entry_type();
        let path = entry.path_bytes().into_owned();
        let name =
            String::from_utf8(path).map_err(|_| malformed("an entry's name is not UTF-8"))?;
        // Checked before the name is ever quoted.
        if !plain_name(&name) {
            return Err(malformed(
                "an entry's name is not a plain file name (paths, dots and other characters are refused)",
            ));
        }
        if !kind.is_file() {
            return Err(malformed(format!(
                "`{name}` is not a regular file (links and directories are refused)"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(malformed(format!("`{name}` appears twice")));
        }
        let size = entry.size();
        let cap = match name.as_str() {
            MANIFEST | SIGNATURE => limits.manifest_bytes,
            _ => limits.component_bytes,
        };
        if size > cap {
            return Err(malformed(format!(
                "`{name}` is {size} bytes, more than the {cap} allowed"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        entry
            .by_ref()
            .take(cap + 1)
            .read_to_end(&mut data)
            .map_err(|e| malformed(format!("`{name}` could not be read: {e}")))?;
        match name.as_str() {
            MANIFEST => manifest_bytes = Some(data),
            SIGNATURE => signature_bytes = Some(data),
            _ if component.is_some() => {
                return Err(malformed(format!("`{name}` is an unexpected extra file")));
            }
            _ => component = Some((name, data)),
        }
    }
    // Whatever follows the end-of-archive blocks is outside what was
    // checked; only zero padding may.
    if archive.into_inner().iter().any(|&b| b != 0) {
        return Err(malformed(
            "bytes follow the end of the archive; a package is the archive alone",
        ));
    }
    let manifest_bytes =
        manifest_bytes.ok_or_else(|| malformed(format!("it has no {MANIFEST}")))?;
    let manifest = Manifest::parse(&manifest_bytes)?;
    let (file, component) = component.ok_or_else(|| malformed("it has no component"))?;
    if file != manifest.component.file {
        return Err(malformed(format!(
            "it holds `{file}` but the manifest names `{}`",
            manifest.component.file
        )));
    }
    let signature = signature_bytes.map(|b| Signature::parse(&b)).transpose()?;
    Ok(Package {
        manifest_bytes,
        manifest,
        component,
        signature,
    })
}

/// The signature's key id if it verifies against a key trusted for the
/// manifest's publisher.
fn verify(
    manifest: &Manifest,
    manifest_bytes: &[u8],
    signature: Option<&Signature>,
    trusted: &[VerifyingKey],
) -> Result<String, PackageError> {
    let signature = signature.ok_or(PackageError::Unsigned)?;
    let key = trusted
        .iter()
        .find(|k| crate::key_id(k) == signature.key_id)
        .ok_or_else(|| PackageError::UntrustedKey {
            key_id: signature.key_id.clone(),
            publisher: manifest.publisher.clone(),
        })?;
    signature.verify(manifest_bytes, key)?;
    Ok(signature.key_id.clone())
}

/// A package's manifest and signature, read without its component.
#[derive(Debug, Clone)]
pub struct Head {
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub signature: Signature,
}

impl Head {
    /// As [`Package::verify_signature`].
    pub fn verify_signature(&self, trusted: &[VerifyingKey]) -> Result<String, PackageError> {
        verify(
            &self.manifest,
            &self.manifest_bytes,
            Some(&self.signature),
            trusted,
        )
    }
}

/// Reads only the manifest and the signature of a package that holds them
/// first, as [`build`] writes them, with the checks [`read`] makes of
/// them; `None` when it does not begin so (an unsigned package, or one
/// built with the signature last): read it whole. What follows them is
/// not read, so this proves nothing of the component: it serves a host
/// that already holds the code compiled from the component the signed
/// manifest names by digest, and has no use for its bytes.
pub fn read_head(reader: impl Read, limits: ReadLimits) -> Result<Option<Head>, PackageError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| malformed(format!("not a tar file: {e}")))?;
    let mut found = Vec::new();
    for (entry, expected) in entries.zip([MANIFEST, SIGNATURE]) {
        let entry = entry.map_err(|e| malformed(format!("a damaged entry: {e}")))?;
        if entry.path_bytes().as_ref() != expected.as_bytes()
            || !entry.header().entry_type().is_file()
        {
            return Ok(None);
        }
        let size = entry.size();
        if size > limits.manifest_bytes {
            return Err(malformed(format!(
                "`{expected}` is {size} bytes, more than the {} allowed",
                limits.manifest_bytes
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        entry
            .take(limits.manifest_bytes + 1)
            .read_to_end(&mut data)
            .map_err(|e| malformed(format!("`{expected}` could not be read: {e}")))?;
        if data.len() as u64 != size {
            return Err(malformed(format!("`{expected}` is cut short")));
        }
        found.push(data);
    }
    let [manifest_bytes, signature]: [Vec<u8>; 2] = match found.try_into() {
        Ok(both) => both,
        Err(_) => return Ok(None),
    };
    Ok(Some(Head {
        manifest: Manifest::parse(&manifest_bytes)?,
        manifest_bytes,
        signature: Signature::parse(&signature)?,
    }))
}

impl Package {
    /// Checks the signature against the keys trusted for the manifest's
    /// publisher; returns the key id that signed it.
    pub fn verify_signature(&self, trusted: &[VerifyingKey]) -> Result<String, PackageError> {
        verify(
            &self.manifest,
            &self.manifest_bytes,
            self.signature.as_ref(),
            trusted,
        )
    }

    /// Checks the component's size and SHA-256 against the manifest.
    pub fn check_component(&self) -> Result<(), PackageError> {
        let expected = &self.manifest.component;
        if self.component.len() as u64 != expected.size {
            return Err(PackageError::Digest(format!(
                "it is {} bytes; the manifest says {}",
                self.component.len(),
                expected.size
            )));
        }
        let actual = hex::encode(sha2::Sha256::digest(&self.component));
        if !actual.eq_ignore_ascii_case(&expected.sha256) {
            return Err(PackageError::Digest(format!(
                "its SHA-256 is {actual}; the manifest says {}",
                expected.sha256
            )));
        }
        Ok(())
    }
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    data: &[u8],
) -> Result<(), PackageError> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, name, data)
        .map_err(|e| malformed(format!("could not write `{name}`: {e}")))
}

/// Writes a package: the manifest's exact bytes, the component, and the
/// signature when there is one. Deterministic: same input, same bytes.
pub fn build(
    manifest_bytes: &[u8],
    component: &[u8],
    signature: Option<&Signature>,
) -> Result<Vec<u8>, PackageError> {
    let manifest = Manifest::parse(manifest_bytes)?;
    let mut builder = tar::Builder::new(Vec::new());
    // The manifest and the signature first: a host that holds the compiled
    // code reads only them (`read_head`).
    append(&mut builder, crate::MANIFEST, manifest_bytes)?;
    if let Some(signature) = signature {
        append(
            &mut builder,
            crate::SIGNATURE,
            signature.to_toml().as_bytes(),
        )?;
    }
    append(&mut builder, &manifest.component.file, component)?;
    builder.into_inner().map_err(|e| malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{key_id, sign};
    use ed25519_dalek::SigningKey;

    fn manifest_for(component: &[u8]) -> Vec<u8> {
        format!(
            "publisher = \"Contoso\"\nname = \"Inv\"\nversion = \"1.0.0\"\ncontract = \"0.1.0\"\ncategory = \"monitoring\"\n\n[component]\nfile = \"component.wasm\"\nsha256 = \"{}\"\nsize = {}\n",
            hex::encode(sha2::Sha256::digest(component)),
            component.len()
        )
        .into_bytes()
    }

    fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            // `set_path` refuses "..", which is what a hostile packer writes.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            b.append(&h, *data).unwrap_or_else(|e| panic!("tar: {e}"));
        }
        b.into_inner().unwrap_or_default()
    }

    #[test]
    fn the_head_is_read_without_the_component_and_verified_alike() -> Result<(), PackageError> {
        let key = SigningKey::from_bytes(&[1; 32]);
        let component = b"\0asm fake component".to_vec();
        let manifest = manifest_for(&component);
        let signature = sign(&manifest, &key);
        let bytes = build(&manifest, &component, Some(&signature))?;
        // Cut before the component ends: the head does not need it.
        let head = read_head(&bytes[..2048], ReadLimits::default())?
            .ok_or_else(|| malformed("no head"))?;
        assert_eq!(head.manifest_bytes, manifest);
        assert!(head.verify_signature(&[key.verifying_key()]).is_ok());
        let other = SigningKey::from_bytes(&[2; 32]);
        assert!(head.verify_signature(&[other.verifying_key()]).is_err());
        // Unsigned, or the signature after the component: read it whole.
        let unsigned = build(&manifest, &component, None)?;
        assert!(read_head(unsigned.as_slice(), ReadLimits::default())?.is_none());
        let last = raw_tar(&[
            (MANIFEST, tar::EntryType::Regular, &manifest),
            ("component.wasm", tar::EntryType::Regular, &component),
            (
                SIGNATURE,
                tar::EntryType::Regular,
                signature.to_toml().as_bytes(),
            ),
        ]);
        assert!(read_head(last.as_slice(), ReadLimits::default())?.is_none());
        // A link where the manifest should be is never followed.
        let link = raw_tar(&[(MANIFEST, tar::EntryType::Symlink, b"")]);
        assert!(read_head(link.as_slice(), ReadLimits::default())?.is_none());
        // A signature cut short is an error, not a shorter signature.
        assert!(read_head(&bytes[..1600], ReadLimits::default()).is_err());
        Ok(())
    }

    #[test]
    fn signed_packages_round_trip_and_every_tampering_is_caught() -> Result<(), PackageError> {
        let key = SigningKey::from_bytes(&[1; 32]);
        let component = b"\0asm fake component".to_vec();
        let manifest = manifest_for(&component);
        let signature = sign(&manifest, &key);
        assert_eq!(signature.key_id, key_id(&key.verifying_key()));
        let bytes = build(&manifest, &component, Some(&signature))?;
        let package = read(&bytes, ReadLimits::default())?;
        assert_eq!(
            package.verify_signature(&[key.verifying_key()])?,
            signature.key_id
        );
        package.check_component()?;
        assert_eq!(package.manifest.id(), "Contoso/Inv");

        let other = SigningKey::from_bytes(&[2; 32]);
        assert!(matches!(
            package.verify_signature(&[other.verifying_key()]),
            Err(PackageError::UntrustedKey { .. })
        ));
        // A changed manifest no longer verifies.
        let mut changed = package.clone();
        changed.manifest_bytes.extend_from_slice(b"\n# edited\n");
        assert!(matches!(
            changed.verify_signature(&[key.verifying_key()]),
            Err(PackageError::BadSignature(_))
        ));
        // A swapped component fails the digest.
        let mut swapped = package.clone();
        swapped.component[0] ^= 1;
        assert!(matches!(
            swapped.check_component(),
            Err(PackageError::Digest(_))
        ));
        let unsigned = read(&build(&manifest, &component, None)?, ReadLimits::default())?;
        assert_eq!(
            unsigned.verify_signature(&[key.verifying_key()]),
            Err(PackageError::Unsigned)
        );
        // Deterministic.
        assert_eq!(build(&manifest, &component, Some(&signature))?, bytes);
        Ok(())
    }

    #[test]
    fn bytes_after_the_archive_and_files_that_are_no_archive_are_refused_unquoted()
    -> Result<(), PackageError> {
        let component = b"\0asm fake component".to_vec();
        let manifest = manifest_for(&component);
        let mut bytes = build(&manifest, &component, None)?;
        // Zero padding after the end is what tar writers add: accepted.
        bytes.extend_from_slice(&[0; 1024]);
        read(&bytes, ReadLimits::default())?;
        bytes.extend_from_slice(b"smuggled");
        let err = read(&bytes, ReadLimits::default()).expect_err("trailing bytes");
        assert!(err.to_string().contains("bytes follow the end"), "{err}");

        let passwd = "root:x:0:0:root-secret-line:/root:/bin/bash\n".repeat(40);
        let err = read(passwd.as_bytes(), ReadLimits::default()).expect_err("not a package");
        assert!(!err.to_string().contains("root"), "{err}");
        assert!(err.to_string().contains("not a Tether package"), "{err}");
        Ok(())
    }

    #[test]
    fn malformed_packages_are_refused_with_the_reason() {
        let component = b"c".to_vec();
        let manifest = manifest_for(&component);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                raw_tar(&[
                    ("extension.toml", tar::EntryType::Regular, &manifest),
                    ("../component.wasm", tar::EntryType::Regular, &component),
                ]),
                "not a plain file name",
            ),
            (
                raw_tar(&[
                    ("extension.toml", tar::EntryType::Regular, &manifest),
                    ("component.wasm", tar::EntryType::Symlink, b""),
                ]),
                "not a regular file",
            ),
            (
                raw_tar(&[
                    ("extension.toml", tar::EntryType::Regular, &manifest),
                    ("component.wasm", tar::EntryType::Regular, &component),
                    ("component.wasm", tar::EntryType::Regular, &component),
                ]),
                "appears twice",
            ),
            (
                raw_tar(&[("component.wasm", tar::EntryType::Regular, &component)]),
                "no extension.toml",
            ),
            (
                raw_tar(&[
                    ("extension.toml", tar::EntryType::Regular, &manifest),
                    ("other.wasm", tar::EntryType::Regular, &component),
                ]),
                "manifest names",
            ),
            (b"not a tar".to_vec(), "malformed"),
        ];
        for (bytes, why) in cases {
            let err = read(&bytes, ReadLimits::default())
                .expect_err(why)
                .to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
        let big = raw_tar(&[
            ("extension.toml", tar::EntryType::Regular, &manifest),
            ("component.wasm", tar::EntryType::Regular, &[0u8; 2048]),
        ]);
        let err = read(
            &big,
            ReadLimits {
                component_bytes: 1024,
                ..Default::default()
            },
        )
        .expect_err("oversize")
        .to_string();
        assert!(err.contains("more than the 1024 allowed"), "{err}");
        let err = read(
            &big,
            ReadLimits {
                package_bytes: 100,
                ..Default::default()
            },
        )
        .expect_err("oversize")
        .to_string();
        assert!(err.contains("more than the 100 a package may be"), "{err}");
    }

    #[test]
    fn manifests_are_strict() {
        let good = String::from_utf8(manifest_for(b"x")).unwrap_or_default();
        assert!(Manifest::parse(good.as_bytes()).is_ok());
        for (bad, why) in [
            (format!("{good}typo = 1\n"), "unknown field"),
            (good.replace("1.0.0", "one"), "version"),
            (good.replace("\"Contoso\"", "\"Con/toso\""), "publisher"),
            (format!("{good}\n[limits]\nmemory_mib = 0\n"), "memory_mib"),
        ] {
            let err = Manifest::parse(bad.as_bytes()).expect_err(why).to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
