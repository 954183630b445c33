//! `toa-install uninstall [--purge-deps]`: take toa off the system again.
//!
//! Like `install`, this plans first ([`crate::plan::uninstall`]) and then
//! acts: [`execute`] carries the steps out through [`Effects`]. Each step removes
//! something that is there, so a second run plans nothing and says so.
//! Packages toa-install installed are kept unless `--purge-deps` asks for
//! exactly those (as recorded in the state file) to be removed.

use crate::backend::module::ModuleBackend;
use crate::backend::Backend;
use crate::commands::facts;
use crate::commands::report::{Ending, ErrorDoc, Output};
use crate::effects::executor::{dkms_failed, run_reported, systemctl_failed, ExecError};
use crate::effects::host::RealHost;
use crate::effects::lock::{require_root, RunLock};
use crate::effects::progress::Progress;
use crate::effects::Effects;
use crate::exit::{Categorized, Exit};
use crate::layout::{DKMS_TREE, EBPF_PIN_DIR, MODULE};
use crate::plan::uninstall::{Found, Options, Plan, Step};
use crate::plan::{timeouts, Cmd};
use crate::system::sysroot::open_root;
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};

/// What a finished uninstall did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Whether anything changed.
    pub changed: bool,
    /// The steps carried out.
    pub steps: Vec<String>,
    /// Packages removed (`--purge-deps`).
    pub packages_removed: Vec<String>,
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/')
        .map(|(d, _)| d)
        .filter(|d| !d.is_empty())
}

/// Who holds the module and what to do about it.
fn unload_next_step(in_use: bool, holders: &[String]) -> String {
    match (in_use, holders.is_empty()) {
        (true, false) => format!(
            "It is in use by the module(s) {list}. Next step: unload them first \
             (`modprobe -r {first}`), then run toa-install uninstall again.",
            list = holders.join(", "),
            first = holders[0]
        ),
        (true, true) => "It is in use: something holds a reference to it (`lsmod | grep toa` \
                         shows the count). Next step: stop what uses it, then run toa-install \
                         uninstall again."
            .to_owned(),
        (false, _) => "Next step: see `dmesg | tail` for the kernel's reason, then run \
                       toa-install uninstall again."
            .to_owned(),
    }
}

/// Carries the plan out, stopping at the first failure (a new run picks up
/// where this one stopped: it plans only what is still there).
pub fn execute(
    plan: &Plan,
    fx: &mut dyn Effects,
    progress: &mut dyn Progress,
) -> Result<Outcome, ExecError> {
    let mut done = Vec::new();
    let mut packages_removed = Vec::new();
    let run = |fx: &mut dyn Effects, progress: &mut dyn Progress, cmd: &Cmd, failure: Exit| {
        run_reported(fx, cmd, progress)
            .0
            .map_err(|e| ExecError::new(failure, format!("{e}")))
    };
    let file_error = |path: &str, e: io::Error| {
        ExecError::new(
            Exit::Usage,
            format!("cannot remove {path}: {e}. Next step: run toa-install uninstall as root"),
        )
    };
    for (i, step) in plan.steps.iter().enumerate() {
        progress.step(&format!(
            "[{}/{}] {}",
            i + 1,
            plan.steps.len(),
            step.summary()
        ));
        match step {
            Step::Unload { cmd, holders } => {
                let out = run(fx, progress, cmd, Exit::LoadFailed)?;
                if !out.success {
                    let said = out.stderr.trim().to_owned();
                    let in_use = said.contains("in use") || said.contains("Resource temporarily");
                    let retry = (!in_use)
                        .then(|| {
                            run(
                                fx,
                                progress,
                                &Cmd::new("rmmod", &[MODULE], timeouts::MODPROBE),
                                Exit::LoadFailed,
                            )
                        })
                        .transpose()?;
                    if !retry.as_ref().is_some_and(|o| o.success) {
                        let rmmod = retry
                            .map(|o| format!("; `rmmod toa` said: {}", o.stderr.trim()))
                            .unwrap_or_default();
                        return Err(ExecError::new(
                            Exit::LoadFailed,
                            format!(
                                "cannot unload toa: `{}` said: {said}{rmmod}. {} Nothing was removed",
                                cmd.line(),
                                unload_next_step(in_use, holders)
                            ),
                        ));
                    }
                }
            }
            Step::Systemctl { purpose, cmd } => {
                let out = run(fx, progress, cmd, Exit::PersistFailed)?;
                if !out.success {
                    return Err(systemctl_failed(
                        purpose,
                        cmd,
                        &out,
                        "toa-install uninstall",
                    ));
                }
            }
            Step::RemoveFile { path, .. } => {
                ignore_missing(fx.remove(path)).map_err(|e| file_error(path, e))?;
                // The directory toa-install made for a prebuilt module goes
                // with it when nothing else is in it.
                if path.ends_with("/extra/toa.ko") {
                    if let Some(dir) = parent(path) {
                        let _ = fx.remove_dir(dir);
                    }
                }
            }
            Step::RemoveTree { path, .. } => {
                ignore_missing(fx.remove_tree(path)).map_err(|e| file_error(path, e))?;
            }
            Step::DetachEbpf => {
                fx.ebpf_detach().map_err(|e| {
                    ExecError::new(
                        e.category(),
                        format!(
                            "cannot detach the eBPF backend: {e}. Next step: remove \
                             {EBPF_PIN_DIR} by hand (`rm -r {EBPF_PIN_DIR}`), then run toa-install \
                             uninstall again"
                        ),
                    )
                })?;
            }
            Step::DkmsRemove { cmd, .. } => {
                let out = run(fx, progress, cmd, Exit::BuildFailed)?;
                let gone = format!("{}{}", out.stdout, out.stderr).contains("There is no instance");
                if !out.success && !gone {
                    return Err(dkms_failed(cmd, &out));
                }
                // DKMS leaves its per-module directory behind when empty.
                let _ = fx.remove_dir(DKMS_TREE);
            }
            Step::Depmod { cmd } => {
                let out = run(fx, progress, cmd, Exit::LoadFailed)?;
                if !out.success {
                    return Err(ExecError::new(
                        Exit::LoadFailed,
                        format!("`{}` failed:\n{}", cmd.line(), out.tail(20)),
                    ));
                }
            }
            Step::RemovePackages { packages, cmd } => {
                let out = run(fx, progress, cmd, Exit::HeadersUnavailable)?;
                if !out.success {
                    return Err(ExecError::new(
                        Exit::HeadersUnavailable,
                        format!(
                            "removing packages failed: `{}`\n{}\nNext step: fix the package \
                             manager's problem above, then run toa-install uninstall --purge-deps again",
                            cmd.line(),
                            out.tail(20)
                        ),
                    ));
                }
                packages_removed.extend(packages.iter().cloned());
            }
        }
        done.push(step.summary());
    }
    Ok(Outcome {
        changed: !done.is_empty(),
        steps: done,
        packages_removed,
    })
}

