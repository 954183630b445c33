//! A recording stand-in for tests.

use super::host::RootedFiles;
use super::runner::{Output, RunError};
use super::Effects;
use crate::plan::Cmd;
use crate::system::ebpf::EbpfError;
use std::fs;
use std::path::Path;

/// A scripted answer: commands whose line starts with `prefix` get
/// `output`, and `creates` files appear below the root. The answer
/// added last wins.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) prefix: String,
    pub(crate) output: Output,
    pub(crate) creates: Vec<(String, String)>,
    pub(crate) removes: Vec<String>,
}

/// Files in a temporary root; commands recorded and answered from a
/// script (unknown commands succeed with no output).
pub(crate) struct FakeEffects {
    pub(crate) files: RootedFiles,
    pub(crate) commands: Vec<String>,
    pub(crate) answers: Vec<Answer>,
    /// The eBPF backend's trusted list while "attached".
    pub(crate) ebpf: Option<Vec<String>>,
    /// Whether attaching fails (as the verifier refusing a program).
    pub(crate) ebpf_refused: bool,
}

impl FakeEffects {
    pub(crate) fn new(root: &Path) -> Self {
        FakeEffects {
            files: RootedFiles::new(root),
            commands: Vec::new(),
            answers: Vec::new(),
            ebpf: None,
            ebpf_refused: false,
        }
    }

    pub(crate) fn answer(
        mut self,
        prefix: &str,
        success: bool,
        stderr: &str,
        creates: &[(&str, &str)],
    ) -> Self {
        self.answers.push(Answer {
            prefix: prefix.to_owned(),
            output: Output {
                success,
                code: Some(if success { 0 } else { 1 }),
                stdout: String::new(),
                stderr: stderr.to_owned(),
            },
            creates: creates
                .iter()
                .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
                .collect(),
            removes: Vec::new(),
        });
        self
    }

    pub(crate) fn answer_removing(mut self, prefix: &str, removes: &[&str]) -> Self {
        self.answers.push(Answer {
            prefix: prefix.to_owned(),
            output: Output {
                success: true,
                code: Some(0),
                ..Output::default()
            },
            creates: Vec::new(),
            removes: removes.iter().map(|p| (*p).to_owned()).collect(),
        });
        self
    }
}

impl Effects for FakeEffects {
    fn run(&mut self, cmd: &Cmd) -> Result<Output, RunError> {
        let line = cmd.line();
        self.commands.push(line.clone());
        let Some(answer) = self
            .answers
            .iter()
            .rev()
            .find(|a| line.starts_with(&a.prefix))
        else {
            return Ok(Output {
                success: true,
                code: Some(0),
                ..Output::default()
            });
        };
        for (path, contents) in &answer.creates {
            let p = self.files.host_path(path).unwrap();
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, contents).unwrap();
        }
        for path in &answer.removes {
            let p = self.files.host_path(path).unwrap();
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
        Ok(answer.output.clone())
    }
    fn files(&self) -> &RootedFiles {
        &self.files
    }
    fn ebpf_attach(&mut self, trusted: &[String]) -> Result<(), EbpfError> {
        self.commands
            .push(format!("ebpf attach [{}]", trusted.join(",")));
        if self.ebpf.is_some() {
            return Err(toa_ebpf::Error::AlreadyAttached.into());
        }
        if self.ebpf_refused {
            return Err(toa_ebpf::Error::Load {
                program: "toa_sockops".to_owned(),
                detail: "Permission denied (os error 13); verifier: refused".to_owned(),
            }
            .into());
        }
        self.ebpf = Some(trusted.to_vec());
        Ok(())
    }
    fn ebpf_set_trusted(&mut self, trusted: &[String]) -> Result<(), EbpfError> {
        self.commands
            .push(format!("ebpf trust [{}]", trusted.join(",")));
        match &mut self.ebpf {
            Some(list) => {
                *list = trusted.to_vec();
                Ok(())
            }
            None => Err(toa_ebpf::Error::NotAttached.into()),
        }
    }
    fn ebpf_trusted(&self) -> Result<Vec<String>, EbpfError> {
        self.ebpf
            .clone()
            .ok_or_else(|| toa_ebpf::Error::NotAttached.into())
    }
    fn ebpf_detach(&mut self) -> Result<(), EbpfError> {
        self.commands.push("ebpf detach".to_owned());
        self.ebpf
            .take()
            .map(|_| ())
            .ok_or_else(|| toa_ebpf::Error::NotAttached.into())
    }
    fn current_exe(&self) -> std::io::Result<Vec<u8>> {
        Ok(b"toa-install binary".to_vec())
    }
}
