//! Outbound HTTP, behind both of its interfaces: Tether's own
//! `outbound-http` and standard `wasi:http/outgoing-handler`. One client
//! ([`client::HttpClient`]) serves both, with the extension's grant of
//! origins, the network guard, the call's deadline and the body caps.

pub(crate) mod client;
pub(crate) mod network_guard;
pub(crate) mod wasi_http;

use super::{Setup, Unit};
use crate::runtime::host_api::HostState;
use crate::runtime::wit::latest::outbound_http::{Request, Response};
use crate::runtime::wit::latest::types::Error as WitError;
use client::{HttpClient, OutboundGrant};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Linker;

pub(crate) struct Outbound {
    grant: OutboundGrant,
    http: Arc<HttpClient>,
    deadline: Instant,
    pub(crate) wasi_ctx: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) wasi_hooks: wasi_http::Hooks,
}

impl Unit for Outbound {
    fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)
            .map_err(|e| anyhow::anyhow!("could not link wasi:http: {e}"))
    }

    fn prepare(setup: &mut Setup<'_>) -> anyhow::Result<Self> {
        let grant = setup.spec().outbound.clone();
        let http = setup.extension.http.clone();
        Ok(Self {
            wasi_ctx: wasmtime_wasi_http::WasiHttpCtx::new(),
            wasi_hooks: wasi_http::Hooks {
                grant: grant.clone(),
                http: http.clone(),
                deadline: setup.deadline,
            },
            grant,
            http,
            deadline: setup.deadline,
        })
    }

    fn begin_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.wasi_hooks.deadline = deadline;
    }
}

impl Outbound {
    pub(crate) fn send(&self, request: Request) -> Result<Response, WitError> {
        self.http.send(&self.grant, request, self.deadline)
    }
}