/// What `uninstall` was asked for, already parsed.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--purge-deps`.
    pub purge_deps: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--root` (with `--dry-run` only).
    pub root: Option<PathBuf>,
}

/// How an uninstall run ended, ready to print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// Whether anything changed.
    pub changed: bool,
    /// The steps carried out (with `--dry-run`: the steps that would be).
    pub steps: Vec<String>,
    /// Packages removed.
    pub packages_removed: Vec<String>,
    /// Things worth knowing.
    pub warnings: Vec<String>,
    /// Why the run failed.
    pub error: Option<ErrorDoc>,
    /// `--dry-run`: the whole plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
}

impl Document {
    fn failed(exit: Exit, message: String, warnings: Vec<String>) -> Document {
        Document {
            changed: false,
            steps: Vec::new(),
            packages_removed: Vec::new(),
            warnings,
            error: Some(ErrorDoc::new(exit, message)),
            plan: None,
        }
    }

    /// The exit status.
    pub fn exit(&self) -> Exit {
        self.error.as_ref().map_or(Exit::Ok, |e| e.problem.category)
    }
}

/// Runs `uninstall`; `progress` hears of each step and each external
/// command as it runs.
pub fn run(req: &Request, euid_is_root: bool, progress: &mut dyn Progress) -> Document {
    if req.root.is_some() && !req.dry_run {
        return Document::failed(
            Exit::Usage,
            "--root only works with --dry-run for uninstall: removing changes the running system \
             only. Next step: add --dry-run to see the plan for that image"
                .to_owned(),
            Vec::new(),
        );
    }
    if !req.dry_run {
        if let Err(e) = require_root(euid_is_root) {
            return Document::failed(e.category(), e.to_string(), Vec::new());
        }
    }
    let fs = match open_root(req.root.as_deref()) {
        Ok(fs) => fs,
        Err(e) => return Document::failed(e.category(), e.to_string(), Vec::new()),
    };
    let manager = facts::distro(&fs).1.ok().map(|d| d.row.package_manager);
    let root_text = req.root.as_ref().map(|r| r.display().to_string());
    let found = Found::read(&fs, &RealHost, manager, root_text.as_deref());
    let plan = ModuleBackend.plan_uninstall(
        &found,
        Options {
            purge_deps: req.purge_deps,
        },
        manager,
    );
    if req.dry_run {
        return Document {
            changed: false,
            steps: plan.steps.iter().map(Step::summary).collect(),
            packages_removed: Vec::new(),
            warnings: plan.warnings.clone(),
            error: None,
            plan: Some(plan),
        };
    }
    let _lock = match RunLock::acquire(Path::new(crate::layout::LOCK_FILE)) {
        Ok(l) => l,
        Err(e) => return Document::failed(e.category(), e.to_string(), plan.warnings),
    };
    let mut fx = crate::effects::host::HostEffects::host();
    match execute(&plan, &mut fx, progress) {
        Ok(outcome) => Document {
            changed: outcome.changed,
            steps: outcome.steps,
            packages_removed: outcome.packages_removed,
            warnings: plan.warnings,
            error: None,
            plan: None,
        },
        Err(e) => Document::failed(e.category(), e.message, plan.warnings),
    }
}

/// `toa-install uninstall`: runs it with progress on standard error and
/// prints how it ended. `kernel_release` is refused: uninstall is for
/// every kernel.
pub fn main(output: &Output, kernel_release: Option<&str>, req: &Request) -> Exit {
    if kernel_release.is_some() {
        return output.fail(
            Exit::Usage,
            "uninstall removes toa for every kernel: --kernel-release does not apply. \
             Next step: run it without --kernel-release",
        );
    }
    let mut progress = output.reporter(req.dry_run);
    let doc = run(req, super::euid_is_root(), &mut progress);
    drop(progress);
    let done = if doc.changed {
        "toa is uninstalled."
    } else {
        "nothing of toa is installed: nothing changed."
    };
    let ending = Ending {
        plan: doc.plan.as_ref().map(Plan::render),
        done,
        warnings: &doc.warnings,
        packages: ("packages removed", &doc.packages_removed),
        error: doc.error.as_ref(),
    };
    output.print_ending(&doc, doc.exit(), ending)
}

#[cfg(test)]
mod tests;
