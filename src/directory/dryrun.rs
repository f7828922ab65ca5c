//! The dry-run directory: a snapshot that plans are carried out on in memory, one line per
//! operation saying what AD would be asked to do. Nothing leaves the process, and nothing is
//! written back to the snapshot's file: each start begins again from it.

use std::sync::Arc;

use super::password::PasswordPolicy;
use super::plan::Plan;
use super::snapshot::Snapshot;

/// The accounts as the plans carried out so far have left them.
#[derive(Debug, Default)]
pub struct DryRun {
    snapshot: Arc<Snapshot>,
    /// `[directory] personal_email_attribute`: where a creation's personal address goes.
    personal_email_attribute: Option<String>,
}

impl DryRun {
    pub fn new(snapshot: Snapshot, personal_email_attribute: Option<String>) -> DryRun {
        DryRun { snapshot: Arc::new(snapshot), personal_email_attribute }
    }

    /// The domain's password rules, as a new AD domain has them: the dry run has no domain
    /// object to read them from.
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy::AD_DEFAULT
    }

    /// The accounts as they are now (shared: a plan decided on it is not disturbed by the next).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }

    /// Carries out `plan` on the accounts; returns one line per operation.
    pub fn apply(&mut self, plan: &Plan, request_id: &str) -> Vec<String> {
        let snapshot = Arc::make_mut(&mut self.snapshot);
        for op in &plan.ops {
            snapshot.apply(op, request_id, self.personal_email_attribute.as_deref());
        }
        plan.ops.iter().map(ToString::to_string).collect()
    }
}
