//! The dry-run directory: applies nothing and records, one line per operation, what it would do.

use super::password::Password;
use super::plan::Plan;

/// Records the operations of the plans it is given.
#[derive(Debug, Default)]
pub struct DryRun {
    /// What would have been done, in order.
    pub applied: Vec<String>,
}

impl DryRun {
    /// "Applies" a plan: records each operation. The password, if any, is only acknowledged.
    pub fn apply(&mut self, plan: &Plan, password: Option<&Password>) -> Vec<String> {
        let lines: Vec<String> = plan
            .ops
            .iter()
            .map(|op| match password {
                Some(p) => format!("(dry run) {op} [password: {p:?}]"),
                None => format!("(dry run) {op}"),
            })
            .collect();
        self.applied.extend(lines.iter().cloned());
        lines
    }
}
