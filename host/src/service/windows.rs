//! The Windows Service Control Manager: registration (`service install`)
//! and the dispatcher that runs the service when the SCM starts it.

#[cfg(windows)]
pub use imp::{install, run_dispatcher, status, uninstall};

#[cfg(not(windows))]
pub fn run_dispatcher(
    _state: crate::state::StateRoot,
    _options: super::ServiceOptions,
) -> anyhow::Result<()> {
    anyhow::bail!("--windows-service is for the Windows Service Control Manager only")
}

#[cfg(windows)]
mod imp {
    use super::super::unit::{Registration, SERVICE_NAME};
    use super::super::{ServiceOptions, daemon};
    use crate::state::StateRoot;
    use anyhow::{Context, Result};
    use std::ffi::OsString;
    use std::path::Path;
    use std::sync::OnceLock;
    use std::time::Duration;
    use windows_service::service::{
        ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    use windows_service::{define_windows_service, service_dispatcher};

    static START: OnceLock<(StateRoot, ServiceOptions)> = OnceLock::new();

    define_windows_service!(ffi_service_main, service_main);

    /// Hands this process to the SCM, which calls back into `service_main`.
    pub fn run_dispatcher(state: StateRoot, options: ServiceOptions) -> Result<()> {
        let _ = START.set((state, options));
        service_dispatcher::start(SERVICE_NAME, ffi_service_main)
            .context("could not reach the Service Control Manager (run `tether service run` without --windows-service to run in a console)")
    }

    fn service_main(_arguments: Vec<OsString>) {
        let Some((state, options)) = START.get().cloned() else {
            return;
        };
        let handler = service_control_handler::register(SERVICE_NAME, |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                daemon::request_stop();
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        });
        let Ok(handle) = handler else {
            return;
        };
        let report = |state: ServiceState, code: u32| {
            let _ = handle.set_service_status(ServiceStatus {
                service_type: ServiceType::OWN_PROCESS,
                current_state: state,
                controls_accepted: if state == ServiceState::Running {
                    ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
                } else {
                    ServiceControlAccept::empty()
                },
                exit_code: ServiceExitCode::Win32(code),
                checkpoint: 0,
                wait_hint: Duration::from_secs(10),
                process_id: None,
            });
        };
        report(ServiceState::Running, 0);
        let result = daemon::run(state, options);
        if let Err(e) = &result {
            tracing::error!("the service failed: {e:#}");
        }
        report(ServiceState::Stopped, u32::from(result.is_err()));
    }

    pub fn install(
        _dir: &Path,
        exe: &Path,
        _state: &StateRoot,
        start: bool,
    ) -> Result<Registration> {
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )
        .context("could not open the Service Control Manager")?;
        let info = ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: "Tether agent".into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: exe.to_path_buf(),
            launch_arguments: vec!["service".into(), "run".into(), "--windows-service".into()],
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        let service = manager
            .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
            .context("could not register the service (is it installed already?)")?;
        let _ = service
            .set_description("Connects this machine to its control plane and hosts its extensions");
        // Services and sessions started from now on (the SCM's own after a
        // restart) find the identity endpoint, as azcmagent's install does.
        for (name, value) in crate::service::unit::identity_environment() {
            crate::platform::set_machine_environment(name, Some(&value))
                .with_context(|| format!("could not set {name} for the machine"))?;
        }
        if start {
            start_when_unlocked(&service).context("the service is registered but did not start")?;
        }
        Ok(status(_dir))
    }

    /// Starts the service; while the SCM's database is locked (it is, for
    /// a moment, while the SCM itself starts or another installer runs),
    /// tries again for a few seconds.
    fn start_when_unlocked(
        service: &windows_service::service::Service,
    ) -> windows_service::Result<()> {
        const ERROR_SERVICE_DATABASE_LOCKED: i32 = 1055;
        let mut attempts = 0;
        loop {
            match service.start::<&str>(&[]) {
                Err(windows_service::Error::Winapi(e))
                    if e.raw_os_error() == Some(ERROR_SERVICE_DATABASE_LOCKED) && attempts < 20 =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    pub fn uninstall(dir: &Path) -> Result<Registration> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .context("could not open the Service Control Manager")?;
        let service = manager
            .open_service(
                SERVICE_NAME,
                ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
            )
            .context("the service is not installed")?;
        if let Ok(status) = service.query_status()
            && status.current_state != ServiceState::Stopped
        {
            let _ = service.stop();
        }
        service.delete().context("could not delete the service")?;
        for (name, _) in crate::service::unit::identity_environment() {
            crate::platform::set_machine_environment(name, None)
                .with_context(|| format!("could not remove {name} from the machine"))?;
        }
        let mut done = status(dir);
        done.installed = false;
        Ok(done)
    }

    pub fn status(_dir: &Path) -> Registration {
        let state = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .ok()
            .and_then(|m| {
                m.open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS)
                    .ok()
            })
            .and_then(|s| s.query_status().ok())
            .map(|s| format!("{:?}", s.current_state).to_ascii_lowercase());
        Registration {
            manager: "scm",
            unit: None,
            installed: state.is_some(),
            state,
            notes: Vec::new(),
        }
    }
}
