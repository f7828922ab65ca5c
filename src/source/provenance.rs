//! Which rows the form wrote (pure). Anyone who may edit the response spreadsheet can type a row
//! into it as `talentohumano@…`; only the form's own record of its responses (Google Forms API)
//! tells a response from a row typed by hand. A row is the form's when a response of the same
//! address was submitted, or last edited, at the row's time: the sheet keeps whole seconds in
//! its own time zone, the API fractions of a second in UTC. Each response proves one row.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use super::sheet::FormResponse;

/// How far a row's timestamp may be from its response's, the sheet's rounding included.
const TOLERANCE: SignedDuration = SignedDuration::from_secs(1);

/// A new row, as the proof needs it.
#[derive(Debug, Clone, Copy)]
pub struct RowClaim<'a> {
    pub row: u32,
    /// The address in the row's e-mail column (lower-case).
    pub requester: &'a str,
    /// The row's timestamp; `None` if it has none (no response can prove it).
    pub submitted: Option<Timestamp>,
}

/// The response that proves each row, by row number; rows left out are not the form's.
/// The closest response in time wins, so two responses of one person a second apart each
/// prove their own row.
pub fn rows_the_form_wrote(rows: &[RowClaim<'_>], responses: &[FormResponse]) -> HashMap<u32, FormResponse> {
    let mut candidates: Vec<(SignedDuration, u32, usize)> = Vec::new();
    for claim in rows {
        let Some(at) = claim.submitted else { continue };
        for (i, r) in responses.iter().enumerate() {
            // A form that does not collect addresses proves the time alone.
            let same_person = r.respondent_email.is_empty() || r.respondent_email == claim.requester;
            let gap = at.duration_since(r.last_submitted).abs();
            if same_person && gap <= TOLERANCE {
                candidates.push((gap, claim.row, i));
            }
        }
    }
    candidates.sort();
    let mut proved = HashMap::new();
    let mut used = vec![false; responses.len()];
    for (_, row, i) in candidates {
        if used[i] || proved.contains_key(&row) {
            continue;
        }
        used[i] = true;
        proved.insert(row, responses[i].clone());
    }
    proved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: &str, email: &str, at: &str) -> FormResponse {
        FormResponse {
            response_id: id.into(),
            respondent_email: email.into(),
            last_submitted: at.parse().unwrap(),
        }
    }

    fn claim<'a>(row: u32, requester: &'a str, at: &str) -> RowClaim<'a> {
        RowClaim { row, requester, submitted: Some(at.parse().unwrap()) }
    }

    #[test]
    fn a_row_is_the_form_s_only_with_a_response_of_its_address_and_time() {
        let responses = [
            response("r1", "th@upme.gov.co", "2026-12-07T13:05:03.512Z"),
            response("r2", "th@upme.gov.co", "2026-12-07T13:05:04.020Z"),
            response("r3", "jefe@upme.gov.co", "2026-12-07T14:00:00.900Z"),
        ];
        let rows = [
            // Two responses a second apart from the same person: each proves its own row.
            claim(2, "th@upme.gov.co", "2026-12-07T13:05:03Z"),
            claim(3, "th@upme.gov.co", "2026-12-07T13:05:04Z"),
            // Typed by hand: a real address at a time the form has nothing.
            claim(4, "th@upme.gov.co", "2026-12-07T13:30:00Z"),
            // Another person's response time borrowed.
            claim(5, "th@upme.gov.co", "2026-12-07T14:00:00Z"),
            claim(6, "jefe@upme.gov.co", "2026-12-07T14:00:01Z"),
            // A copy of row 2: its response already proves row 2.
            claim(7, "th@upme.gov.co", "2026-12-07T13:05:03Z"),
            RowClaim { row: 8, requester: "th@upme.gov.co", submitted: None },
        ];
        let proved = rows_the_form_wrote(&rows, &responses);
        assert_eq!(proved.get(&2).map(|r| r.response_id.as_str()), Some("r1"));
        assert_eq!(proved.get(&3).map(|r| r.response_id.as_str()), Some("r2"));
        assert_eq!(proved.get(&6).map(|r| r.response_id.as_str()), Some("r3"));
        for row in [4, 5, 7, 8] {
            assert!(!proved.contains_key(&row), "row {row}: {proved:?}");
        }
        assert_eq!(proved.len(), 3);
    }

    #[test]
    fn without_collected_addresses_the_time_alone_proves_a_row_once() {
        let responses = [response("r1", "", "2026-12-07T13:05:03.200Z")];
        let rows = [
            claim(2, "a@upme.gov.co", "2026-12-07T13:05:03Z"),
            claim(3, "b@upme.gov.co", "2026-12-07T13:05:03Z"),
        ];
        assert_eq!(rows_the_form_wrote(&rows, &responses).len(), 1);
        assert!(rows_the_form_wrote(&rows, &[]).is_empty());
    }
}
