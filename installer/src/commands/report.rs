//! The error part of every JSON document the commands print, in one
//! shape: `category`, `exit_code` and `message`, plus `undo_problems`
//! after a failed install or uninstall.

use crate::exit::{Categorized, Exit};
use serde::Serialize;

/// A problem, with its exit category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The category's name (`unsupported`, `load-refused`, ...).
    pub category: Exit,
    /// The exit code that category maps to.
    pub exit_code: u8,
    /// What is wrong and what to do next.
    pub message: String,
}

impl Problem {
    /// A problem of `category`.
    pub fn new(category: Exit, message: String) -> Self {
        Problem {
            category,
            exit_code: category.code(),
            message,
        }
    }

    /// The problem an error describes.
    pub fn of(err: &dyn Categorized) -> Self {
        Problem::new(err.category(), err.to_string())
    }
}

/// A failed install or uninstall in the JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDoc {
    /// What failed.
    #[serde(flatten)]
    pub problem: Problem,
    /// What a failed undo left behind.
    pub undo_problems: Vec<String>,
}

impl ErrorDoc {
    /// A failure of `category` with nothing left to undo.
    pub fn new(category: Exit, message: String) -> Self {
        ErrorDoc {
            problem: Problem::new(category, message),
            undo_problems: Vec::new(),
        }
    }
}
