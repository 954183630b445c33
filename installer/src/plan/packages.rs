//! The package manager's command lines, once for install, uninstall and
//! the database queries made while planning.

use super::{timeouts, Cmd};
use crate::system::distro::PackageManager;
use std::path::Path;

/// Installs `packages`, without recommended extras.
pub fn install_cmd(manager: PackageManager, packages: &[String]) -> Cmd {
    match manager {
        PackageManager::Yum | PackageManager::Dnf => {
            Cmd::new(manager.command(), &["install", "-y"], timeouts::PACKAGE)
        }
        PackageManager::Apt => Cmd::new(
            "apt-get",
            &["install", "-y", "--no-install-recommends"],
            timeouts::PACKAGE,
        )
        .env("DEBIAN_FRONTEND", "noninteractive"),
        PackageManager::Zypper => Cmd::new(
            "zypper",
            &["--non-interactive", "install", "--no-recommends"],
            timeouts::PACKAGE,
        ),
    }
    .args(packages.iter().cloned())
}

/// Removes `packages` (Debian: with their configuration).
pub fn remove_cmd(manager: PackageManager, packages: &[String]) -> Cmd {
    match manager {
        PackageManager::Apt => Cmd::new("apt-get", &["purge", "-y"], timeouts::PACKAGE)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        PackageManager::Yum | PackageManager::Dnf => {
            Cmd::new(manager.command(), &["remove", "-y"], timeouts::PACKAGE)
        }
        PackageManager::Zypper => Cmd::new(
            "zypper",
            &["--non-interactive", "remove"],
            timeouts::PACKAGE,
        ),
    }
    .args(packages.iter().cloned())
}

/// The program that reads the package database, with the arguments that
/// point it at the database of the system under `root`; `None` when that
/// system has no rpm database, so nothing is installed in it.
pub fn database_query(
    manager: PackageManager,
    root: Option<&str>,
) -> Option<(&'static str, Vec<String>)> {
    match (manager, root) {
        (PackageManager::Apt, root) => Some((
            "dpkg-query",
            root.map(|r| format!("--admindir={r}/var/lib/dpkg"))
                .into_iter()
                .collect(),
        )),
        (_, None) => Some(("rpm", Vec::new())),
        (_, Some(root)) => {
            // The image's own database, named: a host's rpm may look
            // elsewhere (Debian's defaults to ~/.rpmdb) and would create an
            // empty database inside the image.
            if !Path::new(root).join("var/lib/rpm").is_dir() {
                return None;
            }
            Some((
                "rpm",
                ["--root", root, "--dbpath", "/var/lib/rpm"]
                    .map(str::to_owned)
                    .to_vec(),
            ))
        }
    }
}
