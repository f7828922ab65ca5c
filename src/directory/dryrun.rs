//! The dry-run directory: applies nothing and records, one line per operation, what it would do.

use super::plan::Plan;

/// Records the operations of the plans it is given.
#[derive(Debug, Default)]
pub struct DryRun {
    /// What would have been done, in order.
    pub applied: Vec<String>,
}

impl DryRun {
    /// "Applies" a plan: records each operation.
    pub fn apply(&mut self, plan: &Plan) -> Vec<String> {
        let lines: Vec<String> = plan.ops.iter().map(ToString::to_string).collect();
        self.applied.extend(lines.iter().cloned());
        lines
    }
}
