//! The patient's view in the terminal: an access log as a table a person reads ("who looked at my
//! records, when, and on what basis?"), and a subject's patient blocks.

use serde_json::{Value, json};
use varde_proto::v1;

use crate::render::{classification_name, hex_of, purpose_name};

/// Milliseconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn utc_time(unix_ms: i64) -> String {
    let seconds = unix_ms.div_euclid(1_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, proleptic Gregorian).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

fn short(bytes: &[u8]) -> String {
    hex_of(&bytes[..bytes.len().min(8)])
}

/// The basis a read was logged on.
fn basis(event: &v1::AccessEvent) -> String {
    match event
        .report
        .as_ref()
        .and_then(|report| report.basis.as_ref())
    {
        Some(v1::log_access::Basis::GrantId(grant_id)) => format!("grant {}", short(grant_id)),
        Some(v1::log_access::Basis::Emergency(emergency)) => {
            format!("emergency: {}", emergency.justification)
        }
        None => "none named".to_owned(),
    }
}

/// One row per event: when, who, which record, purpose, basis, verdict.
pub fn table(events: &[v1::AccessEvent]) -> String {
    let header = [
        "WHEN", "WHO", "RECORD", "PURPOSE", "BASIS", "VERDICT", "REASON",
    ]
    .map(str::to_owned);
    let mut rows = vec![header];
    for event in events {
        let report = event.report.clone().unwrap_or_default();
        let who = if event.accessor_institution_name.is_empty() {
            format!(
                "{} (HPR {})",
                report.accessor_org_number, report.accessor_hpr_number
            )
        } else {
            format!(
                "{} {} (HPR {})",
                event.accessor_institution_name,
                report.accessor_org_number,
                report.accessor_hpr_number
            )
        };
        let record = report.record.as_ref().map_or_else(String::new, |record| {
            format!("{}/{}", record.custodian_org_number, record.record_id)
        });
        let verdict = format!(
            "{}{}",
            classification_name(event.classification),
            if event.flagged { " FLAGGED" } else { "" }
        );
        rows.push([
            utc_time(report.accessed_at_unix_ms),
            who,
            record,
            purpose_name(report.purpose),
            basis(event),
            verdict,
            event.reason.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// An access-log page for a person: a count, the table, and how to go on.
pub fn page_text(events: &[v1::AccessEvent], next: &str, height: u64) -> String {
    let flagged = events.iter().filter(|event| event.flagged).count();
    let count = match events.len() {
        1 => "1 access event".to_owned(),
        count => format!("{count} access events"),
    };
    let mut text = format!("{count} at height {height} ({flagged} flagged for review)\n");
    if !events.is_empty() {
        text.push_str(&table(events));
    }
    if !next.is_empty() {
        text.push_str(&format!("more: --page-token {next} (or --all)\n"));
    }
    text
}

fn block_target(block: &v1::AccessBlockEntry) -> String {
    match block.terms.as_ref().and_then(|terms| terms.target.as_ref()) {
        Some(v1::block_access::Target::InstitutionOrgNumber(org_number)) => {
            format!("institution {org_number}")
        }
        Some(v1::block_access::Target::HprNumber(hpr_number)) => format!("person HPR {hpr_number}"),
        None => "nobody".to_owned(),
    }
}

pub fn block_json(block: &v1::AccessBlockEntry) -> Value {
    json!({
        "block_id": hex_of(&block.block_id),
        "issuer": block.terms.as_ref().map(|terms| terms.issuer_org_number.clone()),
        "target": block_target(block),
        "blocked_at_height": block.blocked_at_height,
        "blocked_at_unix_ms": block.blocked_at_unix_ms,
        "lifted": block.lifted,
        "lifted_at_height": block.lifted.then_some(block.lifted_at_height),
        "lifted_at_unix_ms": block.lifted.then_some(block.lifted_at_unix_ms),
    })
}

pub fn block_text(block: &v1::AccessBlockEntry) -> String {
    let state = if block.lifted {
        format!("lifted at height {}", block.lifted_at_height)
    } else {
        "in force".to_owned()
    };
    format!(
        "{} blocks {} since height {}, {state}",
        hex_of(&block.block_id),
        block_target(block),
        block.blocked_at_height
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known instants render as their UTC dates, leap days and the epoch included.
    #[test]
    fn utc_times() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_796_083_199_000), "2026-11-30 23:59:59 UTC");
        assert_eq!(utc_time(-1_000), "1969-12-31 23:59:59 UTC");
    }

    // Each event is a row with who, which record, basis and verdict; flagged ones say so.
    #[test]
    fn table_rows_say_who_what_and_why() {
        let event = v1::AccessEvent {
            event_id: vec![1; 32],
            report: Some(v1::LogAccess {
                accessor_org_number: "983974724".into(),
                accessor_hpr_number: "1234567".into(),
                record: Some(v1::RecordReference {
                    custodian_org_number: "993467049".into(),
                    record_id: "journal-1".into(),
                }),
                purpose: v1::PurposeOfUse::Etreat as i32,
                accessed_at_unix_ms: 0,
                attestation_sha256: Vec::new(),
                basis: Some(v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                    justification: "unconscious in A&E".into(),
                })),
            }),
            classification: v1::AccessClassification::Emergency as i32,
            flagged: true,
            reason: "emergency access".into(),
            accessor_institution_name: "Helse Bergen HF".into(),
            ..Default::default()
        };
        let text = page_text(&[event], "", 9);
        assert!(text.starts_with("1 access event at height 9 (1 flagged for review)"));
        let row = text.lines().nth(2).unwrap();
        for expected in [
            "1970-01-01 00:00:00 UTC",
            "Helse Bergen HF 983974724 (HPR 1234567)",
            "993467049/journal-1",
            "emergency: unconscious in A&E",
            "FLAGGED",
        ] {
            assert!(row.contains(expected), "{expected} in {row}");
        }
    }
}
