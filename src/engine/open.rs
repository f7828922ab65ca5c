//! What the open requests hold, kept in memory between cycles: the account names and DNs they
//! will create (no two requests make the same), the person and kind each covers (a response
//! for the same person and kind repeats it), and the people waiting on their fix (a new
//! response replaces the waiting one). Derived from the store at start and after a command
//! changed it; kept in step with every request the engine stages.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::request::{Request, RequestId, StateName};

use super::{cover_key, covers, new_account_dn};

#[derive(Debug, Default, PartialEq)]
pub(super) struct OpenIndex {
    /// Account names reserved by open requests.
    names: HashSet<String>,
    /// DNs (lower-case) open requests will create, and which request will.
    dns: HashMap<String, RequestId>,
    dn_of: HashMap<RequestId, String>,
    /// Open requests by the person and kind they are about (see [`cover_key`]), with their row.
    covering: HashMap<String, (RequestId, u32)>,
    /// Requests waiting on the requester (`NeedsInfo`), by the person's document number.
    waiting: HashMap<String, RequestId>,
    /// Open requests by the account they are about (lower-case): the ones a later request
    /// about that account may supersede, found without reading every open request.
    about: HashMap<String, BTreeSet<RequestId>>,
    about_of: HashMap<RequestId, String>,
}

impl OpenIndex {
    /// The indexes of these open requests, read one at a time.
    pub(super) fn of(
        open: impl Iterator<Item = Result<Request, crate::store::StoreError>>,
    ) -> Result<OpenIndex, crate::store::StoreError> {
        let mut index = OpenIndex::default();
        for r in open {
            index.update(&r?);
        }
        Ok(index)
    }

    /// Keeps the indexes in step with `request` as it is now. The person and kind a request
    /// just closed covers, for the store's record of closed requests.
    pub(super) fn update(&mut self, request: &Request) -> Option<String> {
        if let Some(old) = self.about_of.remove(&request.id)
            && let Some(ids) = self.about.get_mut(&old)
        {
            ids.remove(&request.id);
            if ids.is_empty() {
                self.about.remove(&old);
            }
        }
        let account = request.account.as_deref().unwrap_or(&request.submission.account).to_lowercase();
        if request.is_open() && !account.is_empty() {
            self.about.entry(account.clone()).or_default().insert(request.id);
            self.about_of.insert(request.id, account);
        }
        let document = &request.submission.id_number;
        if !document.is_empty() {
            if request.state.name() == StateName::NeedsInfo {
                self.waiting.insert(document.clone(), request.id);
            } else if self.waiting.get(document) == Some(&request.id) {
                self.waiting.remove(document);
            }
        }
        if let Some(name) = &request.reserved_account {
            if request.is_open() {
                self.names.insert(name.clone());
            } else {
                self.names.remove(name);
            }
        }
        if let Some(old) = self.dn_of.remove(&request.id) {
            self.dns.remove(&old);
        }
        if let Some(dn) = new_account_dn(request) {
            self.dns.insert(dn.clone(), request.id);
            self.dn_of.insert(request.id, dn);
        }
        let key = cover_key(&request.submission)?;
        if covers(request) {
            self.covering.entry(key.clone()).or_insert((request.id, request.row));
        } else if self.covering.get(&key).is_some_and(|(id, _)| *id == request.id) {
            self.covering.remove(&key);
        }
        (request.state.name() == StateName::Closed).then_some(key)
    }

    /// A request gave its reserved name back (its row was edited: it is decided again).
    pub(super) fn release_name(&mut self, name: &str) {
        self.names.remove(name);
    }

