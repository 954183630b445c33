//! One method per kind of [`Step`].

use super::{
    dkms_failed, io_error, last_lines, packages_failed, parent, persist_error, systemctl_failed,
    ExecError, Run, Services, StepError, UndoEntry,
};
use crate::bundle::{self, MODULE_SOURCE};
use crate::exit::{Categorized as _, Exit};
use crate::layout::{prebuilt_path, STATE_FILE, TRUSTED_PARAM};
use crate::plan::systemd::SystemctlUndo;
use crate::plan::{Cmd, Source, Step};
use crate::state::StateFile;
use crate::system::{installed, load, security};

impl Run<'_> {
    pub(super) fn step(
        &mut self,
        step: &Step,
        services: &mut Services<'_>,
    ) -> Result<(), StepError> {
        match step {
            Step::InstallPackages { packages, cmd, .. } => {
                self.install_packages(packages, cmd, services)
            }
            Step::Run {
                purpose,
                cmd,
                failure,
            } => self.run(purpose, cmd, *failure, services),
            Step::WriteSource { dir, files } => self.write_source(dir, files),
            Step::WriteFile {
                path,
                contents,
                mode,
            } => self.write_config(path, contents, *mode),
            Step::RemoveFile { path, .. } => self.remove_file(path),
            Step::Systemctl { purpose, cmd, undo } => self.systemctl(purpose, cmd, undo, services),
            Step::DkmsAdd { cmd } => self.dkms_add(cmd, services),
            Step::DkmsBuild { cmd, make_log } => self.dkms_build(cmd, make_log, services),
            Step::DkmsInstall { cmd } => self.dkms_install(cmd, services),
            Step::FetchPrebuilt { .. } => {
                let path = services.fetcher.fetch(step).map_err(StepError::Fetch)?;
                self.fetched = Some(path);
                Ok(())
            }
            Step::InstallPrebuilt { path } => self.install_prebuilt(path),
            Step::Load { cmd } => self.load(cmd, services),
            Step::SetTrusted { value } => self.set_trusted(value),
            Step::AttachEbpf { trusted } => self.attach_ebpf(trusted),
            Step::SetEbpfTrusted { trusted } => self.set_ebpf_trusted(trusted),
            Step::CopyLoader { path } => self.copy_loader(path),
            Step::Verify => self.verify(services),
            Step::RecordState {
                source,
                kernel_release,
                metrics_textfile,
            } => self.record_state(*source, kernel_release, metrics_textfile.as_deref()),
        }
    }

    fn install_packages(
        &mut self,
        packages: &[String],
        cmd: &Cmd,
        services: &mut Services<'_>,
    ) -> Result<(), StepError> {
        let out = self.command(cmd, Exit::HeadersUnavailable, services)?;
        if !out.success {
            return Err(ExecError::new(
                Exit::HeadersUnavailable,
                packages_failed(packages, cmd, &out),
            )
            .into());
        }
        self.record(UndoEntry::Packages {
            packages: packages.to_vec(),
        })?;
        Ok(())
    }

    fn run(
        &mut self,
        purpose: &str,
        cmd: &Cmd,
        failure: Exit,
        services: &mut Services<'_>,
    ) -> Result<(), StepError> {
        let out = self.command(cmd, failure, services)?;
        if !out.success {
            return Err(ExecError::new(
                failure,
                format!("{purpose} failed: `{}`\n{}", cmd.line(), out.tail(20)),
            )
            .into());
        }
        Ok(())
    }

    fn write_source(&mut self, dir: &str, files: &[String]) -> Result<(), StepError> {
        self.ensure_dirs(dir)?;
        for path in files {
            let file = MODULE_SOURCE
                .iter()
                .find(|f| f.path == *path)
                .ok_or_else(|| {
                    ExecError::new(Exit::BuildFailed, format!("{path} is not bundled"))
                })?;
            let target = format!("{dir}/{path}");
            if let Some(parent) = parent(&target) {
                self.ensure_dirs(parent)?;
            }
            self.write_file(&target, file.contents, 0o644)?;
        }
        Ok(())
    }

    fn write_config(&mut self, path: &str, contents: &str, mode: u32) -> Result<(), StepError> {
        if let Some(parent) = parent(path) {
            self.ensure_dirs(parent)?;
        }
        self.write_file(path, contents.as_bytes(), mode)
            .map_err(|e| persist_error(path, e))?;
        Ok(())
    }

    fn remove_file(&mut self, path: &str) -> Result<(), StepError> {
        let previous = self.fx.read(path).map_err(|e| io_error(path, e))?;
        if previous.is_none() {
            return Ok(());
        }
        self.record(UndoEntry::File {
            path: path.to_owned(),
            previous,
        })?;
        self.fx.remove(path).map_err(|e| {
            ExecError::new(
                Exit::Usage,
                format!("cannot remove {path}: {e}. Next step: run toa-install as root"),
            )
        })?;
        Ok(())
    }

    /// A `systemctl` command on our units. What undoes it is logged first:
    /// `enable --now` can enable the unit and then fail to start it.
    fn systemctl(
        &mut self,
        purpose: &str,
        cmd: &Cmd,
        undo: &SystemctlUndo,
        services: &mut Services<'_>,
    ) -> Result<(), StepError> {
        match undo {
            SystemctlUndo::Nothing => {}
            SystemctlUndo::Reload => self.record(UndoEntry::SystemdReloaded)?,
            SystemctlUndo::Disable(unit) => {
                self.record(UndoEntry::UnitEnabled { unit: unit.clone() })?
            }
        }
        let out = self.command(cmd, Exit::PersistFailed, services)?;
        if !out.success {
            return Err(systemctl_failed(purpose, cmd, &out, "toa-install").into());
        }
        Ok(())
    }

    fn dkms_add(&mut self, cmd: &Cmd, services: &mut Services<'_>) -> Result<(), StepError> {
        let out = self.command(cmd, Exit::BuildFailed, services)?;
        // "already added" is what we want.
        let already =
            out.stderr.contains("already been added") || out.stdout.contains("already been added");
        if !out.success && !already {
            return Err(ExecError::new(
                Exit::BuildFailed,
                format!("`{}` failed:\n{}", cmd.line(), out.tail(20)),
            )
            .into());
        }
        if !already {
            self.record(UndoEntry::Dkms {
                version: bundle::VERSION.to_owned(),
            })?;
        }
        Ok(())
    }

    fn dkms_build(
        &mut self,
        cmd: &Cmd,
        make_log: &str,
        services: &mut Services<'_>,
    ) -> Result<(), StepError> {
        let out = self.command(cmd, Exit::BuildFailed, services)?;
        if !out.success {
            let log = self
                .fx
                .read(make_log)
                .ok()
                .flatten()
                .map(|f| last_lines(&String::from_utf8_lossy(&f.contents), 30))
                .unwrap_or_else(|| out.tail(30));
            return Err(ExecError::new(
                Exit::BuildFailed,
                format!(
                    "building toa.ko failed: `{}`. The end of {make_log}:\n{log}\n\
                     Next step: check that the headers match the running kernel \
                     (`ls /lib/modules/$(uname -r)/build`) and report the log above with \
                     `toa-install detect` to the toa developers",
                    cmd.line()
                ),
            )
            .into());
        }
        Ok(())
    }

    fn dkms_install(&mut self, cmd: &Cmd, services: &mut Services<'_>) -> Result<(), StepError> {
        let out = self.command(cmd, Exit::BuildFailed, services)?;
        if !out.success {
            return Err(dkms_failed(cmd, &out).into());
        }
        Ok(())
    }

    fn install_prebuilt(&mut self, path: &str) -> Result<(), StepError> {
        let local = self.fetched.clone().ok_or_else(|| {
            ExecError::new(Exit::Download, "no prebuilt module was fetched".to_owned())
        })?;
        let bytes = self.fx.read_local(&local).map_err(|e| {
            ExecError::new(
                Exit::Download,
                format!("cannot read {}: {e}", local.display()),
            )
        })?;
        if let Some(dir) = parent(path) {
            self.ensure_dirs(dir)?;
        }
        self.write_file(path, &bytes, 0o644)?;
        Ok(())
    }

    fn load(&mut self, cmd: &Cmd, services: &mut Services<'_>) -> Result<(), StepError> {
        let out = self.command(cmd, Exit::LoadFailed, services)?;
        if !out.success {
            let lockdown = self
                .fx
                .read(security::LOCKDOWN)
                .ok()
                .flatten()
                .map(|f| String::from_utf8_lossy(&f.contents).into_owned());
            let failure = load::explain(&out.stderr, lockdown.as_deref());
            return Err(ExecError::new(failure.category, failure.message).into());
        }
        self.record(UndoEntry::Loaded)?;
        Ok(())
    }

    fn set_trusted(&mut self, value: &str) -> Result<(), StepError> {
        let previous = self
            .fx
            .read(TRUSTED_PARAM)
            .map_err(|e| io_error(TRUSTED_PARAM, e))?;
        self.record(UndoEntry::File {
            path: TRUSTED_PARAM.to_owned(),
            previous,
        })?;
        self.fx
            .write_in_place(TRUSTED_PARAM, value.as_bytes())
            .map_err(|e| {
                ExecError::new(
                    Exit::LoadFailed,
                    format!(
                        "the module refused the trusted list {value:?} ({e}). \
                         Next step: check each --trust value is a network such as 10.0.0.0/8"
                    ),
                )
            })?;
        Ok(())
    }

    fn attach_ebpf(&mut self, trusted: &[String]) -> Result<(), StepError> {
        // Logged first: a half-done attach unpins what it pinned itself,
        // and detaching what is not there is no problem for the undo.
        self.record(UndoEntry::EbpfAttached)?;
        self.fx.ebpf_attach(trusted).map_err(|e| {
            let category = e.category();
            let next = match category {
                Exit::Unsupported => "Next step: use the kernel module (`--backend module`)",
                Exit::NotRoot => "Next step: run toa-install as root",
                _ => {
                    "Next step: report this message with `toa-install detect` to the toa \
                     developers, and use the kernel module (`--backend module`) meanwhile"
                }
            };
            ExecError::new(category, format!("{e}. {next}"))
        })?;
        Ok(())
    }

    fn set_ebpf_trusted(&mut self, trusted: &[String]) -> Result<(), StepError> {
        let previous = self
            .fx
            .ebpf_trusted()
            .map_err(|e| ExecError::new(e.category(), e.to_string()))?;
        self.record(UndoEntry::EbpfTrusted { previous })?;
        self.fx.ebpf_set_trusted(trusted).map_err(|e| {
            ExecError::new(
                e.category(),
                format!("the eBPF backend refused the trusted list {trusted:?}: {e}"),
            )
        })?;
        Ok(())
    }

    fn copy_loader(&mut self, path: &str) -> Result<(), StepError> {
        let bytes = self.fx.current_exe().map_err(|e| {
            ExecError::new(
                Exit::PersistFailed,
                format!("cannot read the running toa-install to copy it to {path}: {e}"),
            )
        })?;
        if let Some(dir) = parent(path) {
            self.ensure_dirs(dir)?;
        }
        self.write_file(path, &bytes, 0o755)
            .map_err(|e| persist_error(path, e))?;
        Ok(())
    }

    fn verify(&mut self, services: &mut Services<'_>) -> Result<(), StepError> {
        services
            .verifier
            .verify(services.trusted.as_deref())
            .map_err(|e| {
                ExecError::new(
                    Exit::VerifyFailed,
                    format!("the self-test failed: {e}. Nothing was made persistent"),
                )
            })?;
        Ok(())
    }

    fn record_state(
        &mut self,
        source: Source,
        kernel_release: &str,
        metrics_textfile: Option<&str>,
    ) -> Result<(), StepError> {
        let previous: Option<StateFile> = self
            .fx
            .read(STATE_FILE)
            .ok()
            .flatten()
            .and_then(|f| serde_json::from_slice(&f.contents).ok());
        let metrics_textfile = metrics_textfile
            .map(str::to_owned)
            .or_else(|| previous.as_ref().and_then(|p| p.metrics_textfile.clone()));
        let mut packages = previous.map(|p| p.packages_installed).unwrap_or_default();
        for p in self.packages() {
            if !packages.contains(&p) {
                packages.push(p);
            }
        }
        let state = StateFile {
            version: bundle::VERSION.to_owned(),
            source,
            kernel_release: kernel_release.to_owned(),
            packages_installed: packages,
            srcversion: match source {
                Source::Prebuilt => self
                    .fx
                    .read(&prebuilt_path(kernel_release))
                    .ok()
                    .flatten()
                    .and_then(|f| installed::srcversion(&f.contents)),
                Source::Installed | Source::Dkms | Source::Ebpf => None,
            },
            metrics_textfile,
        };
        let text = serde_json::to_string_pretty(&state).unwrap_or_default() + "\n";
        self.ensure_state_dir()?;
        self.write_file(STATE_FILE, text.as_bytes(), 0o644)?;
        Ok(())
    }
}
