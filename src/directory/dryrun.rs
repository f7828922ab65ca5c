//! The dry-run directory: a snapshot that plans are carried out on, one line per operation
//! saying what AD would be asked to do. Nothing leaves the machine. The snapshot's file is never
//! written: the simulated directory, as the plans left it, is kept beside the store and taken
//! up again at the next start (a trial run over weeks reads its own changes back, as AD would).

use std::path::PathBuf;
use std::sync::Arc;

use tracing::warn;

use super::password::PasswordPolicy;
use super::plan::Plan;
use super::snapshot::Snapshot;

/// The accounts as the plans carried out so far have left them.
#[derive(Debug, Default)]
pub struct DryRun {
    snapshot: Arc<Snapshot>,
    /// `[directory] personal_email_attribute`: where a creation's personal address goes.
    personal_email_attribute: Option<String>,
    /// Where the simulated directory is kept between runs.
    kept: Option<PathBuf>,
}

impl DryRun {
    pub fn new(snapshot: Snapshot, personal_email_attribute: Option<String>) -> DryRun {
        DryRun { snapshot: Arc::new(snapshot), personal_email_attribute, kept: None }
    }

    /// Keeps the simulated directory in `path` after every plan, and starts from it when it
    /// is there already (else from `snapshot`).
    pub fn kept_in(mut self, path: PathBuf) -> Result<DryRun, super::snapshot::SnapshotError> {
        if path.exists() {
            self.snapshot = Arc::new(Snapshot::load(&path)?);
        }
        self.kept = Some(path);
        Ok(self)
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
        if let Some(path) = &self.kept
            && let Err(e) = snapshot.save(path)
        {
            warn!(path = %path.display(), error = %e, "the simulated directory cannot be kept: the next start begins from the snapshot");
        }
        plan.ops.iter().map(ToString::to_string).collect()
    }
}