    pub(super) fn name_taken(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Whether an open request will create an account at `dn` (lower-case).
    pub(super) fn dn_taken(&self, dn: &str) -> bool {
        self.dns.contains_key(dn)
    }

    /// The open request about the same person and kind, if any.
    pub(super) fn covering(&self, key: &str) -> Option<RequestId> {
        self.covering.get(key).map(|(id, _)| *id)
    }

    /// The open requests about `account` (any case), in id order.
    pub(super) fn about(&self, account: &str) -> Vec<RequestId> {
        self.about.get(&account.to_lowercase()).map(|ids| ids.iter().copied().collect()).unwrap_or_default()
    }

    /// The request waiting on its requester for this document number, if any.
    pub(super) fn waiting(&self, document: &str) -> Option<RequestId> {
        self.waiting.get(document).copied()
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::directory::plan::{DirectoryOp, Plan};
    use crate::request::{Kind, State, Submission};

    fn request(seq: u32, kind: Kind, document: &str, state: State) -> Request {
        let s = Submission {
            kind: Some(kind),
            id_number: document.into(),
            given_names: "Ana".into(),
            surnames: "Gómez".into(),
            ..Submission::default()
        };
        let at = Timestamp::UNIX_EPOCH;
        let mut r = Request::new(RequestId { year: 2027, seq }, seq + 1, String::new(), s, at, at);
        r.state = state;
        r
    }

    fn creating(dn: &str) -> State {
        let create =
            DirectoryOp::Create { sam: "ana.gomez".into(), dn: dn.into(), attributes: vec![], expires: None };
        State::Executing {
            plan: Plan { ops: vec![create], ..Plan::default() },
            attempts: 0,
            retry_at: None,
            released: false,
        }
    }

    fn needs_info() -> State {
        State::NeedsInfo { reason: "falta".into(), since: Timestamp::UNIX_EPOCH }
    }

    fn closed() -> State {
        State::Closed { outcome: "hecho".into() }
    }

    #[test]
    fn a_creation_holds_its_name_and_dn_while_open_and_gives_them_back_when_it_closes() {
        let mut index = OpenIndex::default();
        let mut r = request(1, Kind::Create, "111", creating("CN=Ana Gómez,OU=X"));
        r.reserved_account = Some("ana.gomez".into());
        assert_eq!(index.update(&r), None);
        assert!(index.name_taken("ana.gomez") && index.dn_taken("cn=ana gómez,ou=x"));
        assert_eq!(index.covering(&cover_key(&r.submission).unwrap()), Some(r.id));
        // Decided again with another DN: the old one is free.
        r.state = creating("CN=Ana Gómez 2,OU=X");
        index.update(&r);
        assert!(!index.dn_taken("cn=ana gómez,ou=x") && index.dn_taken("cn=ana gómez 2,ou=x"));
        r.state = closed();
        let key = cover_key(&r.submission).unwrap();
        assert_eq!(index.update(&r), Some(key.clone()), "a closed request's cover goes to the store");
        assert!(!index.name_taken("ana.gomez") && !index.dn_taken("cn=ana gómez 2,ou=x"));
        assert_eq!(index.covering(&key), None);
        assert_eq!(index, OpenIndex::default(), "nothing left behind");
    }

    /// The open requests about an account: by the account cuentas settled on, else the one
    /// asked for, in any case; a request leaves when it closes or turns to another account.
    #[test]
    fn the_open_requests_about_an_account_follow_each_change_of_theirs() {
        let mut index = OpenIndex::default();
        let mut a = request(1, Kind::Disable, "1", creating("CN=x"));
        a.submission.account = "Ana.Gomez".into();
        let mut b = request(2, Kind::Modify, "2", needs_info());
        b.submission.account = "ana.gomez".into();
        index.update(&b);
        index.update(&a);
        assert_eq!(index.about("ANA.GOMEZ"), [a.id, b.id]);
        b.account = Some("ana.gomez2".into());
        index.update(&b);
        assert_eq!((index.about("ana.gomez"), index.about("ana.gomez2")), (vec![a.id], vec![b.id]));
        a.state = closed();
        b.state = closed();
        index.update(&a);
        index.update(&b);
        assert!(index.about("ana.gomez").is_empty() && index.about("ana.gomez2").is_empty());
        assert_eq!(index, OpenIndex::default(), "nothing left behind");
    }

    #[test]
    fn the_first_open_request_covers_its_person_and_kind_and_a_waiting_one_does_not() {
        let mut index = OpenIndex::default();
        let waiting = request(1, Kind::Disable, "222", needs_info());
        index.update(&waiting);
        assert_eq!(index.waiting("222"), Some(waiting.id));
        assert_eq!(index.covering(&cover_key(&waiting.submission).unwrap()), None, "waiting covers nothing");
        let first = request(2, Kind::Disable, "222", creating("CN=x"));
        let second = request(3, Kind::Disable, "222", creating("CN=y"));
        index.update(&first);
        index.update(&second);
        let key = cover_key(&first.submission).unwrap();
        assert_eq!(index.covering(&key), Some(first.id));
        // The second one closing leaves the first's cover alone.
        let mut done = second.clone();
        done.state = closed();
        index.update(&done);
        assert_eq!(index.covering(&key), Some(first.id));
        // The waiting one answered: no longer waiting.
        let mut answered = waiting;
        answered.state = State::Received;
        index.update(&answered);
        assert_eq!(index.waiting("222"), None);
    }

    #[test]
    fn derived_from_the_store_or_kept_in_step_the_index_is_the_same() {
        let mut named = request(1, Kind::Create, "111", creating("CN=A,OU=X"));
        named.reserved_account = Some("ana.gomez".into());
        let open = vec![
            named,
            request(2, Kind::Disable, "222", needs_info()),
            request(3, Kind::Leave, "333", creating("CN=B")),
        ];
        let mut stepped = OpenIndex::default();
        for r in &open {
            stepped.update(r);
        }
        assert_eq!(OpenIndex::of(open.iter().cloned().map(Ok)).unwrap(), stepped);
        assert!(stepped.name_taken("ana.gomez") && stepped.waiting("222").is_some());
        stepped.release_name("ana.gomez");
        assert!(!stepped.name_taken("ana.gomez"));
    }
}
