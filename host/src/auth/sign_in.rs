//! Which sign-in method the flags ask for.

use anyhow::{Result, bail};
use serde::Deserialize;
use std::path::PathBuf;

/// The sign-in flags every command that talks to ARM takes.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct SignInFlags {
    /// The tenant to sign in to.
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// A service principal's application (client) id.
    #[arg(long)]
    pub service_principal_id: Option<String>,
    /// The service principal's secret (prefer --config, to keep it off the command line).
    #[arg(long)]
    pub service_principal_secret: Option<String>,
    /// The service principal's RSA certificate with its private key: a PEM
    /// file (PKCS#8 or PKCS#1 key) or a PFX/PKCS#12 file.
    #[arg(long)]
    pub service_principal_cert: Option<PathBuf>,
    /// A file holding the PFX file's password (or set
    /// TETHER_SERVICE_PRINCIPAL_CERT_PASSWORD); never the password itself.
    #[arg(long)]
    pub service_principal_cert_password_file: Option<PathBuf>,
    /// An ARM access token obtained elsewhere.
    #[arg(long)]
    pub access_token: Option<String>,
    /// Sign in with a code entered on another device.
    #[arg(long)]
    pub use_device_code: bool,
    /// Fail rather than prompt (browser or device code) when no sign-in is
    /// given and there is no `tether login` session: for scripts, and for
    /// package removal, which nobody watches.
    #[arg(long)]
    pub no_prompt: bool,
}

impl SignInFlags {
    /// Fills what is missing here from `other` (the --config file): the
    /// command line wins.
    pub fn merge(&mut self, other: SignInFlags) {
        self.tenant_id = self.tenant_id.take().or(other.tenant_id);
        self.service_principal_id = self
            .service_principal_id
            .take()
            .or(other.service_principal_id);
        self.service_principal_secret = self
            .service_principal_secret
            .take()
            .or(other.service_principal_secret);
        self.service_principal_cert = self
            .service_principal_cert
            .take()
            .or(other.service_principal_cert);
        self.service_principal_cert_password_file = self
            .service_principal_cert_password_file
            .take()
            .or(other.service_principal_cert_password_file);
        self.access_token = self.access_token.take().or(other.access_token);
        self.use_device_code |= other.use_device_code;
        self.no_prompt |= other.no_prompt;
    }

    pub fn is_empty(&self) -> bool {
        self.service_principal_id.is_none()
            && self.access_token.is_none()
            && !self.use_device_code
            && self.service_principal_secret.is_none()
            && self.service_principal_cert.is_none()
    }
}

/// A sign-in method, with what it needs.
#[derive(Clone)]
pub enum SignIn {
    Secret {
        tenant: String,
        client_id: String,
        secret: String,
    },
    Certificate {
        tenant: String,
        client_id: String,
        pem: PathBuf,
        password_file: Option<PathBuf>,
    },
    AccessToken(String),
    DeviceCode {
        tenant: String,
    },
    Browser {
        tenant: String,
    },
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret or a token, even in debug output.
        f.write_str(self.kind())
    }
}

impl SignIn {
    pub fn kind(&self) -> &'static str {
        match self {
            SignIn::Secret { .. } => "service principal (secret)",
            SignIn::Certificate { .. } => "service principal (certificate)",
            SignIn::AccessToken(_) => "access token",
            SignIn::DeviceCode { .. } => "device code",
            SignIn::Browser { .. } => "browser",
        }
    }

    /// The method the flags ask for. Without any, the browser on a desktop
    /// session and the device code otherwise.
    pub fn from_flags(flags: &SignInFlags) -> Result<Self> {
        if let Some(token) = &flags.access_token {
            return Ok(SignIn::AccessToken(token.clone()));
        }
        let tenant = || match &flags.tenant_id {
            Some(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
            _ => bail!("--tenant-id is required with this sign-in method"),
        };
        if let Some(client_id) = &flags.service_principal_id {
            return match (
                &flags.service_principal_secret,
                &flags.service_principal_cert,
            ) {
                (Some(secret), None) => Ok(SignIn::Secret {
                    tenant: tenant()?,
                    client_id: client_id.clone(),
                    secret: secret.clone(),
                }),
                (None, Some(pem)) => Ok(SignIn::Certificate {
                    tenant: tenant()?,
                    client_id: client_id.clone(),
                    pem: pem.clone(),
                    password_file: flags.service_principal_cert_password_file.clone(),
                }),
                (Some(_), Some(_)) => bail!(
                    "give either --service-principal-secret or --service-principal-cert, not both"
                ),
                (None, None) => bail!(
                    "--service-principal-id needs --service-principal-secret or --service-principal-cert"
                ),
            };
        }
        if flags.service_principal_secret.is_some() || flags.service_principal_cert.is_some() {
            bail!(
                "--service-principal-secret and --service-principal-cert need --service-principal-id"
            );
        }
        if flags.no_prompt {
            bail!(
                "no sign-in was given, there is no `tether login` session, and --no-prompt forbids prompting: give --service-principal-id with a secret or certificate, or --access-token, or run `tether login` first"
            );
        }
        if flags.use_device_code || !desktop_session() {
            return Ok(SignIn::DeviceCode {
                tenant: flags
                    .tenant_id
                    .clone()
                    .unwrap_or_else(|| "organizations".into()),
            });
        }
        Ok(SignIn::Browser {
            tenant: flags
                .tenant_id
                .clone()
                .unwrap_or_else(|| "organizations".into()),
        })
    }
}

fn desktop_session() -> bool {
    if cfg!(windows) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}
